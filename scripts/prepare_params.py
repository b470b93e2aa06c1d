"""Rule `prepare_params`: draw every free-parameter value of the config into params.h5.

By hand: python scripts/prepare_params.py --config config.yaml --output params.h5
"""

import sys

from cvgen.cli import main, reported_errors
from cvgen.stages import prepare_params

if "snakemake" in globals():
    with reported_errors(snakemake.log[0]):
        prepare_params(snakemake.config, snakemake.output.params)
else:
    main(["prepare-params", *sys.argv[1:]])
