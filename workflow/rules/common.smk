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


envvars:
    "PYTHONPATH",


from cvgen.config import config_hash, shard_ranges, validate_config
from cvgen.errors import CvgenError
from cvgen.memory import shard_memory_mb

# Schema (workflow/schemas/config.schema.yaml) with defaults filled in, plus cross-key checks.
try:
    config.update(validate_config(config))
    CONFIG_HASH = config_hash(config)
    SHARD_MEMORY_MB = shard_memory_mb(config)
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
