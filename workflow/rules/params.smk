rule prepare_params:
    input:
        circuit_files,
    output:
        params=f"{RESULTS}/params.h5",
    log:
        f"{RESULTS}/logs/prepare_params.log",
    params:
        # Any config change (circuit, seed, sizes, outputs, engine) redraws and reruns all.
        config_hash=CONFIG_HASH,
    threads: 1
    resources:
        mem_mb=1024,
    conda:
        "../../envs/cvgen.yaml"
    script:
        "../../scripts/prepare_params.py"
