"""The same config gives the same dataset whatever the cores, sharding, batch size or threads."""

from pathlib import Path

import numpy as np
import pytest

from conftest import run_workflow
from cvgen import read_dataset

CONFIG = {
    "dataset": "r",
    "circuit": {"modes": 2, "layers": 1, "cutoff": 6},
    "n_circuits": 2,
    "samples_per_circuit": 30,
    "shard_size": 20,
    "batch_size": 8,
}

pytestmark = pytest.mark.slow


def build(workdir: Path, cores: int = 2, extra: tuple = (), **overrides):
    config = {**CONFIG, **overrides}
    result = run_workflow(workdir, "--cores", str(cores), *extra, config=config, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return read_dataset(workdir / "results/r/dataset.h5")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return build(tmp_path_factory.mktemp("reference"))


def same_parameters(a, b):
    assert np.array_equal(a.circuit_index, b.circuit_index)
    for group in ("sample_parameters", "circuit_parameters"):
        for name, values in getattr(a, group).items():
            assert np.array_equal(values, getattr(b, group)[name]), name


@pytest.mark.parametrize(
    ("cores", "overrides"),
    [(1, {}), (2, {"shard_size": 24}), (1, {"shard_size": 7})],
    ids=["one core", "other shard size", "one core, small shards"],
)
def test_bit_identical_for_equal_batch_size_and_threads(reference, tmp_path, cores, overrides):
    other = build(tmp_path, cores=cores, **overrides)
    same_parameters(reference, other)
    for name, values in reference.outputs.items():
        assert np.array_equal(values, other.outputs[name]), name


@pytest.mark.parametrize(
    ("extra", "overrides"),
    [((), {"batch_size": 3}), (("--set-threads", "generate_shard=2"), {})],
    ids=["other batch size", "two TF threads per job"],
)
def test_within_1e_6_for_other_batch_size_or_threads(reference, tmp_path, extra, overrides):
    other = build(tmp_path, extra=extra, **overrides)
    same_parameters(reference, other)
    for name, values in reference.outputs.items():
        np.testing.assert_allclose(other.outputs[name], values, atol=1e-6, err_msg=name)
    if extra:
        assert set(other.shards["threads"]) == {2}
