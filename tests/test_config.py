"""Config validation: defaults from the schema, and one clear error for bad input."""

import pytest

from conftest import tiny_config
from cvgen.config import shard_ranges
from cvgen.errors import CvgenError
from cvgen.plan import load_config, validate_config


def test_empty_config_is_the_documented_default(root):
    config = validate_config({})
    assert config == load_config(root / "config.yaml")
    assert config["circuit"] == {
        "template": "qnn",
        "blackbird": None,
        "modes": 2,
        "layers": 2,
        "cutoff": 10,
        "dtype": "complex64",
        "truncation": "per_mode",
    }
    assert "norm" in config["outputs"]


def test_every_schema_key_has_a_description_and_a_default(root):
    import yaml

    schema = yaml.safe_load((root / "workflow/schemas/config.schema.yaml").read_text())

    def walk(properties, where):
        for key, spec in properties.items():
            assert "description" in spec, f"{where}{key} has no description"
            if key not in ("match", "distribution", "std", "low", "high", "value"):
                assert "default" in spec, f"{where}{key} has no default"
            walk(spec.get("properties", {}), f"{where}{key}.")
            walk(spec.get("items", {}).get("properties", {}), f"{where}{key}[].")

    walk(schema["properties"], "")


def test_shards_cover_the_dataset_with_a_short_last_shard():
    assert shard_ranges(tiny_config(shard_size=25)) == [(0, 25), (25, 50), (50, 60)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"shard_size": 61}, "shard_size"),
        ({"typo_key": 1}, "typo_key"),
        ({"circuit": {"modes": 0}}, "modes"),
        ({"circuit": {"cutoff": 1}}, "cutoff"),
        ({"parameters": [{"match": "*", "distribution": "normal"}]}, "std"),
        (
            {"parameters": [{"match": "*", "distribution": "uniform", "low": 2, "high": 1}]},
            "low > high",
        ),
        ({"parameters": [{"match": "*", "distribution": "normal", "std": -1}]}, "std"),
        ({"parameters": {"*": {"distribution": "normal", "std": 1}}}, "parameters"),
        ({"engine": "magic"}, "magic"),
        ({"dataset": "../escape"}, "escape"),
        ({"circuit": {"blackbird": "missing.xbb"}}, "missing.xbb"),
    ],
)
def test_bad_config_is_one_error_naming_the_problem(overrides, message):
    with pytest.raises(CvgenError, match=message):
        tiny_config(**overrides)
