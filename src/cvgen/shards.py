"""HDF5 layout of params.h5 and shard files, atomic writes, and shard verification.

Layout shared by params.h5, shards and the dataset:
  /samples/parameters   (N, Ps) float64   per-sample parameter values, attr `names`
  /samples/circuit_index (N,)   int64     which circuit each sample belongs to
  /circuits/parameters  (C, Pc) float64   per-circuit parameter values, attr `names`
  /outputs/<name>       (N, ...)          observables (shards and dataset only)
Run metadata lives in the root attributes; JSON text for anything structured.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from cvgen.convergence import checked_outputs, checked_rows
from cvgen.errors import CvgenError
from cvgen.params import DrawnParameters
from cvgen.plan import DatasetPlan, plan_from_json
from cvgen.records import ShardRun
from cvgen.sampling import summary_names

FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_h5(path: str | Path):
    """Open an HDF5 file for writing that appears at `path` only if the block succeeds.

    The file is written under a hidden temporary name in the same folder (same file system,
    so the final rename is atomic) and removed if anything raises or the process is killed
    before the rename: readers never see a partial file at `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(path)
    temporary = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        with h5py.File(temporary, "w") as handle:
            handle.attrs["format_version"] = FORMAT_VERSION
            yield handle
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _remove_dead_temporaries(path: Path) -> None:
    """Delete temporaries of `path` left by killed writers on this host (their PID is gone)."""
    import psutil

    host = socket.gethostname()
    for temporary in path.parent.glob(f".{path.name}.{host}.*.tmp"):
        pid = temporary.name[len(f".{path.name}.{host}.") : -len(".tmp")]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            temporary.unlink(missing_ok=True)


def write_parameters(handle: h5py.File, drawn: DrawnParameters, rows: slice = slice(None)) -> None:
    """Store the per-sample rows `rows` and all per-circuit values under the common layout."""
    samples = handle.create_group("samples")
    samples.create_dataset("parameters", data=drawn.sample_values[rows])
    samples["parameters"].attrs["names"] = json.dumps(drawn.sample_names)
    samples.create_dataset("circuit_index", data=drawn.circuit_index[rows])
    circuits = handle.create_group("circuits")
    circuits.create_dataset("parameters", data=drawn.circuit_values)
    circuits["parameters"].attrs["names"] = json.dumps(drawn.circuit_names)


def read_parameters(handle: h5py.File) -> DrawnParameters:
    """The parameter values stored in an open params, shard or dataset file."""
    samples, circuits = handle["samples"], handle["circuits"]
    return DrawnParameters(
        circuit_names=tuple(json.loads(circuits["parameters"].attrs["names"])),
        circuit_values=circuits["parameters"][()],
        sample_names=tuple(json.loads(samples["parameters"].attrs["names"])),
        sample_values=samples["parameters"][()],
        circuit_index=samples["circuit_index"][()],
    )


@dataclass
class ParamsFile:
    """Contents of params.h5: the dataset plan (its circuit compiled to an op list, for the
    compiled engine) and every drawn parameter value."""

    plan: DatasetPlan
    drawn: DrawnParameters

    @property
    def config(self) -> dict:
        return self.plan.config

    @property
    def config_hash(self) -> str:
        return self.plan.config_hash

    @property
    def blackbird_text(self) -> str | None:
        return self.plan.circuit.blackbird_text


def write_params_file(path: str | Path, params: ParamsFile, attrs: dict) -> None:
    """Write params.h5 atomically."""
    with atomic_h5(path) as handle:
        handle.attrs["plan"] = params.plan.to_json()
        handle.attrs["config"] = json.dumps(params.config, sort_keys=True)
        handle.attrs["config_hash"] = params.config_hash
        handle.attrs["blackbird"] = params.blackbird_text or ""
        for key, value in attrs.items():
            handle.attrs[key] = value
        write_parameters(handle, params.drawn)


def read_params_file(path: str | Path) -> ParamsFile:
    """Read params.h5 back; a missing or unreadable file is one clear error."""
    with open_h5(path, "parameters file", "rerun prepare_params") as handle:
        if "plan" not in handle.attrs:
            raise CvgenError(f"parameters file {path} holds no dataset plan; rerun prepare_params")
        return ParamsFile(plan=plan_from_json(handle.attrs["plan"]), drawn=read_parameters(handle))


@dataclass
class Shard:
    """One generation job's result: its sample range, parameters, outputs and run metadata."""

    index: int
    start: int
    stop: int
    sample_values: np.ndarray
    circuit_index: np.ndarray
    outputs: dict[str, np.ndarray]
    attrs: dict = field(default_factory=dict)  # the ShardRun's fields, provenance, config hash
    summaries: dict[str, np.ndarray] = field(default_factory=dict)  # see cvgen.sampling
    convergence: dict[str, np.ndarray] = field(default_factory=dict)  # see cvgen.convergence

    @property
    def run(self) -> ShardRun:
        return ShardRun.from_attrs(self.attrs)


def write_shard(path: str | Path, shard: Shard) -> None:
    """Write a shard atomically: it exists at `path` complete, or not at all."""
    with atomic_h5(path) as handle:
        for key, value in shard.attrs.items():
            handle.attrs[key] = value
        handle.attrs.update({"shard_index": shard.index, "start": shard.start, "stop": shard.stop})
        samples = handle.create_group("samples")
        samples.create_dataset("parameters", data=shard.sample_values)
        samples.create_dataset("circuit_index", data=shard.circuit_index)
        outputs = handle.create_group("outputs")
        for name, values in shard.outputs.items():
            outputs.create_dataset(name, data=values)
        summaries = handle.create_group("summaries")
        for name, values in shard.summaries.items():
            summaries.create_dataset(name, data=values)
        convergence = handle.create_group("convergence")
        for name, values in shard.convergence.items():
            convergence.create_dataset(name, data=values)


def read_shard(path: str | Path) -> Shard:
    """Read a shard file; an unreadable one is one clear error naming the file."""
    with open_h5(path, "shard", "delete it and rerun snakemake to regenerate it") as handle:
        try:
            attrs = dict(handle.attrs)
            return Shard(
                index=int(attrs["shard_index"]),
                start=int(attrs["start"]),
                stop=int(attrs["stop"]),
                sample_values=handle["samples/parameters"][()],
                circuit_index=handle["samples/circuit_index"][()],
                outputs={name: data[()] for name, data in handle["outputs"].items()},
                attrs=attrs,
                summaries={name: data[()] for name, data in handle["summaries"].items()},
                convergence={name: data[()] for name, data in handle["convergence"].items()},
            )
        except (KeyError, OSError) as err:
            raise CvgenError(
                f"shard {path} is incomplete or corrupt ({err}); delete it and rerun snakemake "
                f"to regenerate it"
            ) from err


@contextlib.contextmanager
def open_h5(path: str | Path, what: str, fix: str):
    """Open an HDF5 file for reading, turning h5py's errors into one line naming the file."""
    try:
        handle = h5py.File(path, "r")
    except FileNotFoundError as err:
        raise CvgenError(f"{what} {path} not found; {fix}") from err
    except OSError as err:
        raise CvgenError(f"{what} {path} is not a readable HDF5 file ({err}); {fix}") from err
    with handle:
        yield handle


def verify_shard(
    shard: Shard, path: str | Path, params: ParamsFile, expected: tuple[int, int], index: int
) -> None:
    """Check a shard against params.h5: same config, expected range, same inputs, finite outputs."""
    fix = "delete it and rerun snakemake to regenerate it"
    if shard.attrs.get("config_hash") != params.config_hash:
        raise CvgenError(f"shard {path} was generated under a different config; {fix}")
    if (shard.index, shard.start, shard.stop) != (index, *expected):
        raise CvgenError(
            f"shard {path} covers samples [{shard.start}, {shard.stop}) as shard {shard.index}, "
            f"expected shard {index} with [{expected[0]}, {expected[1]}); {fix}"
        )
    rows = slice(*expected)
    count = expected[1] - expected[0]
    if not (
        np.array_equal(shard.sample_values, params.drawn.sample_values[rows])
        and np.array_equal(shard.circuit_index, params.drawn.circuit_index[rows])
    ):
        raise CvgenError(f"shard {path} holds parameter values that differ from params.h5; {fix}")
    plan = params.plan
    for name in plan.outputs:
        values = shard.outputs.get(name)
        if values is None or len(values) != count:
            raise CvgenError(f"shard {path} lacks {count} rows of output {name!r}; {fix}")
        if not np.all(np.isfinite(values)):
            raise CvgenError(f"shard {path} has NaN or Inf in output {name!r}; {fix}")
    expected = summary_names(plan.outputs, plan.circuit.modes)
    missing = [name for name in expected if name not in shard.summaries]
    if missing:
        raise CvgenError(f"shard {path} lacks the sampling summary {missing[0]!r}; {fix}")
    check = shard.convergence
    rows = checked_rows(plan, shard.start, shard.stop)
    names = ["norm", *(f"{k}_{n}" for k in ("max", "mean") for n in checked_outputs(plan.outputs))]
    if len(rows) and not (
        np.array_equal(check.get("rows"), rows)
        and all(name in check and len(check[name]) == len(rows) for name in names)
    ):
        raise CvgenError(f"shard {path} lacks its convergence check; {fix}")
