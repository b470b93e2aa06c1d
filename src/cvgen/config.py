"""Reading a dataset config, its schema and defaults, its hash, and its shard ranges."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
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
        reason = " ".join(str(err).split())  # PyYAML's message spans several lines
        raise CvgenError(f"config file {path} is not valid YAML ({reason}); fix it") from err


def apply_schema(config: dict | None) -> dict:
    """A copy of `config` checked against the schema, with every default filled in.

    Like snakemake.utils.validate(set_default=True), but the first error becomes one line
    naming the key, instead of a dump of the schema. Numbers are normalised: a whole-number
    float where the schema asks for an integer becomes that int (JSON Schema counts 6.0 as an
    integer, and every later use needs an int), an int where it asks for a number becomes that
    float, so equal values hash equally; NaN and infinities are refused. A parameter rule may
    hold only its distribution's keys. Cross-key checks: cvgen.plan.
    """
    import jsonschema

    if config is None:  # an empty YAML document: the schema's defaults, as documented
        config = {}
    if not isinstance(config, dict):
        raise CvgenError("config must be a YAML mapping of keys to values")
    raw = config
    config = copy.deepcopy(config)
    error = jsonschema.exceptions.best_match(_validator().iter_errors(config))
    if error is not None:
        fix = (
            "remove it or fix its spelling (the keys are"
            if error.validator == "additionalProperties"
            else "see its description (every key is"
        )
        raise CvgenError(
            f"config key {_key(error.absolute_path)}: {_message(error)}; {fix} described in "
            f"workflow/schemas/config.schema.yaml)"
        )
    config = _normalised(config, _schema(), ())
    _check_rule_keys(raw.get("parameters"), config["parameters"])
    if "norm" not in config["outputs"]:  # always written: it says how far to trust the rest
        config["outputs"].append("norm")
    return config


# The keys each distribution reads; `vary` and `match` belong to every rule.
DISTRIBUTION_KEYS = {"normal": ("mean", "std"), "uniform": ("low", "high"), "constant": ("value",)}


def _check_rule_keys(raw_rules: list[dict] | None, rules: list[dict]) -> None:
    """Refuse a key the rule's distribution does not read (it would be silently ignored), and
    drop the schema's default `mean` from rules that are not normal."""
    for index, rule in enumerate(rules):
        kind = rule["distribution"]
        used = DISTRIBUTION_KEYS[kind]
        for key in raw_rules[index] if raw_rules else ():
            if key not in ("match", "distribution", "vary", *used):
                raise CvgenError(
                    f"config key parameters.{index}.{key}: distribution {kind} does not use "
                    f"{key} (it uses {', '.join(used)}); remove {key}, or change the distribution"
                )
        if kind != "normal":
            rule.pop("mean", None)


def _normalised(value, schema: dict, path: tuple):
    """`value` with whole-number floats made ints where the schema asks for an integer, ints
    made floats where it asks for a number; NaN, infinities and ints too large for a float
    refused, naming the key."""
    types = _types(schema)
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise CvgenError(f"config key {_key(path)} is {value}; give a finite number")
    if "integer" in types and isinstance(value, float):
        return int(value)
    if "number" in types and "integer" not in types and isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise CvgenError(
                f"config key {_key(path)} is {_short(value)}, too large for a 64-bit float; "
                f"give a smaller number"
            ) from None
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {k: _normalised(v, properties.get(k, {}), (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items", {})
        return [_normalised(v, items, (*path, i)) for i, v in enumerate(value)]
    return value


def _types(schema: dict) -> set[str]:
    """The JSON types a (sub)schema allows, counting the branches of oneOf and anyOf."""
    declared = schema.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        types |= _types(branch)
    return types


def _key(path) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _message(error) -> str:
    """jsonschema's message for `error`, on one short line; a name pattern as its rule."""
    if error.validator in ("pattern", "not", "maxLength") and "description" in error.schema:
        rule = " ".join(error.schema["description"].split()).split(";")[0]
        return f"{_short(error.instance)} is not allowed: {rule}"
    message = error.message.replace(repr(error.instance), _short(error.instance))
    return " ".join(message.split())


def _short(value, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


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
    return extended(_schema())


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
