"""Rule `generate_shard`: one batched process simulates one shard and writes its HDF5 file
(and, next to it, the file's SHA-256: `{shard}.h5.sha256`).

By hand: python scripts/generate_shard.py --params params.h5 --shard 0 --output 0.h5
"""

import sys

from cvgen.cli import main, reported_errors
from cvgen.stages import generate_shard

if "snakemake" in globals():
    with reported_errors(snakemake.log[0]):
        generate_shard(
            snakemake.input.params,
            int(snakemake.wildcards.shard),
            snakemake.output.shard,
            snakemake.threads,
        )
else:
    main(["generate-shard", *sys.argv[1:]])
