# Helpers shared by all rules: config validation, output paths, the shard plan, resources.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Every job (local, conda or cluster) imports the cvgen library from this checkout, so the
# code that runs always matches the workflow that calls it.
LIBRARY = str(Path(workflow.basedir) / "src")
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


from cvgen.config import config_hash, shard_ranges, validate_config
from cvgen.errors import CvgenError
from cvgen.memory import shard_memory_mb
from cvgen.resources import shard_runtime_minutes, shard_threads

# Schema (workflow/schemas/config.schema.yaml) with defaults filled in, plus cross-key checks.
try:
    config.update(validate_config(config))
    CONFIG_HASH = config_hash(config)
    SHARD_MEMORY_MB = shard_memory_mb(config)
    SHARD_RUNTIME_MIN = shard_runtime_minutes(config)
    SHARD_THREADS = shard_threads(config, SHARD_MEMORY_MB)
except CvgenError as err:
    raise WorkflowError(f"cvgen error: {err}") from None

RESULTS = f"results/{config['dataset']}"
SHARDS = list(range(len(shard_ranges(config))))


def circuit_files(wildcards):
    """The Blackbird script, if the config uses one: editing it reruns the workflow."""
    blackbird = config["circuit"]["blackbird"]
    return [blackbird] if blackbird else []


def shard_mem_mb(wildcards, attempt):
    """Memory of one generation job from the state-size estimate, more on a retry."""
    return SHARD_MEMORY_MB * attempt


def shard_runtime(wildcards, attempt):
    """Time limit of one generation job in minutes (Slurm --time), more on a retry."""
    return SHARD_RUNTIME_MIN * attempt
