"""Reading a dataset config, its schema and defaults, its hash, and its shard ranges."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path

import yaml

from cvgen.errors import CvgenError

SCHEMA = resources.files("cvgen") / "config.schema.yaml"


def read_config(path: str | Path) -> dict:
    """The raw mapping of a YAML config file (validate it with cvgen.plan.build_plan)."""
    path = Path(path)
    if not path.is_file():
        raise CvgenError(f"config file {path} not found: pass an existing YAML file")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CvgenError(f"config file {path} is not valid YAML: {err}") from err


def apply_schema(config: dict) -> dict:
    """A copy of `config` checked against the schema, with every default filled in.

    Like snakemake.utils.validate(set_default=True), but the first error becomes one line
    naming the key, instead of a dump of the schema. Cross-key checks: cvgen.plan.
    """
    import jsonschema

    if not isinstance(config, dict):
        raise CvgenError("config must be a YAML mapping of keys to values")
    config = copy.deepcopy(config)
    error = jsonschema.exceptions.best_match(_validator().iter_errors(config))
    if error is not None:
        key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        raise CvgenError(f"config key {key}: {error.message}")
    if "norm" not in config["outputs"]:  # always written: it says how far to trust the rest
        config["outputs"].append("norm")
    return config


def _validator():
    """A JSON-schema validator for the config schema that fills in defaults as it goes."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(key, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, properties, instance, schema)

    extended = validators.extend(Draft202012Validator, {"properties": fill_defaults})
    return extended(yaml.safe_load(SCHEMA.read_text()))


def total_samples(config: dict) -> int:
    """Number of samples in the dataset: every circuit gets samples_per_circuit samples."""
    return config["n_circuits"] * config["samples_per_circuit"]


def shard_ranges(config: dict) -> list[tuple[int, int]]:
    """Contiguous [start, stop) sample ranges, one per generation job; the last may be short."""
    total, size = total_samples(config), config["shard_size"]
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def canonical_config(config: dict) -> str:
    """The config as canonical JSON text: what is hashed and stored with every file."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def config_hash(config: dict) -> str:
    """SHA-256 over the canonical config and the Blackbird script it names, if any.

    `resources` (what jobs ask a scheduler for) is left out: it changes no value in the dataset,
    so raising a time limit after a cluster timeout must not rerun finished shards.
    """
    content = {key: value for key, value in config.items() if key != "resources"}
    digest = hashlib.sha256(canonical_config(content).encode())
    blackbird = config["circuit"].get("blackbird")
    if blackbird:
        digest.update(Path(blackbird).read_bytes())
    return digest.hexdigest()
