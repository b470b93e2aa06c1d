"""Every byte verified: damage to any array of a shard or the dataset is refused, naming both.

The files are real: a tiny sampled dataset (float, uint8 and string arrays, summaries, the
convergence check) made by the real stages. Damage is one byte flipped inside an array's
stored data, found with h5py, exactly like the flipped byte of issue 13 (quad_x 1.0967 ->
1.5967 went into dataset.h5 with exit 0).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import run_workflow, tiny_config
from cvgen.dataset import aggregate, read_dataset
from cvgen.errors import CvgenError
from cvgen.shards import read_shard, sha256_path
from cvgen.stages import generate_shard, prepare_params

CVGEN = Path(sys.executable).with_name("cvgen")
SHARDS = 2
# One array of every kind a shard holds: float and uint8 outputs, the parameters, the circuit
# index, array and scalar summaries, the convergence check's arrays.
SHARD_ARRAYS = [
    "outputs/quad_x",
    "outputs/fock_samples",
    "samples/parameters",
    "samples/circuit_index",
    "summaries/homodyne_density",
    "summaries/homodyne_mass_error",
    "convergence/max_quad_x",
    "convergence/rows",
]
# The dataset adds compressed outputs, the per-circuit parameters and the shards' strings.
DATASET_ARRAYS = [
    *SHARD_ARRAYS,
    "outputs/homodyne",
    "circuits/parameters",
    "provenance/shards/host",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """params.h5, two shards and dataset.h5 of a tiny sampled dataset, made by the stages."""
    folder = tmp_path_factory.mktemp("built")
    config = tiny_config(
        outputs=["quad_x", "norm", "homodyne", "fock_samples"],
        sampling={"shots": 3},
        shard_size=30,
    )
    prepare_params(config, folder / "params.h5")
    for index in range(SHARDS):
        generate_shard(folder / "params.h5", index, folder / f"shards/{index}.h5")
    aggregate(folder / "params.h5", shard_paths(folder), folder / "dataset.h5")
    return folder


@pytest.fixture
def files(built, tmp_path) -> Path:
    """A fresh copy of the built files to damage."""
    shutil.copytree(built, tmp_path, dirs_exist_ok=True)
    return tmp_path


def shard_paths(folder: Path) -> list[Path]:
    return [folder / f"shards/{index}.h5" for index in range(SHARDS)]


def flip_byte(path: Path, array: str) -> None:
    """XOR one byte in the middle of the first chunk of `array`'s stored data."""
    with h5py.File(path, "r") as handle:
        chunk = handle[array].id.get_chunk_info(0)
    offset = chunk.byte_offset + (chunk.size - 4) // 2  # the chunk's last 4 bytes: Fletcher-32
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0x5A]))


def only_error_line(result: subprocess.CompletedProcess) -> str:
    """The one `cvgen error:` line of a failed cvgen command (and nothing else on stderr)."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cvgen error: "), result.stderr
    return lines[0]


def verify(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CVGEN), "verify", *map(str, paths)], capture_output=True, text=True, timeout=60
    )


def arrays_in(handle: h5py.File) -> list[h5py.Dataset]:
    found = []
    handle.visititems(
        lambda _, item: found.append(item) if isinstance(item, h5py.Dataset) else None
    )
    return found


def test_every_array_carries_a_checksum_and_outputs_stay_compressed(built):
    for name in ("params.h5", "shards/0.h5", "dataset.h5"):
        with h5py.File(built / name, "r") as handle:
            arrays = arrays_in(handle)
            assert arrays and all(data.fletcher32 and data.chunks for data in arrays), name
    with h5py.File(built / "dataset.h5", "r") as handle:
        assert all(
            data.compression == "gzip" and data.shuffle for data in handle["outputs"].values()
        )


def test_undamaged_files_verify_ok(built):
    paths = [built / "params.h5", *shard_paths(built), built / "dataset.h5"]
    result = verify(*paths)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all(
        line.startswith(f"OK {path}:") for line, path in zip(lines, paths, strict=True)
    )
    assert "3 arrays pass their checksums" in lines[0]
    assert "the file matches the SHA-256 in 0.h5.sha256" in lines[1]
    assert "arrays pass their checksums and match the manifest" in lines[3]
    dataset = read_dataset(built / "dataset.h5")
    assert dataset.shards["host"].dtype.kind == "U"  # strings still come back as str
    assert np.ndim(dataset.summaries["homodyne_mass_error"]) == 0  # and scalars as scalars


@pytest.mark.parametrize("array", SHARD_ARRAYS)
def test_damaged_shard_array_is_refused_naming_shard_and_array(files, array):
    shard = files / "shards/1.h5"
    flip_byte(shard, array)
    with pytest.raises(CvgenError) as refused:
        aggregate(files / "params.h5", shard_paths(files), files / "fresh.h5")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"shard {shard}: array {array} fails its checksum")
    assert "no longer matches the SHA-256 in 1.h5.sha256" in message
    assert message.endswith("delete it and rerun snakemake to regenerate it")
    assert not (files / "fresh.h5").exists()
    with pytest.raises(CvgenError, match=f"shard {shard}: array {array} fails its checksum"):
        read_shard(shard)  # the checksum alone, without the sidecar
    line = only_error_line(verify(shard))
    assert line == f"cvgen error: {message}"


@pytest.mark.parametrize("array", DATASET_ARRAYS)
def test_damaged_dataset_array_is_refused_naming_dataset_and_array(files, array):
    dataset = files / "dataset.h5"
    flip_byte(dataset, array)
    expected = (
        f"dataset {dataset}: array {array} fails its checksum (its bytes changed after it was "
        f"written); delete it and rerun snakemake to rebuild it from the shards"
    )
    with pytest.raises(CvgenError) as refused:
        read_dataset(dataset)
    assert str(refused.value) == expected
    assert only_error_line(verify(dataset)) == f"cvgen error: {expected}"


def test_damaged_parameters_file_is_refused_naming_the_array(files):
    flip_byte(files / "params.h5", "circuits/parameters")
    line = only_error_line(verify(files / "params.h5"))
    assert f"parameters file {files / 'params.h5'}: array circuits/parameters fails" in line


def test_array_rewritten_behind_the_manifest_is_refused(files):
    """A consistent rewrite (HDF5 recomputes the chunk's checksum) still differs from the
    SHA-256 that aggregate recorded."""
    dataset = files / "dataset.h5"
    with h5py.File(dataset, "r+") as handle:
        handle["outputs/quad_x"][3, 1] += 0.5
    message = f"dataset {dataset}: array outputs/quad_x does not match its SHA-256 in the manifest"
    with pytest.raises(CvgenError, match=message):
        read_dataset(dataset)
    assert message in only_error_line(verify(dataset))


def test_shard_whose_sidecar_disagrees_is_refused_by_aggregate(files):
    shard = files / "shards/0.h5"
    sha256_path(shard).write_text(f"{'0' * 64}  0.h5\n")
    with pytest.raises(CvgenError) as refused:
        aggregate(files / "params.h5", shard_paths(files), files / "fresh.h5")
    message = str(refused.value)
    assert message.startswith(f"shard {shard} no longer matches the SHA-256 in 0.h5.sha256")
    assert "every array still passes its checksum" in message and "\n" not in message
    assert message.endswith("rerun snakemake to regenerate it")
    assert only_error_line(verify(shard)) == f"cvgen error: {message}"


def test_shard_without_its_sidecar_is_refused_by_aggregate(files):
    shard = files / "shards/1.h5"
    sha256_path(shard).unlink()
    with pytest.raises(CvgenError, match=f"shard {shard} has no 1.h5.sha256"):
        aggregate(files / "params.h5", shard_paths(files), files / "fresh.h5")
    result = verify(shard)  # verify checks the arrays alone and says what it could not check
    assert result.returncode == 0 and "SHA-256 was not checked" in result.stdout


def test_verify_reports_every_file_and_fails_if_any_is_damaged(files):
    flip_byte(files / "shards/0.h5", "outputs/quad_x")
    result = verify(files / "shards/0.h5", files / "shards/1.h5")
    assert result.returncode == 1
    assert result.stdout.startswith(f"OK {files / 'shards/1.h5'}:")
    assert len(result.stderr.splitlines()) == 1 and "array outputs/quad_x" in result.stderr


@pytest.mark.slow
def test_workflow_refuses_a_damaged_shard_and_rebuilds_after_the_fix(tmp_path):
    """Issue 13 end to end: a flipped byte in a shard's quad_x stops the real workflow; deleting
    the shard, as the line says, rebuilds it, and with it a shard whose sidecar went missing."""
    config = {
        "dataset": "i",
        "circuit": {"modes": 2, "layers": 1, "cutoff": 5},
        "samples_per_circuit": 40,
        "shard_size": 20,
        "batch_size": 8,
    }
    assert run_workflow(tmp_path, "--cores", "2", config=config).returncode == 0
    results = tmp_path / "results/i"
    flip_byte(results / "shards/1.h5", "outputs/quad_x")
    result = run_workflow(tmp_path, "--cores", "2")
    errors = [line for line in result.stderr.splitlines() if line.startswith("cvgen error:")]
    assert result.returncode != 0 and len(errors) == 1, result.stderr[-3000:]
    assert "results/i/shards/1.h5: array outputs/quad_x fails its checksum" in errors[0]
    assert not (results / "dataset.h5").exists()
    (results / "shards/1.h5").unlink()
    sha256_path(results / "shards/0.h5").unlink()  # an output of its job: regenerated too
    dry = run_workflow(tmp_path, "--cores", "2", "--dry-run")
    assert dry.stdout.count("rule generate_shard") == 2, dry.stdout[-2000:]
    assert run_workflow(tmp_path, "--cores", "2").returncode == 0
    assert verify(results / "dataset.h5", *results.glob("shards/*.h5")).returncode == 0
