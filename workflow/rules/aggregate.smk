rule aggregate:
    """Verify every shard (SHA-256 sidecar, array checksums, contents against params.h5) and
    write results/{dataset}/dataset.h5 with its conventions, split and manifest. No
    wildcards: it takes all the shards."""
    input:
        params=f"{RESULTS}/params.h5",
        shards=expand(f"{RESULTS}/shards/{{shard}}.h5", shard=SHARDS),
        # read by aggregate next to each shard (cvgen.shards.sha256_path), checked before it
        sha256=expand(f"{RESULTS}/shards/{{shard}}.h5.sha256", shard=SHARDS),
    output:
        dataset=ensure(f"{RESULTS}/dataset.h5", non_empty=True),
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../../envs/cvgen.yaml"
    threads: 1
    resources:
        mem_mb=2048,
    script:
        "../../scripts/aggregate.py"


rule performance_report:
    """Performance, truncation and output statistics of results/{dataset}/dataset.h5:
    report.json, report.md and the plots under report/ (also in `snakemake --report`). No
    wildcards."""
    input:
        dataset=f"{RESULTS}/dataset.h5",
        benchmarks=expand(f"{RESULTS}/benchmarks/generate/{{shard}}.tsv", shard=SHARDS),
    output:
        # the figures with something to show for this config (cvgen.report.figures_for)
        **report_figures(),
        json=ensure(f"{RESULTS}/report.json", non_empty=True),
        markdown=ensure(f"{RESULTS}/report.md", non_empty=True),
    log:
        f"{RESULTS}/logs/performance_report.log",
    conda:
        "../../envs/cvgen.yaml"
    threads: 1
    resources:
        mem_mb=2048,
    script:
        "../../scripts/report.py"
