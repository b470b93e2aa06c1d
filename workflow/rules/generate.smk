rule generate_shard:
    input:
        params=f"{RESULTS}/params.h5",
    output:
        shard=f"{RESULTS}/shards/{{shard}}.h5",
        # The shard's SHA-256, written by cvgen.shards.write_shard right after the shard and
        # checked by aggregate: a shard without it is generated again when aggregate runs.
        sha256=f"{RESULTS}/shards/{{shard}}.h5.sha256",
    log:
        f"{RESULTS}/logs/generate/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{shard}}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/cvgen.yaml"
    # TF threads (Slurm CPUs) and time limit from the shard (cvgen.resources), memory from
    # its state-size estimate (cvgen.memory); --set-threads / --set-resources override them.
    threads: PLAN.threads
    resources:
        mem_mb=shard_mem_mb,
        runtime=shard_runtime,
    script:
        "../../scripts/generate_shard.py"
