rule aggregate:
    input:
        params=f"{RESULTS}/params.h5",
        shards=expand(f"{RESULTS}/shards/{{shard}}.h5", shard=SHARDS),
        # read by aggregate next to each shard (cvgen.shards.sha256_path), checked before it
        sha256=expand(f"{RESULTS}/shards/{{shard}}.h5.sha256", shard=SHARDS),
    output:
        dataset=f"{RESULTS}/dataset.h5",
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
    input:
        dataset=f"{RESULTS}/dataset.h5",
        benchmarks=expand(f"{RESULTS}/benchmarks/generate/{{shard}}.tsv", shard=SHARDS),
    output:
        json=f"{RESULTS}/report.json",
        markdown=f"{RESULTS}/report.md",
        throughput=report(
            f"{RESULTS}/report/throughput.png",
            caption="../report/throughput.rst",
            category="Performance",
        ),
        timeline=report(
            f"{RESULTS}/report/timeline.png",
            caption="../report/timeline.rst",
            category="Performance",
        ),
        norm=report(
            f"{RESULTS}/report/norm.png",
            caption="../report/norm.rst",
            category="Truncation",
        ),
        convergence=report(
            f"{RESULTS}/report/convergence.png",
            caption="../report/convergence.rst",
            category="Truncation",
        ),
        outputs=report(
            f"{RESULTS}/report/outputs.png",
            caption="../report/outputs.rst",
            category="Outputs",
        ),
        sampling=report(
            f"{RESULTS}/report/sampling.png",
            caption="../report/sampling.rst",
            category="Sampled outcomes",
        ),
        correlation=report(
            f"{RESULTS}/report/correlation.png",
            caption="../report/correlation.rst",
            category="Sampled outcomes",
        ),
    log:
        f"{RESULTS}/logs/performance_report.log",
    conda:
        "../../envs/cvgen.yaml"
    threads: 1
    resources:
        mem_mb=2048,
    script:
        "../../scripts/report.py"
