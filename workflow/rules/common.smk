# Helpers shared by all rules: config validation, output paths, the shard plan, resources.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Every job (local, conda or cluster) imports the cvgen library from this checkout, so the
# code that runs always matches the workflow that calls it. Found from this file, not from the
# main Snakefile: used as a module, the main Snakefile is the deploying project's.
LIBRARY = str(
    Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parents[1] / "src"
)
sys.path.insert(0, LIBRARY)
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [LIBRARY, os.environ.get("PYTHONPATH")])
)
# HDF5's file locks fail or hang on NFS and Lustre. Every file here has one writer and is renamed
# into place when complete, so jobs run without them (Slurm jobs inherit this environment);
# set HDF5_USE_FILE_LOCKING yourself to override.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")


envvars:
    "PYTHONPATH",
    "HDF5_USE_FILE_LOCKING",


from cvgen.errors import CvgenError
from cvgen.plan import build_plan
from cvgen.report import FIGURES, figures_for

# The plan: the config validated (schema, defaults, cross-key checks) and every fact derived
# from it once (shards, backend, batch size, memory, time limit, threads); see cvgen.plan.
try:
    PLAN = build_plan(config)
except CvgenError as err:
    raise WorkflowError(f"cvgen error: {err}") from None
config.update(PLAN.config)

RESULTS = f"results/{PLAN.dataset}"
SHARDS = list(range(len(PLAN.shards)))


def circuit_files(wildcards):
    """The Blackbird script, if the config uses one: editing it reruns the workflow."""
    blackbird = config["circuit"]["blackbird"]
    return [blackbird] if blackbird else []


def shard_mem_mb(wildcards, attempt):
    """Memory of one generation job from the state-size estimate, more on a retry."""
    return PLAN.memory_mb * attempt


def shard_runtime(wildcards, attempt):
    """Time limit of one generation job in minutes (Slurm --time), more on a retry."""
    return PLAN.runtime_minutes * attempt


def report_figures():
    """The report's figures this dataset draws (cvgen.report.figures_for), each registered
    with its caption and category for `snakemake --report`."""
    return {
        name: report(
            f"{RESULTS}/report/{name}.png",
            caption=f"../report/{name}.rst",
            category=FIGURES[name],
        )
        for name in figures_for(PLAN)
    }
