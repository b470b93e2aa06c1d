rule generate_shard:
    """Simulate shard {shard} (wildcard `shard`: the shard index, 0 to the number of shards
    minus one, from the plan's shard ranges) in batches, in one process: its outputs, inputs,
    timings and convergence check in shards/{shard}.h5, its SHA-256 next to it (.sha256).
    """
    input:
        params=f"{RESULTS}/params.h5",
    output:
        shard=ensure(f"{RESULTS}/shards/{{shard}}.h5", non_empty=True),
        # The shard's SHA-256, written by cvgen.shards.write_shard right after the shard and
        # checked by aggregate: a shard without it is generated again when aggregate runs.
        sha256=ensure(f"{RESULTS}/shards/{{shard}}.h5.sha256", non_empty=True),
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
