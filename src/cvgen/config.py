"""Loading, validating and hashing a dataset config; the shard plan derived from it."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from importlib import resources
from pathlib import Path

import yaml

from cvgen.errors import CvgenError

SCHEMA = resources.files("cvgen") / "config.schema.yaml"


def load_config(path: str | Path) -> dict:
    """Read a YAML config file and return it validated, with every default filled in."""
    path = Path(path)
    if not path.is_file():
        raise CvgenError(f"config file {path} not found: pass an existing YAML file")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CvgenError(f"config file {path} is not valid YAML: {err}") from err
    return validate_config(config)


def validate_config(config: dict) -> dict:
    """A copy of `config` validated against the schema, defaults filled, cross-checked.

    Like snakemake.utils.validate(set_default=True), but the first error becomes one line
    naming the key, instead of a dump of the schema.
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
    check_config(config)
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


def check_config(config: dict) -> None:
    """Cross-key checks on a schema-valid config; raise CvgenError on the first problem."""
    from cvgen.circuits import circuit_from_config
    from cvgen.compiled import check_ops
    from cvgen.memory import fitted_batch_size
    from cvgen.params import assign_distributions
    from cvgen.sampling import sampling_spec

    total = total_samples(config)
    if config["shard_size"] > total:
        raise CvgenError(
            f"shard_size {config['shard_size']} is larger than the dataset ({total} samples): "
            f"set shard_size <= n_circuits * samples_per_circuit"
        )
    for index, rule in enumerate(config["parameters"]):
        for key in ("mean", "std", "low", "high", "value"):
            if key in rule and not math.isfinite(rule[key]):
                raise CvgenError(
                    f"parameters[{index}] (match {rule['match']!r}): {key} is {rule[key]}; "
                    f"give a finite number"
                )
        if rule["distribution"] == "uniform" and rule["low"] > rule["high"]:
            raise CvgenError(
                f"parameters[{index}] (match {rule['match']!r}): low > high; swap them"
            )
    circuit = circuit_from_config(config)
    sampling_spec(config, circuit.modes)
    if config["engine"] == "compiled":
        check_ops(circuit.op_names)
    elif config["circuit"]["truncation"] == "total":
        raise CvgenError(
            "circuit.truncation total needs the compiled engine (SF truncates each mode): "
            "set engine: compiled or truncation: per_mode"
        )
    assign_distributions(circuit.parameter_names, config["parameters"])
    fitted_batch_size(config, circuit)


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
