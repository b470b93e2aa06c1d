"""Engine benchmark (cvgen.benchmark): every strategy side by side, samples/s and peak memory.

    python benchmarks/engines.py [--output results/benchmarks] [--min-seconds 2]
    snakemake --cores 2 benchmark_engines          # the same, as a workflow target

Writes engines.json, engines.md and engines.png.
"""

import sys
from pathlib import Path

from cvgen.benchmark import main, run_all
from cvgen.cli import reported_errors

if "snakemake" in globals():
    with reported_errors(snakemake.log[0]):
        run_all(Path(snakemake.output.json).parent)
else:
    main(sys.argv[1:])
