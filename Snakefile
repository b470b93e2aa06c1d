# cvgen: reproducible HDF5 datasets of samples from CV quantum circuits.
# config.yaml -> prepare_params -> generate_shard x N -> aggregate -> dataset_card, performance_report
# workflow/Snakefile includes this file for Snakemake's standard layout (modules, snakedeploy).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/params.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/card.smk"
include: "workflow/rules/benchmark.smk"


rule all:
    """Everything a dataset build gives, under results/{dataset}/ (the config's `dataset`):
    the dataset, its card, its Croissant metadata and the report. No wildcards."""
    default_target: True
    input:
        f"{RESULTS}/dataset.h5",
        f"{RESULTS}/DATASET.md",
        f"{RESULTS}/croissant.json",
        f"{RESULTS}/report.json",
        f"{RESULTS}/report.md",
