rule dataset_card:
    """The dataset card of results/{dataset}/dataset.h5: DATASET.md (what was simulated, the
    accuracy evidence, sizes, checksums, how to load and rebuild it) and croissant.json
    (Croissant 1.1 metadata), next to it. No wildcards: one dataset per config."""
    input:
        dataset=f"{RESULTS}/dataset.h5",
    output:
        card=ensure(f"{RESULTS}/DATASET.md", non_empty=True),
        croissant=ensure(f"{RESULTS}/croissant.json", non_empty=True),
    log:
        f"{RESULTS}/logs/dataset_card.log",
    conda:
        "../../envs/cvgen.yaml"
    threads: 1
    resources:
        mem_mb=1024,
    script:
        "../../scripts/dataset_card.py"
