"""Reading benchmark (cvgen.bench.reading): random-access reads/s, DataLoader samples/s and
sequential MB/s of a dataset.h5, as written and rechunked.

    python benchmarks/reading.py [--dataset results/demo/dataset.h5 | --config config.yaml]
        [--chunk-kib 64,1024] [--seconds 2] [--output results/benchmarks]

Writes reading.json and reading.md.
"""

import sys

from cvgen.bench.reading import main

main(sys.argv[1:])
