# cvgen: reproducible HDF5 datasets of samples from CV quantum circuits.
# config.yaml -> prepare_params -> generate_shard x N -> aggregate -> performance_report
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/params.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/benchmark.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/dataset.h5",
        f"{RESULTS}/report.json",
        f"{RESULTS}/report.md",
