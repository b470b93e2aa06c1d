"""Config validation: defaults from the schema, and one clear error for bad input."""

import pytest

from conftest import tiny_config
from cvgen.config import config_hash, shard_ranges
from cvgen.errors import CvgenError
from cvgen.plan import load_config, validate_config

# What config.yaml adds to the schema's defaults: the demo's sampled outcomes (make run).
DEMO = {
    "outputs": [
        "quad_x",
        "quad_p",
        "mean_photon",
        "fock_probs",
        "norm",
        "homodyne",
        "fock_samples",
    ],
    "sampling": {"shots": 4},
}


def test_config_yaml_is_the_schema_defaults_plus_sampled_outcomes(root):
    config = validate_config({})
    assert load_config(root / "config.yaml") == validate_config(DEMO)
    assert config["circuit"] == {
        "template": "qnn",
        "blackbird": None,
        "modes": 2,
        "layers": 2,
        "cutoff": 10,
        "dtype": "complex64",
        "truncation": "per_mode",
        "gbs": {"graph": None, "mean_photon": 8.0, "squeezing": 0.5, "transmissivity": 1.0},
        "loss": {"per_layer": None, "before_detection": None},
    }
    assert config["noise"] == {"method": "auto", "trajectories": 64}
    assert config["sampling"]["detector"] == {"efficiency": 1.0, "dark_counts": 0.0}
    assert config["engine"] == "auto"
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
        # issue 13
        ({"seed": 2**64}, "seed: 18446744073709551616 is greater than the maximum"),
        ({"seed": -1}, "seed"),
        ({"dataset": "abc\n"}, r"dataset: 'abc\\n' is not allowed: Name of the dataset, 1 to 100"),
        ({"dataset": "a" * 101}, "dataset: 'aaa.*' is not allowed: Name of the dataset"),
        ({"dataset": ""}, "dataset"),
        ({"norm_threshold": float("nan")}, "norm_threshold is nan; give a finite number"),
        ({"convergence": {"tolerance": float("inf")}}, "convergence.tolerance is inf"),
        ({"seed": 2.5}, "seed: 2.5 is not of type 'integer'"),
        (
            {"parameters": [{"match": "*", "distribution": "normal", "std": 1, "low": 0}]},
            "parameters.0.low: distribution normal does not use low",
        ),
        (
            {
                "parameters": [
                    {"match": "*", "distribution": "uniform", "low": 0, "high": 1, "std": 1}
                ]
            },
            "parameters.0.std: distribution uniform does not use std",
        ),
        (
            {"parameters": [{"match": "*", "distribution": "constant", "value": 1, "mean": 0}]},
            "parameters.0.mean: distribution constant does not use mean",
        ),
        (
            {"n_circuits": 1, "samples_per_circuit": 200_000, "shard_size": 1},
            "makes 200000 generation jobs for 200000 samples, over the limit of 10000.*"
            "set shard_size to at least 20",
        ),
        ({"circuit": {"modes": 65}}, "circuit.modes"),
        ({"circuit": {"modes": 30, "cutoff": 10}}, "basis states per sample"),
    ],
)
def test_bad_config_is_one_error_naming_the_problem(overrides, message):
    with pytest.raises(CvgenError, match=message) as caught:
        tiny_config(**overrides)
    assert "\n" not in str(caught.value)


def test_whole_number_floats_are_read_as_the_integers_they_are():
    """JSON Schema counts 6.0 as an integer: the validated config holds the int, so the hash
    and every later use (shapes, ranges, HDF5 attributes) see an int."""
    floats = tiny_config(
        seed=7.0,
        circuit={"template": "qnn", "modes": 2.0, "layers": 1.0, "cutoff": 5.0},
        samples_per_circuit=30.0,
        shard_size=25.0,
        batch_size=8.0,
    )
    assert floats == tiny_config()
    assert type(floats["seed"]) is int and type(floats["circuit"]["cutoff"]) is int
    assert config_hash(floats) == config_hash(tiny_config())


def test_numbers_are_floats_so_equal_values_hash_alike():
    rule = {"match": "*", "distribution": "normal", "std": 1, "mean": 0, "vary": "per_circuit"}
    config = tiny_config(parameters=[rule])
    assert config["parameters"][0] == {**rule, "std": 1.0, "mean": 0.0}
    assert type(config["parameters"][0]["std"]) is float
    as_floats = tiny_config(parameters=[{**rule, "std": 1.0, "mean": 0.0}])
    assert config_hash(config) == config_hash(as_floats)


def test_limits_themselves_are_accepted():
    assert tiny_config(seed=2**63 - 1)["seed"] == 2**63 - 1
    assert tiny_config(dataset="a" * 100)["dataset"] == "a" * 100
    config = tiny_config(n_circuits=1, samples_per_circuit=10_000, shard_size=1)
    assert len(shard_ranges(config)) == 10_000


def test_a_rule_holds_only_its_distributions_keys():
    rules = [
        {"match": "input_*", "distribution": "constant", "value": 0.5},
        {"match": "*", "distribution": "uniform", "low": -1, "high": 1},
    ]
    config = tiny_config(parameters=rules)
    assert "mean" not in config["parameters"][0] and "mean" not in config["parameters"][1]
    assert tiny_config()["parameters"][0]["mean"] == 0.0  # a normal rule keeps its default


@pytest.mark.parametrize("document", ["", "# only a comment\n", "{}\n", "null\n"])
def test_an_empty_config_file_is_the_schema_defaults(tmp_path, document):
    (tmp_path / "empty.yaml").write_text(document)
    assert load_config(tmp_path / "empty.yaml") == validate_config({})
    assert validate_config(None) == validate_config({})
