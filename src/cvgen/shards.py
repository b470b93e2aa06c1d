"""HDF5 layout of params.h5 and shard files, atomic writes, checksums and shard verification.

Layout shared by params.h5, shards and the dataset:
  /samples/parameters   (N, Ps) float64   per-sample parameter values, attr `names`
  /samples/circuit_index (N,)   int64     which circuit each sample belongs to
  /circuits/parameters  (C, Pc) float64   per-circuit parameter values, attr `names`
  /outputs/<name>       (N, ...)          observables (shards and dataset only)
Run metadata lives in the root attributes; JSON text for anything structured.

Integrity (format 2): every array is chunked and carries HDF5's Fletcher-32 checksum on each
chunk, which HDF5 checks on every read (`write_array`; a scalar is stored as one element with
the attribute `scalar`, since HDF5 cannot chunk scalars). Every read goes through `CheckedFile`,
which turns a failed checksum into one CvgenError naming the file and the array, and compares
each array with the file's `manifest` (a root attribute: JSON mapping every array's path to the
SHA-256 of its values' C-order bytes, `array_sha256`) where it has one: the dataset does. A
shard's whole file has its SHA-256 in a sidecar `{shard}.sha256` (sha256sum's format), written
right after the shard and checked before anything parses the shard (`check_shard_sha256`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from cvgen.convergence import checked_outputs, checked_rows
from cvgen.errors import CvgenError, DiskFullError
from cvgen.params import DrawnParameters
from cvgen.plan import DatasetPlan, plan_from_json
from cvgen.records import ShardRun
from cvgen.sampling import summary_names

FORMAT_VERSION = 2  # 2: every array checksummed (Fletcher-32), shard sidecars, dataset manifest
SHARD_FIX = "delete it and rerun snakemake to regenerate it"
PARAMS_FIX = "delete it and rerun snakemake to draw it again (the same values: draws are seeded)"
BLOCK_BYTES = 1 << 24  # arrays are checked and hashed in blocks of rows of about this size


@contextlib.contextmanager
def atomic_file(path: str | Path):
    """A temporary path to write that is renamed to `path` only if the block succeeds.

    The temporary is a hidden name in the same folder (same file system, so the final rename
    is atomic), removed if anything raises or the process is killed before the rename:
    readers never see a partial file at `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(path)
    temporary = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as err:
        if not _disk_full(err):
            raise
        written = temporary.stat().st_size if temporary.exists() else 0
        free = shutil.disk_usage(path.parent).free
        raise DiskFullError(
            f"no space left on the device holding {path.parent} while writing {path.name} "
            f"({written / 2**20:.1f} MB written, {free / 2**20:.1f} MB free): free space there, "
            f"or run the workflow in a folder on a larger file system; nothing was written"
        ) from err
    finally:
        temporary.unlink(missing_ok=True)


def _disk_full(err: OSError) -> bool:
    """Whether an error (also h5py's, which lose the errno) says the device is full."""
    return err.errno == errno.ENOSPC or "No space left on device" in str(err)


@contextlib.contextmanager
def atomic_h5(path: str | Path):
    """Open an HDF5 file for writing that appears at `path` only if the block succeeds."""
    with atomic_file(path) as temporary, h5py.File(temporary, "w") as handle:
        handle.attrs["format_version"] = FORMAT_VERSION
        yield handle


def _remove_dead_temporaries(path: Path) -> None:
    """Delete temporaries of `path` left by killed writers on this host (their PID is gone)."""
    import psutil

    host = socket.gethostname()
    for temporary in path.parent.glob(f".{path.name}.{host}.*.tmp"):
        pid = temporary.name[len(f".{path.name}.{host}.") : -len(".tmp")]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            temporary.unlink(missing_ok=True)


def write_array(group: h5py.Group, name: str, values=None, **options) -> h5py.Dataset:
    """Store one array the way cvgen stores every array: chunked (h5py's guess unless `chunks`
    is given), with HDF5's Fletcher-32 checksum on every chunk, which HDF5 checks on each read.

    HDF5 cannot chunk a scalar, so a 0-d value is stored as one element with the attribute
    `scalar`; `CheckedFile.array` gives it back as a scalar.
    """
    scalar = values is not None and np.ndim(values) == 0
    if scalar:
        values = np.reshape(values, 1)
    options.setdefault("chunks", True)
    data = group.create_dataset(name, data=values, fletcher32=True, **options)
    if scalar:
        data.attrs["scalar"] = True
    return data


def array_sha256(blocks) -> str:
    """SHA-256 of an array's values as C-order bytes (numpy's tobytes), given in row blocks."""
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(np.ascontiguousarray(block).tobytes())
    return digest.hexdigest()


class DamagedArray(CvgenError):
    """One array of a file fails its checksum, cannot be read, or differs from the manifest."""

    def __init__(self, message: str, array: str, reason: str):
        super().__init__(message)
        self.array, self.reason = array, reason


class CheckedFile:
    """An open cvgen file whose arrays are read through their checksums.

    A chunk failing its Fletcher-32 checksum, an array HDF5 cannot read, or one whose SHA-256
    differs from the file's manifest (where the file has one) is one DamagedArray naming the
    file and the array, with `fix`.
    """

    def __init__(self, handle: h5py.File, path: str | Path, what: str, fix: str):
        self.handle, self.path, self.what, self.fix = handle, path, what, fix
        self.manifest: dict[str, str] | None = None
        if "manifest" in handle.attrs:
            try:
                self.manifest = dict(json.loads(handle.attrs["manifest"]))
            except (TypeError, ValueError) as err:
                message = f"{what} {path}: its manifest is unreadable ({err}); {fix}"
                raise CvgenError(message) from err

    @property
    def attrs(self) -> h5py.AttributeManager:
        return self.handle.attrs

    def names(self) -> list[str]:
        """The path of every array in the file, sorted."""
        found: list[str] = []
        self.handle.visititems(
            lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None
        )
        return sorted(found)

    def array(self, name: str) -> np.ndarray:
        """One array's values, checked (strings decoded to str, a stored scalar a scalar)."""
        data = self.handle[name]
        with self._reading(name, data):
            values = data[()]
        if self.manifest is not None:
            self._compare(name, array_sha256([values]))
        strings = h5py.check_string_dtype(data.dtype)
        if strings:
            values = np.char.decode(np.asarray(values, dtype=bytes), strings.encoding)
        return values[0] if data.attrs.get("scalar", False) else values

    def arrays(self, group: str) -> dict[str, np.ndarray]:
        """Every array of a group, by name, checked."""
        return {name: self.array(f"{group}/{name}") for name in self.handle[group]}

    def check(self, name: str, strict: bool = False) -> str:
        """Read one array in blocks of rows, so that any size fits in memory, checking every
        chunk's checksum and the manifest; return its SHA-256. `strict`: an array without a
        checksum (a file written before format 2) is an error too."""
        data = self.handle[name]
        if strict and not data.fletcher32:
            raise self._damaged(name, "carries no checksum (written by cvgen before format 2)")
        with self._reading(name, data):
            digest = array_sha256(self._blocks(data))
        self._compare(name, digest)
        return digest

    def check_all(self, strict: bool = False) -> int:
        """Check every array (and that every array the manifest lists is there); the count."""
        names = self.names()
        for name in names:
            self.check(name, strict)
        self.check_listed(names)
        return len(names)

    def check_listed(self, names: list[str] | None = None) -> None:
        """Every array the manifest lists is in the file."""
        missing = sorted(set(self.manifest or ()) - set(self.names() if names is None else names))
        if missing:
            raise self._damaged(missing[0], "is missing, though its manifest lists it")

    def _blocks(self, data: h5py.Dataset) -> Iterator[np.ndarray]:
        if data.ndim == 0:
            yield np.asarray(data[()])
            return
        row_bytes = max(1, data.dtype.itemsize * int(np.prod(data.shape[1:])))
        rows = max(1, BLOCK_BYTES // row_bytes)
        if data.chunks:
            rows = max(data.chunks[0], rows - rows % data.chunks[0])
        for start in range(0, data.shape[0], rows):
            yield data[start : start + rows]

    @contextlib.contextmanager
    def _reading(self, name: str, data: h5py.Dataset):
        try:
            yield
        except OSError as err:
            if data.fletcher32 and "filter" in str(err):
                reason = "fails its checksum (its bytes changed after it was written)"
            else:
                reason = f"cannot be read ({err})"
            raise self._damaged(name, reason) from err

    def _compare(self, name: str, digest: str) -> None:
        if self.manifest is None:
            return
        recorded = self.manifest.get(name)
        if recorded is None:
            raise self._damaged(name, "is not in the manifest (it was added after writing)")
        if digest != recorded:
            raise self._damaged(
                name, "does not match its SHA-256 in the manifest (changed after it was written)"
            )

    def _damaged(self, name: str, reason: str) -> DamagedArray:
        message = f"{self.what} {self.path}: array {name} {reason}; {self.fix}"
        return DamagedArray(message, name, reason)


@contextlib.contextmanager
def open_checked(
    path: str | Path, what: str, fix: str, missing: str | None = None
) -> Iterator[CheckedFile]:
    """Open a cvgen file for reading its arrays through their checksums (see CheckedFile)."""
    with open_h5(path, what, fix, missing) as handle:
        yield CheckedFile(handle, path, what, fix)


def write_manifest(handle: h5py.File, path: str | Path, what: str, fix: str) -> int:
    """Record every array's SHA-256 in the root attribute `manifest` (JSON, path -> hex digest),
    read back as a reader will get it; the number of arrays."""
    file = CheckedFile(handle, path, what, fix)
    digests = {name: file.check(name) for name in file.names()}
    handle.attrs["manifest"] = json.dumps(digests, sort_keys=True)
    return len(digests)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_path(shard_path: str | Path) -> Path:
    """The sidecar holding the SHA-256 a shard had when it was written: `{shard}.sha256`."""
    shard_path = Path(shard_path)
    return shard_path.with_name(f"{shard_path.name}.sha256")


def write_sha256(path: str | Path) -> None:
    """Record a file's SHA-256 in its sidecar, atomically, in sha256sum's format (so that
    `sha256sum -c 0.h5.sha256` in the shards folder checks it too)."""
    digest = file_sha256(path)
    with atomic_file(sha256_path(path)) as temporary:
        temporary.write_text(f"{digest}  {Path(path).name}\n")


def check_shard_sha256(path: str | Path, required: bool = True) -> bool:
    """Compare a shard's bytes with the SHA-256 recorded when it was written, before anything
    parses the file. A mismatch is one CvgenError naming the shard and, where one fails its
    checksum, the damaged array. Without a sidecar: an error if `required`, else False."""
    sidecar = sha256_path(path)
    if not Path(path).is_file():
        raise CvgenError(f"shard {path} not found; {SHARD_FIX}")
    try:
        recorded = sidecar.read_text().split()[0]
    except FileNotFoundError:
        if not required:
            return False
        raise CvgenError(
            f"shard {path} has no {sidecar.name} (the SHA-256 recorded when it was written), so "
            f"its bytes cannot be checked; {SHARD_FIX}"
        ) from None
    except (OSError, UnicodeDecodeError, IndexError) as err:
        message = f"shard {path}: its {sidecar.name} is unreadable ({err}); {SHARD_FIX}"
        raise CvgenError(message) from err
    if file_sha256(path) != recorded:
        raise CvgenError(_sha256_mismatch(path, sidecar.name))
    return True


def _sha256_mismatch(path: str | Path, sidecar: str) -> str:
    """The one line for a shard whose bytes differ from its sidecar, naming the damaged array
    when one fails its checksum."""
    differs = f"no longer matches the SHA-256 in {sidecar} recorded when it was written"
    try:
        with open_checked(path, "shard", SHARD_FIX) as file:
            file.check_all()
        detail = (
            "every array still passes its checksum: the change is in its attributes or HDF5 "
            "metadata, or the shard or its sidecar was replaced"
        )
    except DamagedArray as err:
        return f"shard {path}: array {err.array} {err.reason}, and the file {differs}; {SHARD_FIX}"
    except Exception:  # HDF5 may fail anywhere in a file this damaged; the digest has decided
        detail = "HDF5 cannot read it any more"
    return f"shard {path} {differs} ({detail}); {SHARD_FIX}"


def write_parameters(handle: h5py.File, drawn: DrawnParameters, rows: slice = slice(None)) -> None:
    """Store the per-sample rows `rows` and all per-circuit values under the common layout."""
    samples = handle.create_group("samples")
    write_array(samples, "parameters", drawn.sample_values[rows])
    samples["parameters"].attrs["names"] = json.dumps(drawn.sample_names)
    write_array(samples, "circuit_index", drawn.circuit_index[rows])
    circuits = handle.create_group("circuits")
    write_array(circuits, "parameters", drawn.circuit_values)
    circuits["parameters"].attrs["names"] = json.dumps(drawn.circuit_names)


def read_parameters(file: CheckedFile) -> DrawnParameters:
    """The parameter values stored in an open params, shard or dataset file, checked."""
    samples, circuits = file.handle["samples"], file.handle["circuits"]
    return DrawnParameters(
        circuit_names=tuple(json.loads(circuits["parameters"].attrs["names"])),
        circuit_values=file.array("circuits/parameters"),
        sample_names=tuple(json.loads(samples["parameters"].attrs["names"])),
        sample_values=file.array("samples/parameters"),
        circuit_index=file.array("samples/circuit_index"),
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
    with open_checked(path, "parameters file", PARAMS_FIX, "rerun prepare_params") as file:
        if "plan" not in file.attrs:
            raise CvgenError(f"parameters file {path} holds no dataset plan; rerun prepare_params")
        return ParamsFile(plan=plan_from_json(file.attrs["plan"]), drawn=read_parameters(file))


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
    """Write a shard atomically (it exists at `path` complete, or not at all), then the sidecar
    with its SHA-256 (`sha256_path`), also atomically.

    The old sidecar goes first: a job killed between the two renames leaves a shard without
    one (refused, and rerun by Snakemake: the sidecar is an output), never a stale digest.
    """
    sha256_path(path).unlink(missing_ok=True)
    with atomic_h5(path) as handle:
        for key, value in shard.attrs.items():
            handle.attrs[key] = value
        handle.attrs.update({"shard_index": shard.index, "start": shard.start, "stop": shard.stop})
        arrays = {
            "samples": {"parameters": shard.sample_values, "circuit_index": shard.circuit_index},
            "outputs": shard.outputs,
            "summaries": shard.summaries,
            "convergence": shard.convergence,
        }
        for group_name, values in arrays.items():
            group = handle.create_group(group_name)
            for name, value in values.items():
                write_array(group, name, value)
    write_sha256(path)


def read_shard(path: str | Path) -> Shard:
    """Read a shard file, every array through its checksum; an unreadable or damaged one is one
    clear error naming the file (and the array)."""
    with open_checked(path, "shard", SHARD_FIX) as file:
        try:
            attrs = dict(file.attrs)
            return Shard(
                index=int(attrs["shard_index"]),
                start=int(attrs["start"]),
                stop=int(attrs["stop"]),
                sample_values=file.array("samples/parameters"),
                circuit_index=file.array("samples/circuit_index"),
                outputs=file.arrays("outputs"),
                attrs=attrs,
                summaries=file.arrays("summaries"),
                convergence=file.arrays("convergence"),
            )
        except (KeyError, OSError) as err:
            raise CvgenError(f"shard {path} is incomplete or corrupt ({err}); {SHARD_FIX}") from err


@contextlib.contextmanager
def open_h5(path: str | Path, what: str, fix: str, missing: str | None = None):
    """Open an HDF5 file for reading, turning h5py's errors into one line naming the file
    (with `missing` as the fix when there is no file, where it differs)."""
    try:
        handle = h5py.File(path, "r")
    except FileNotFoundError as err:
        raise CvgenError(f"{what} {path} not found; {missing or fix}") from err
    except OSError as err:
        raise CvgenError(f"{what} {path} is not a readable HDF5 file ({err}); {fix}") from err
    with handle:
        yield handle


def verify_shard(
    shard: Shard, path: str | Path, params: ParamsFile, expected: tuple[int, int], index: int
) -> None:
    """Check a shard against params.h5: same config, expected range, same inputs, finite outputs."""
    fix = SHARD_FIX
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
