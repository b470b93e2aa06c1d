rule generate_shard:
    input:
        params=f"{RESULTS}/params.h5",
    output:
        shard=f"{RESULTS}/shards/{{shard}}.h5",
    log:
        f"{RESULTS}/logs/generate/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{shard}}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/cvgen.yaml"
    threads: 1
    resources:
        mem_mb=shard_mem_mb,
    script:
        "../../scripts/generate_shard.py"
