"""HDF5 files: round trips, atomic writes, and verification of shards against params.h5."""

import h5py
import numpy as np
import pytest

from conftest import tiny_config
from cvgen.convergence import checked_rows
from cvgen.errors import CvgenError
from cvgen.shards import (
    Shard,
    atomic_h5,
    read_params_file,
    read_shard,
    verify_shard,
    write_shard,
)
from cvgen.stages import prepare_params


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.h5"
    prepare_params(tiny_config(), path)
    return read_params_file(path)


def fake_shard(params, index, outputs=None):
    """A shard with the right inputs and made-up (finite) outputs."""
    start, stop = params.plan.shards[index]
    n = stop - start
    rng = np.random.default_rng(index)
    outputs = outputs or {
        "quad_x": rng.normal(size=(n, 2)).astype(np.float32),
        "quad_p": rng.normal(size=(n, 2)).astype(np.float32),
        "mean_photon": rng.random((n, 2)).astype(np.float32),
        "fock_probs": rng.random((n, 25)).astype(np.float32),
        "norm": rng.random(n).astype(np.float32),
    }
    rows = checked_rows(params.plan, start, stop)
    convergence = {"rows": rows, "norm": rng.random(len(rows))}
    for name in ("quad_x", "quad_p", "mean_photon", "fock_probs"):
        convergence[f"max_{name}"] = convergence[f"mean_{name}"] = rng.random(len(rows))
    return Shard(
        index,
        start,
        stop,
        params.drawn.sample_values[start:stop],
        params.drawn.circuit_index[start:stop],
        outputs,
        {"config_hash": params.config_hash, "engine": "sf"},
        convergence=convergence,
    )


def test_params_file_round_trip(tmp_path):
    config = tiny_config()
    written = prepare_params(config, tmp_path / "params.h5")
    read = read_params_file(tmp_path / "params.h5")
    assert read.config == config and read.config_hash == written.config_hash
    assert read.drawn.sample_names == written.drawn.sample_names
    assert np.array_equal(read.drawn.sample_values, written.drawn.sample_values)
    assert np.array_equal(read.drawn.circuit_values, written.drawn.circuit_values)
    assert np.array_equal(read.drawn.circuit_index, written.drawn.circuit_index)


def test_shard_round_trip(tmp_path, params):
    shard = fake_shard(params, 1)
    write_shard(tmp_path / "1.h5", shard)
    read = read_shard(tmp_path / "1.h5")
    assert (read.index, read.start, read.stop) == (1, 25, 50)
    for name, values in shard.outputs.items():
        assert read.outputs[name].dtype == values.dtype
        assert np.array_equal(read.outputs[name], values)
    for name, values in shard.convergence.items():
        assert np.array_equal(read.convergence[name], values)
    assert read.attrs["config_hash"] == params.config_hash
    verify_shard(read, tmp_path / "1.h5", params, (25, 50), 1)


def test_atomic_write_leaves_no_partial_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError), atomic_h5(target) as handle:
        handle.create_dataset("x", data=np.arange(10))
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_old_file_until_the_new_one_is_complete(tmp_path):
    target = tmp_path / "out.h5"
    with atomic_h5(target) as handle:
        handle["x"] = [1]
    with pytest.raises(RuntimeError), atomic_h5(target) as handle:
        handle["x"] = [2]
        raise RuntimeError("writer failed")
    with h5py.File(target) as handle:
        assert handle["x"][()].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda s: s.attrs.update(config_hash="0" * 64), "different config"),
        (lambda s: setattr(s, "start", 26), "expected shard"),
        (lambda s: s.sample_values.__setitem__((0, 0), 9.0), "parameter values"),
        (lambda s: s.outputs["quad_x"].__setitem__((3, 1), np.nan), "NaN"),
        (lambda s: s.outputs.pop("norm"), "norm"),
        (lambda s: s.convergence.clear(), "convergence check"),
        (lambda s: s.convergence.update(rows=s.convergence["rows"] + 1), "convergence check"),
        (lambda s: s.convergence.pop("max_quad_p"), "convergence check"),
    ],
)
def test_verification_rejects_a_bad_shard(params, spoil, message):
    shard = fake_shard(params, 1)
    shard.sample_values = shard.sample_values.copy()
    spoil(shard)
    with pytest.raises(CvgenError, match=message):
        verify_shard(shard, "1.h5", params, (25, 50), 1)


def test_garbage_shard_file_is_one_error_naming_it(tmp_path):
    path = tmp_path / "0.h5"
    path.write_bytes(b"not an HDF5 file" * 100)
    with pytest.raises(CvgenError, match="0.h5"):
        read_shard(path)


def test_temporaries_of_killed_writers_are_cleaned_up(tmp_path):
    import socket

    import psutil

    host = socket.gethostname()
    dead = next(pid for pid in range(999_999, 0, -1) if not psutil.pid_exists(pid))
    stale = tmp_path / f".out.h5.{host}.{dead}.tmp"
    alive = tmp_path / f".out.h5.{host}.{psutil.Process().ppid()}.tmp"
    other_host = tmp_path / f".out.h5.elsewhere.{dead}.tmp"
    for path in (stale, alive, other_host):
        path.write_bytes(b"partial")
    with atomic_h5(tmp_path / "out.h5") as handle:
        handle["x"] = [1]
    assert not stale.exists()
    assert alive.exists() and other_host.exists()  # a live writer, or one we cannot see
