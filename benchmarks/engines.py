"""Engine benchmark (cvgen.bench.engines): every strategy side by side, samples/s and peak memory,
with the dense and structured rooflines.

    python benchmarks/engines.py [--output results/benchmarks] [--min-seconds 2]
        [--circuits 4x2x8,2x2x10] [--strategies compiled_numpy,compiled_tf,...]
    snakemake --cores 2 benchmark_engines          # the whole benchmark, as a workflow target

Writes engines.json, engines.md and engines.png.
"""

import sys
from pathlib import Path

from cvgen.bench.engines import main, run_all
from cvgen.cli import reported_errors

if "snakemake" in globals():
    with reported_errors(snakemake.log[0]):
        run_all(Path(snakemake.output.json).parent)
else:
    main(sys.argv[1:])
