rule prepare_params:
    """Validate the config, compile the circuit once to cvgen's op list and draw every
    parameter value: results/{dataset}/params.h5. No wildcards."""
    input:
        circuit_files,
    output:
        params=ensure(f"{RESULTS}/params.h5", non_empty=True),
    log:
        f"{RESULTS}/logs/prepare_params.log",
    conda:
        "../../envs/cvgen.yaml"
    threads: 1
    resources:
        mem_mb=1024,
    params:
        # Any config change (circuit, seed, sizes, outputs, engine) redraws and reruns all.
        config_hash=PLAN.config_hash,
    script:
        "../../scripts/prepare_params.py"
