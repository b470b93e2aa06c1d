rule benchmark_engines:
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
