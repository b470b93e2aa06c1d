rule benchmark_engines:
    """The engines benchmark (cvgen.bench.engines), run only when asked for by name:
    results/benchmarks/engines.{json,md,png}. No wildcards."""
    output:
        json="results/benchmarks/engines.json",
        markdown="results/benchmarks/engines.md",
        plot="results/benchmarks/engines.png",
    log:
        "results/benchmarks/engines.log",
    conda:
        "../../envs/cvgen.yaml"
    threads: 2
    resources:
        mem_mb=8192,
    script:
        "../../benchmarks/engines.py"
