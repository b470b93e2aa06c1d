"""The final dataset: verified aggregation of shards into one HDF5 file, its reader, and the
integrity check of any file cvgen writes (`verify_file`, the `cvgen verify` command)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import yaml

from cvgen.conventions import (
    DETECTORS,
    EXPECTATION_CONVENTION,
    FOCK_CONVENTION,
    HBAR,
    OUTPUT_AXES,
    OUTPUT_MEANINGS,
    QUADRATURE_CONVENTION,
    real_dtype,
)
from cvgen.convergence import checked_outputs
from cvgen.errors import CvgenError
from cvgen.plan import DatasetPlan, plan_from_json
from cvgen.provenance import provenance_attrs
from cvgen.records import RUN_FIELDS
from cvgen.sampling import SUMMARIES, combine_summaries
from cvgen.shards import (
    PARAMS_FIX,
    SHARD_FIX,
    atomic_h5,
    check_shard_sha256,
    open_checked,
    open_h5,
    read_parameters,
    read_params_file,
    read_shard,
    sha256_path,
    verify_shard,
    write_array,
    write_manifest,
    write_parameters,
)
from cvgen.splits import assign_circuits, part_counts, sample_rows

log = logging.getLogger(__name__)

# dataset.h5's layout and self-description; the changelog is in the README ("Dataset schema
# versions"). Files written before it carry no schema_version.
SCHEMA_VERSION = "1.0.0"
# Outputs are stored sample-axis first in chunks of whole samples of about this size: small
# enough that reading one random sample decompresses little, large enough for fast sequential
# reads (benchmarks/reading.py measures both).
CHUNK_BYTES = 1 << 16
DATASET_FIX = "delete it and rerun snakemake to rebuild it from the shards"


def aggregate(params_path: str | Path, shard_paths: list[str | Path], output: str | Path) -> None:
    """Verify every shard (its bytes against the SHA-256 recorded when it was written, its
    arrays' checksums, then its contents against params.h5) and write dataset.h5 with a
    manifest of its arrays' SHA-256; nothing is written on failure."""
    params = read_params_file(params_path)
    plan = params.plan
    ranges = plan.shards
    if len(shard_paths) != len(ranges):
        raise CvgenError(
            f"aggregate got {len(shard_paths)} shard files but the config defines {len(ranges)} "
            f"shards; run the whole workflow with snakemake"
        )
    n_samples = plan.n_samples
    with atomic_h5(output) as handle:
        _write_attrs(handle, plan)
        write_parameters(handle, params.drawn)
        outputs = handle.create_group("outputs")
        table: dict[str, list] = {name: [] for name in RUN_FIELDS}
        summaries: dict[str, np.ndarray] = {}
        checks: list[dict[str, np.ndarray]] = []
        for index, (path, expected) in enumerate(zip(shard_paths, ranges, strict=True)):
            check_shard_sha256(path)
            shard = read_shard(path)
            verify_shard(shard, path, params, expected, index)
            for name, values in shard.outputs.items():
                if name not in outputs:
                    _create_output(outputs, name, values, n_samples)
                outputs[name][shard.start : shard.stop] = values
            run = shard.run.attrs()
            for name in table:
                table[name].append(run[name])
            summaries = combine_summaries(summaries, shard.summaries)
            checks.append(shard.convergence)
        _describe_outputs(outputs)
        _write_splits(handle, plan, params.drawn.circuit_index)
        _write_summaries(handle, summaries, plan)
        _write_convergence(handle, checks, plan)
        provenance = handle.create_group("provenance/shards")
        for name, values in table.items():
            strings = isinstance(values[0], str)
            write_array(provenance, name, _strings(values) if strings else values)
        arrays = write_manifest(handle, output, "dataset", DATASET_FIX)
    log.info(
        "verified %d shards, wrote %d samples to %s (%d arrays, their SHA-256 in its manifest)",
        *(len(ranges), n_samples, output, arrays),
    )


def _strings(values: list[str]) -> np.ndarray:
    """Fixed-length UTF-8 strings: their bytes lie in the array's chunks, under its checksum
    (variable-length strings live in a heap no checksum covers)."""
    encoded = [value.encode() for value in values]
    return np.asarray(encoded, dtype=h5py.string_dtype("utf-8", max(1, *map(len, encoded))))


def _write_attrs(handle: h5py.File, plan: DatasetPlan) -> None:
    config, circuit = plan.config, plan.circuit
    handle.attrs.update(
        {
            **provenance_attrs(),
            "config": json.dumps(config, sort_keys=True),
            "config_yaml": yaml.safe_dump(config, sort_keys=False),
            "config_hash": plan.config_hash,
            "plan": plan.to_json(),
            "blackbird": circuit.blackbird_text or "",
            "seed": plan.seed,
            "engine": plan.engine,
            "backend": plan.backend,
            "backend_reason": plan.backend_reason,
            "batch_size": plan.batch_size,
            "n_samples": plan.n_samples,
            "n_circuits": plan.n_circuits,
            "modes": circuit.modes,
            "cutoff": circuit.cutoff,
            "truncation": circuit.truncation,
            "dtype": circuit.dtype,
            "hbar": HBAR,
            "outputs": json.dumps(list(plan.outputs)),
            **convention_attrs(plan),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )


def convention_attrs(plan: DatasetPlan) -> dict:
    """The dataset's conventions as root attributes, so that the file describes itself."""
    sampled = [name for name in plan.outputs if name in DETECTORS]
    return {
        "schema_version": SCHEMA_VERSION,
        "sample_axis": 0,
        "real_dtype": real_dtype(plan.circuit.dtype),
        "quadrature_order": QUADRATURE_CONVENTION,
        "fock_order": FOCK_CONVENTION,
        "expectation_values": EXPECTATION_CONVENTION,
        "detector_model": json.dumps({name: DETECTORS[name] for name in sampled}),
        "split": json.dumps(_split_record(plan)),
    }


def _split_record(plan: DatasetPlan) -> dict | None:
    """What the `split` attribute records: parts in order, fractions and counts, and how."""
    if plan.split is None:
        return None
    counts = part_counts(plan.split, plan.n_circuits)
    return {
        "by": "circuit",
        "parts": list(plan.split),
        "fractions": plan.split,
        "circuits": counts,
        "samples": {name: count * plan.samples_per_circuit for name, count in counts.items()},
        "method": "cvgen.splits: circuits ordered by a uniform number keyed on (seed, circuit)",
    }


def _write_splits(handle: h5py.File, plan: DatasetPlan, circuit_index: np.ndarray) -> None:
    """/splits/circuit_part: the part (index into the `split` attribute's parts) of every
    circuit; a sample's part is that of its circuit."""
    if plan.split is None:
        return
    group = handle.create_group("splits")
    parts = assign_circuits(plan.seed, plan.split, plan.n_circuits)
    write_array(group, "circuit_part", parts)
    group["circuit_part"].attrs["parts"] = json.dumps(list(plan.split))


def _describe_outputs(outputs: h5py.Group) -> None:
    """Each output's axes and meaning as attributes of its array."""
    for name in outputs:
        base = name.removesuffix("_stderr")
        axes = OUTPUT_AXES.get(base)
        if axes is None or len(axes) != outputs[name].ndim:
            axes = ("sample", *(f"axis_{i}" for i in range(1, outputs[name].ndim)))
        meaning = OUTPUT_MEANINGS.get(base, base)
        attrs = {
            "axes": json.dumps(axes),
            "meaning": meaning if base == name else f"standard error of {base} ({meaning})",
        }
        if name in DETECTORS:
            attrs["detector"] = DETECTORS[name]
        outputs[name].attrs.update(attrs)


def _write_convergence(handle: h5py.File, checks: list[dict], plan: DatasetPlan) -> None:
    """Every shard's re-run samples in one group; per output, the worst and mean deviation also
    as root attributes (convergence_{max,mean}_abs_deviation_{output})."""
    group = handle.create_group("convergence")
    settings = plan.convergence
    cutoff = plan.circuit.cutoff
    group.attrs.update(
        {
            "cutoff": cutoff,
            "reference_cutoff": cutoff + settings.extra_cutoff,
            "tolerance": settings.tolerance,
        }
    )
    if not any(checks):
        handle.attrs["convergence_samples"] = 0
        return
    for name in checks[0]:
        write_array(group, name, np.concatenate([check[name] for check in checks]))
    attrs = {
        "convergence_samples": len(group["rows"]),
        "convergence_reference_cutoff": cutoff + settings.extra_cutoff,
    }
    for name in checked_outputs(plan.outputs):
        attrs[f"convergence_max_abs_deviation_{name}"] = float(group[f"max_{name}"][()].max())
        attrs[f"convergence_mean_abs_deviation_{name}"] = float(group[f"mean_{name}"][()].mean())
    handle.attrs.update(attrs)


def _write_summaries(handle: h5py.File, summaries: dict, plan: DatasetPlan) -> None:
    """The exact distributions behind the sampled outputs: means over all samples, worst errors.

    The group's attributes say how to read them: the homodyne grid and quadrature angles.
    """
    group = handle.create_group("summaries")
    for name, value in summaries.items():
        mean = SUMMARIES[name] == "mean"
        write_array(group, name, value / plan.n_samples if mean else value)
    spec = plan.sampling
    if spec:
        group.attrs.update(
            {
                "shots": spec.shots,
                "angles": np.asarray(spec.angles),
                "grid_start": spec.grid_start,
                "grid_step": spec.grid_step,
                "grid_points": spec.grid_points,
            }
        )


def _create_output(group: h5py.Group, name: str, first: np.ndarray, n_samples: int) -> None:
    """A chunked, compressed dataset for one output, chunks of about CHUNK_BYTES, each with its
    checksum."""
    row_bytes = max(1, first[0].nbytes if first.ndim > 1 else first.itemsize)
    rows = int(max(1, min(n_samples, CHUNK_BYTES // row_bytes)))
    write_array(
        group,
        name,
        shape=(n_samples, *first.shape[1:]),
        dtype=first.dtype,
        chunks=(rows, *first.shape[1:]),
        compression="gzip",
        compression_opts=4,
        shuffle=True,
    )


@dataclass
class Dataset:
    """A dataset read into memory: arrays keyed by name, plus its config and metadata."""

    outputs: dict[str, np.ndarray]
    sample_parameters: dict[str, np.ndarray]
    circuit_parameters: dict[str, np.ndarray]
    circuit_index: np.ndarray
    config: dict
    plan: DatasetPlan  # what the build derived from the config (shards, backend, batch size)
    attrs: dict
    shards: dict[str, np.ndarray]
    summaries: dict[str, np.ndarray]  # exact distributions behind sampled outputs
    convergence: dict  # re-run samples and their deviations at a higher cutoff, with settings
    sampling: dict  # shots, quadrature angles and homodyne grid, when outputs are sampled
    splits: dict[str, np.ndarray] = field(default_factory=dict)  # part -> its sample rows


def read_dataset(path: str | Path) -> Dataset:
    """Read dataset.h5 as numpy arrays and metadata, every array checked against its checksum
    and the manifest: damage is one CvgenError naming the file and the array."""
    with open_checked(path, "dataset", DATASET_FIX, "build it with snakemake") as file:
        drawn = read_parameters(file)
        attrs = dict(file.attrs)
        dataset = Dataset(
            outputs=file.arrays("outputs"),
            sample_parameters={
                name: drawn.sample_values[:, j] for j, name in enumerate(drawn.sample_names)
            },
            circuit_parameters={
                name: drawn.circuit_values[:, j] for j, name in enumerate(drawn.circuit_names)
            },
            circuit_index=drawn.circuit_index,
            config=json.loads(attrs["config"]),
            plan=plan_from_json(attrs["plan"]),
            attrs=attrs,
            shards=file.arrays("provenance/shards"),
            summaries=file.arrays("summaries"),
            sampling=dict(file.handle["summaries"].attrs),
            convergence={**dict(file.handle["convergence"].attrs), **file.arrays("convergence")},
            splits=_read_splits(file, drawn.circuit_index),
        )
        file.check_listed()
        return dataset


def _read_splits(file, circuit_index: np.ndarray) -> dict[str, np.ndarray]:
    """Each part of the dataset's split with its sample rows (empty without a split)."""
    if "splits" not in file.handle:
        return {}
    circuit_part = file.array("splits/circuit_part")
    parts = json.loads(file.handle["splits/circuit_part"].attrs["parts"])
    return {name: sample_rows(circuit_part, circuit_index, i) for i, name in enumerate(parts)}


def verify_file(path: str | Path) -> str:
    """Check every array of a shard, params.h5 or dataset.h5 against its checksum, a dataset's
    against its manifest, and a shard's bytes against its sidecar when it has one; return the
    one-line verdict. Damage is one CvgenError naming the file and the array."""
    sidecar = sha256_path(path)
    matched = sidecar.exists() and check_shard_sha256(path)  # before anything parses the file
    with open_h5(path, "file", "pass a shard, params.h5 or dataset.h5 written by cvgen") as handle:
        if "shard_index" in handle.attrs:
            what, fix = "shard", SHARD_FIX
            kind = f"shard {int(handle.attrs['shard_index'])}"
        elif "outputs" in handle:
            what = kind = "dataset"
            fix = DATASET_FIX
        elif "plan" in handle.attrs:
            what = kind = "parameters file"
            fix = PARAMS_FIX
        else:
            raise CvgenError(
                f"{path} is not a file cvgen wrote; pass a shard, params.h5 or dataset.h5"
            )
    with open_checked(path, what, fix) as file:
        if what == "dataset" and file.manifest is None:
            raise CvgenError(
                f"dataset {path} has no manifest of its arrays' SHA-256 (written by cvgen before "
                f"format 2), so it cannot be verified; {fix}"
            )
        count = file.check_all(strict=True)
    verdict = f"OK {path}: {kind}, {count} arrays pass their checksums"
    if what == "dataset":
        return f"{verdict} and match the manifest"
    if what == "shard" and matched:
        return f"{verdict}; the file matches the SHA-256 in {sidecar.name}"
    if what == "shard":
        return f"{verdict}; no {sidecar.name} next to it: the file's SHA-256 was not checked"
    return verdict
