"""Rule `dataset_card`: DATASET.md (the dataset card) and croissant.json (Croissant metadata)
next to dataset.h5, from that file alone.

By hand: python scripts/dataset_card.py --dataset dataset.h5 --markdown DATASET.md \
    --croissant croissant.json
"""

import sys

from cvgen.card import write_card
from cvgen.cli import main, reported_errors

if "snakemake" in globals():
    with reported_errors(snakemake.log[0]):
        write_card(snakemake.input.dataset, snakemake.output.card, snakemake.output.croissant)
else:
    main(["card", *sys.argv[1:]])
