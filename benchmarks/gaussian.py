"""Gaussian engine benchmark (cvgen.bench.gaussian): against the compiled Fock engine at equal
accuracy on a 4-mode Gaussian circuit, and homodyne/heterodyne on 100 modes.

    python benchmarks/gaussian.py [--min-seconds 2] [--output results/benchmarks]

Writes gaussian.json and gaussian.md.
"""

import sys

from cvgen.bench.gaussian import main

main(sys.argv[1:])
