"""Parameter drawing: keyed on logical blocks, independent of sharding, following the config."""

import numpy as np
import pytest

from conftest import tiny_config
from cvgen.circuits import circuit_from_config
from cvgen.config import config_hash, shard_ranges
from cvgen.errors import CvgenError
from cvgen.params import (
    SAMPLE_BLOCK,
    assign_distributions,
    draw_dataset_parameters,
)


def draw(config):
    return draw_dataset_parameters(config, circuit_from_config(config).parameter_names)


def test_drawing_is_identical_for_any_shard_size():
    reference = draw(tiny_config(shard_size=60))
    for shard_size in (1, 7, 25):
        other = draw(tiny_config(shard_size=shard_size))
        assert np.array_equal(other.sample_values, reference.sample_values)
        assert np.array_equal(other.circuit_values, reference.circuit_values)


def test_batch_args_of_any_shard_split_reassemble_the_dataset():
    config = tiny_config(shard_size=7)
    drawn = draw(config)
    pieces = [drawn.batch_args(start, stop) for start, stop in shard_ranges(config)]
    whole = drawn.batch_args(0, 60)
    for name in whole:
        assert np.array_equal(np.concatenate([p[name] for p in pieces]), whole[name])


def test_growing_the_dataset_keeps_every_value_already_drawn():
    per_circuit = SAMPLE_BLOCK + 100  # spans a block boundary
    small = draw(tiny_config(n_circuits=2, samples_per_circuit=per_circuit, shard_size=10))
    large = draw(tiny_config(n_circuits=3, samples_per_circuit=2 * per_circuit, shard_size=10))
    for c in range(2):
        rows_small = slice(c * per_circuit, (c + 1) * per_circuit)
        rows_large = slice(2 * c * per_circuit, 2 * c * per_circuit + per_circuit)
        assert np.array_equal(small.sample_values[rows_small], large.sample_values[rows_large])
    assert np.array_equal(small.circuit_values, large.circuit_values[:2])


def test_per_circuit_values_are_shared_and_per_sample_values_vary():
    drawn = draw(tiny_config())
    args = drawn.batch_args(0, 60)
    weight = args["l0_kerr_0"]
    assert np.all(weight[:30] == weight[0]) and np.all(weight[30:] == weight[30])
    assert weight[0] != weight[30]
    assert len(np.unique(args["input_0"])) == 60


def test_seed_changes_every_draw():
    a, b = draw(tiny_config(seed=1)), draw(tiny_config(seed=2))
    assert not np.any(a.sample_values == b.sample_values)


def test_distributions_follow_their_specification():
    rules = [
        {
            "match": "input_0",
            "distribution": "normal",
            "mean": 1.5,
            "std": 0.2,
            "vary": "per_sample",
        },
        {"match": "input_1", "distribution": "uniform", "low": -1, "high": 3, "vary": "per_sample"},
        {"match": "*", "distribution": "constant", "value": 0.25},
    ]
    config = tiny_config(parameters=rules, samples_per_circuit=20000, shard_size=1000)
    drawn = draw(config)
    normal, uniform = drawn.sample_values[:, 0], drawn.sample_values[:, 1]
    assert drawn.sample_names == ("input_0", "input_1")
    assert abs(normal.mean() - 1.5) < 0.01 and abs(normal.std() - 0.2) < 0.01
    assert uniform.min() >= -1 and uniform.max() < 3 and abs(uniform.mean() - 1) < 0.05
    assert np.all(drawn.circuit_values == 0.25)


def test_first_matching_rule_wins():
    rules = [{"match": "input_*", "distribution": "constant"}, {"match": "*", "distribution": "x"}]
    specs = assign_distributions(("input_0", "w"), rules)
    assert specs["input_0"]["distribution"] == "constant"
    assert specs["w"]["distribution"] == "x"


def test_rule_order_is_kept_through_the_stored_config(tmp_path):
    from cvgen.shards import read_params_file
    from cvgen.stages import prepare_params

    rules = [
        {"match": "input_*", "distribution": "constant", "value": 5.0, "vary": "per_sample"},
        {"match": "*", "distribution": "constant", "value": 0.0},
    ]
    prepare_params(tiny_config(parameters=rules), tmp_path / "params.h5")
    stored = read_params_file(tmp_path / "params.h5")
    assert [rule["match"] for rule in stored.config["parameters"]] == ["input_*", "*"]
    assert np.all(stored.drawn.sample_values == 5.0)


def test_unmatched_parameter_is_an_error_naming_it():
    with pytest.raises(CvgenError, match="'w'"):
        assign_distributions(("input_0", "w"), [{"match": "input_*"}])


def test_rule_matching_nothing_new_is_an_error_naming_it():
    with pytest.raises(CvgenError, match="parameters\\[1\\] \\(match 'typo_\\*'\\)"):
        assign_distributions(("a",), [{"match": "a"}, {"match": "typo_*"}])
    with pytest.raises(CvgenError, match="parameters\\[1\\]"):
        assign_distributions(("a",), [{"match": "*"}, {"match": "a"}])


def test_config_hash_is_stable_and_changes_with_the_config():
    base = config_hash(tiny_config())
    assert config_hash(tiny_config()) == base
    changed = [
        tiny_config(seed=8),
        tiny_config(batch_size=4),
        tiny_config(circuit={"template": "qnn", "modes": 2, "layers": 1, "cutoff": 6}),
        tiny_config(outputs=["norm"]),
    ]
    assert len({base, *map(config_hash, changed)}) == 1 + len(changed)


def test_config_hash_covers_the_blackbird_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "c.xbb"
    script.write_text("name c\nversion 1.0\n\nDgate({a}, 0.0) | 0\n")
    rules = [{"match": "a", "distribution": "normal", "std": 1.0}]
    config = tiny_config(circuit={"blackbird": "c.xbb"}, parameters=rules)
    before = config_hash(config)
    script.write_text("name c\nversion 1.0\n\nDgate({a}, 0.1) | 0\n")
    assert config_hash(config) != before


def test_scheduler_resources_are_left_out_of_the_config_hash():
    assert config_hash(tiny_config(resources={"runtime_minutes": 99})) == config_hash(tiny_config())
