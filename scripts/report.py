"""Rule `report`: performance and content report of dataset.h5 (JSON, Markdown, PNG plots).

By hand: python scripts/report.py --dataset dataset.h5 --json r.json --markdown r.md --plots dir
"""

import sys
from pathlib import Path

from cvgen.cli import main, reported_errors
from cvgen.report import build_report

if "snakemake" in globals():
    with reported_errors(snakemake.log[0]):
        build_report(
            snakemake.input.dataset,
            snakemake.output.json,
            snakemake.output.markdown,
            Path(snakemake.output.throughput).parent,
            list(snakemake.input.benchmarks),
        )
else:
    main(["report", *sys.argv[1:]])
