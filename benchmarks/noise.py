"""Loss benchmark (cvgen.bench.noise): the QNN with loss after every layer, cvgen's density-matrix
and trajectory paths against SF's TF backend in mixed mode, samples/s and memory per sample.

    python benchmarks/noise.py [--output results/benchmarks] [--min-seconds 2]
        [--circuits 2x2x10,4x2x8] [--strategies sf_mixed,density,trajectories,lossless]
        [--trajectories 1,16,64] [--cap-seconds 90]

Writes noise.json and noise.md.
"""

import sys

from cvgen.bench.noise import main

main(sys.argv[1:])
