"""Train/val/test splits by circuit: deterministic, exact counts, no circuit in two parts, and
bad fractions refused before any job runs."""

import numpy as np
import pytest

from conftest import run_workflow, tiny_plan
from cvgen.errors import CvgenError
from cvgen.splits import assign_circuits, part_counts, sample_rows

SPLIT = {"train": 0.8, "val": 0.1, "test": 0.1}


@pytest.mark.parametrize("n_circuits", [3, 4, 7, 10, 11, 99, 1000])
def test_every_part_gets_at_least_one_circuit_and_the_rest_in_proportion(n_circuits):
    fractions = {"test": 0.1, "train": 0.8, "val": 0.1}
    counts = part_counts(fractions, n_circuits)
    assert sum(counts.values()) == n_circuits and min(counts.values()) >= 1
    if n_circuits >= 10:  # every part's share is at least one circuit: within one of it
        for name, count in counts.items():
            assert abs(count - fractions[name] * n_circuits) < 1 + 1e-9


def test_split_is_the_same_for_the_same_seed_and_differs_for_another():
    fractions = {"test": 0.1, "train": 0.8, "val": 0.1}
    first = assign_circuits(5, fractions, 100)
    assert np.array_equal(first, assign_circuits(5, fractions, 100))
    assert not np.array_equal(first, assign_circuits(6, fractions, 100))
    assert np.bincount(first).tolist() == [10, 80, 10]


def test_the_order_parts_are_listed_in_changes_neither_split_nor_hash():
    forward = tiny_plan(n_circuits=10, split=SPLIT)
    backward = tiny_plan(n_circuits=10, split=dict(reversed(SPLIT.items())))
    assert forward.config_hash == backward.config_hash
    assert list(forward.split) == ["test", "train", "val"] == list(backward.split)


def test_samples_of_a_circuit_never_fall_in_two_parts():
    plan = tiny_plan(n_circuits=10, samples_per_circuit=6, shard_size=20, split=SPLIT)
    parts = assign_circuits(plan.seed, plan.split, plan.n_circuits)
    circuit_index = np.repeat(np.arange(10), 6)
    rows = [sample_rows(parts, circuit_index, i) for i in range(3)]
    assert sorted(np.concatenate(rows).tolist()) == list(range(60))
    circuits = [set(circuit_index[r].tolist()) for r in rows]
    assert not (circuits[0] & circuits[1] or circuits[0] & circuits[2] or circuits[1] & circuits[2])


def test_a_split_is_recorded_in_the_plan_and_none_by_default():
    assert tiny_plan().split is None
    assert tiny_plan(n_circuits=3, split={"train": 1}).split == {"train": 1.0}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"split": {"train": 0.8, "test": 0.1}}, "add up to 0.9"),
        ({"split": {"train": 0.8, "val": 0.2, "test": 0.1}}, "add up to 1.1"),
        ({"n_circuits": 2, "split": SPLIT}, "raise n_circuits to at least 3"),
        ({"split": {"train": 0.0, "test": 1.0}}, "split.train"),
        ({"split": {"train test": 1.0}}, "A part name"),
        ({"split": {}}, "config key split"),
    ],
)
def test_bad_split_is_one_error_naming_the_problem(overrides, fragment):
    with pytest.raises(CvgenError, match=fragment) as raised:
        tiny_plan(**overrides)
    assert "\n" not in str(raised.value)


@pytest.mark.slow
def test_bad_split_stops_the_workflow_before_any_job(tmp_path):
    config = {"n_circuits": 2, "samples_per_circuit": 8, "shard_size": 8, "split": SPLIT}
    result = run_workflow(tmp_path, "--cores", "1", config=config, timeout=120)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "cvgen error:" in line]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "split has 3 parts" in errors[0] and "raise n_circuits" in errors[0]
    assert not (tmp_path / "results").exists()
