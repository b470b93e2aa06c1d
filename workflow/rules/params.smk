rule prepare_params:
    input:
        circuit_files,
    output:
        params=f"{RESULTS}/params.h5",
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
