"""Gaussian boson sampling benchmark (cvgen.bench.gbs): cvgen's exact sampler against The Walrus
and Strawberry Fields on the planted graph, samples/s per core, and a 24-mode GBS state.

    python benchmarks/gbs.py [--budget 60] [--ceiling 30] [--output results/benchmarks]

Writes gbs.json and prints the table.
"""

import sys

from cvgen.bench.gbs import main

main(sys.argv[1:])
