"""Samples/s at equal accuracy (cvgen.bench.accuracy): every engine at the cutoff meeting a target.

    python benchmarks/accuracy.py [--output results/benchmarks] [--target 1e-3] [--min-seconds 2]

piquasso is compared when the bench extra is installed (pip install -e '.[bench]') and skipped
with a message otherwise. Writes accuracy.json and accuracy.md.
"""

import sys

from cvgen.bench.accuracy import main

main(sys.argv[1:])
