"""Rule `aggregate`: verify every shard (its SHA-256 sidecar, its arrays' checksums, its
contents against params.h5) and write dataset.h5 with a manifest of its arrays' SHA-256.

By hand: python scripts/aggregate.py --params params.h5 --output dataset.h5 shards/*.h5
"""

import sys

from cvgen.cli import main, reported_errors
from cvgen.dataset import aggregate

if "snakemake" in globals():
    with reported_errors(snakemake.log[0]):
        aggregate(snakemake.input.params, list(snakemake.input.shards), snakemake.output.dataset)
else:
    main(["aggregate", *sys.argv[1:]])
