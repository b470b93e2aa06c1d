"""Job benchmark (cvgen.bench.jobs): one generation job of a dataset, in a fresh process as the
workflow runs it, on numpy, on TensorFlow and with SF's engine; the breakdown of its wall time.

    python benchmarks/jobs.py [--config config.yaml] [--repeats 3] [--output results/benchmarks]

Writes jobs.json and jobs.md.
"""

import sys

from cvgen.bench.jobs import main

main(sys.argv[1:])
