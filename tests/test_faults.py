"""Killed runs: no half-written file at a final path, and the rerun gives the same data."""

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import run_workflow, workflow_command
from cvgen import read_dataset

# SF engine, small batches: each job runs for seconds, long enough to be killed mid-run.
CONFIG = {
    "dataset": "k",
    "engine": "sf",
    "circuit": {"modes": 2, "layers": 1, "cutoff": 6},
    "samples_per_circuit": 1200,
    "shard_size": 400,
    "batch_size": 4,
}

pytestmark = pytest.mark.slow


def build(workdir: Path, *args: str) -> None:
    result = run_workflow(workdir, "--cores", "2", *args, config=CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]


def start_and_wait_for_progress(workdir: Path) -> subprocess.Popen:
    """Start the workflow in its own process group; return once a job has done some batches."""
    process = subprocess.Popen(
        workflow_command(workdir, "--cores", "2", config=CONFIG),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        logs = list((workdir / "results/k/logs/generate").glob("*.log"))
        if any("samples/s" in log.read_text() for log in logs):
            return process
        assert process.poll() is None, "the workflow ended before any job made progress"
        time.sleep(0.1)
    raise AssertionError("no job made progress in time")


def generate_jobs(workdir: Path) -> list[psutil.Process]:
    jobs = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "generate_shard" in cmdline and process.info["cwd"] == str(workdir):
            jobs.append(process)
    return jobs


def assert_no_partial_shards(workdir: Path) -> None:
    """Every shard at a final path is complete (the file opens and holds all its rows)."""
    from cvgen.shards import read_shard

    for path in (workdir / "results/k/shards").glob("*.h5"):
        shard = read_shard(path)
        assert len(shard.outputs["norm"]) == shard.stop - shard.start


def assert_same_dataset(a: Path, b: Path) -> None:
    first, second = (
        read_dataset(a / "results/k/dataset.h5"),
        read_dataset(b / "results/k/dataset.h5"),
    )
    for name, values in first.outputs.items():
        assert np.array_equal(values, second.outputs[name]), name
    for name, values in first.sample_parameters.items():
        assert np.array_equal(values, second.sample_parameters[name]), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    build(workdir)
    return workdir


def test_killed_job_leaves_no_shard_and_the_rerun_completes_identically(reference, tmp_path):
    process = start_and_wait_for_progress(tmp_path)
    jobs = generate_jobs(tmp_path)
    assert jobs
    unfinished = [
        int(log.stem)
        for log in (tmp_path / "results/k/logs/generate").glob("*.log")
        if not (tmp_path / f"results/k/shards/{log.stem}.h5").exists()
    ]
    for job in jobs:
        job.send_signal(signal.SIGKILL)
    assert process.wait(timeout=600) != 0  # Snakemake reports the killed job as failed
    assert_no_partial_shards(tmp_path)
    assert unfinished and not all(
        (tmp_path / f"results/k/shards/{i}.h5").exists() for i in unfinished
    )
    build(tmp_path, "--rerun-incomplete")
    assert_same_dataset(reference, tmp_path)


def test_killed_snakemake_resumes_identically_after_unlock(reference, tmp_path):
    process = start_and_wait_for_progress(tmp_path)
    os.killpg(process.pid, signal.SIGKILL)  # Snakemake and every job it started
    process.wait(timeout=60)
    assert_no_partial_shards(tmp_path)
    assert not (tmp_path / "results/k/dataset.h5").exists()
    build(tmp_path, "--unlock")  # a killed Snakemake leaves its lock behind
    build(tmp_path, "--rerun-incomplete")
    assert_same_dataset(reference, tmp_path)


def test_changing_only_cores_invalidates_nothing(reference):
    result = run_workflow(reference, "--cores", "1", "--dry-run", config=CONFIG)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changing_the_seed_reruns_everything(reference, tmp_path):
    result = run_workflow(
        reference, "--cores", "1", "--dry-run", "--config", "seed=5", config=CONFIG
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    assert "prepare_params" in output and output.count("rule generate_shard") == 3


def fast_build(workdir: Path, seed: int = 3) -> subprocess.CompletedProcess:
    config = {**CONFIG, "engine": "compiled", "samples_per_circuit": 40, "shard_size": 20}
    return run_workflow(workdir, "--cores", "2", config={**config, "seed": seed})


@pytest.mark.parametrize("spoil", ["truncate", "garbage", "other config"])
def test_bad_shard_on_disk_is_refused_naming_it(tmp_path, spoil):
    assert fast_build(tmp_path).returncode == 0
    shard = tmp_path / "results/k/shards/1.h5"
    if spoil == "truncate":
        shard.write_bytes(shard.read_bytes()[:1000])
    elif spoil == "garbage":
        shard.write_bytes(os.urandom(shard.stat().st_size))
    else:
        other = tmp_path / "other"
        other.mkdir()
        assert fast_build(other, seed=4).returncode == 0
        shard.write_bytes((other / "results/k/shards/1.h5").read_bytes())
    result = fast_build(tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("cvgen error:")]
    assert len(errors) == 1 and "results/k/shards/1.h5" in errors[0]
    assert "rerun snakemake to regenerate it" in errors[0]
    assert not (tmp_path / "results/k/dataset.h5").exists()  # never a dataset from a bad shard
