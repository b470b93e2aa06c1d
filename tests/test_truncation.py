"""Truncation: samples below norm_threshold are counted and reported, or fail the job."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import run_workflow, tiny_plan
from cvgen.errors import CvgenError
from cvgen.stages import check_truncation


def test_truncated_samples_are_counted_and_warned(caplog):
    norm = np.array([1.0, 0.95, 0.999, 0.5])
    with caplog.at_level("WARNING"):
        assert check_truncation(norm, 100, tiny_plan(norm_threshold=0.99)) == 2
    assert "2 samples" in caplog.text and "sample 103" in caplog.text


def test_on_truncation_fail_names_count_lowest_norm_and_remedy():
    plan = tiny_plan(norm_threshold=0.99, on_truncation="fail")
    with pytest.raises(CvgenError, match=r"1 samples .* \(lowest 0\.900000, sample 7\).*cutoff"):
        check_truncation(np.array([1.0, 0.9]), 6, plan)
    assert check_truncation(np.array([1.0, 0.995]), 6, plan) == 0


def run(workdir: Path, **overrides) -> subprocess.CompletedProcess:
    config = {
        "dataset": "t",
        "circuit": {"modes": 1, "layers": 1, "cutoff": 3},
        "parameters": [
            {"match": "input_*", "distribution": "normal", "std": 1.0, "vary": "per_sample"},
            {"match": "*", "distribution": "normal", "std": 0.05},
        ],
        "samples_per_circuit": 16,
        "shard_size": 8,
        "batch_size": 8,
        **overrides,
    }
    return run_workflow(workdir, "--cores", "2", config=config, timeout=600)


@pytest.mark.slow
def test_truncation_is_reported_and_can_fail_the_build(tmp_path):
    warned, failed = tmp_path / "warn", tmp_path / "fail"
    warned.mkdir(), failed.mkdir()
    result = run(warned)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((warned / "results/t/report.json").read_text())
    below = report["truncation"]["samples_below_threshold"]
    assert 0 < below == sum(r["norm_below_threshold"] for r in report["performance"]["shards"])
    markdown = (warned / "results/t/report.md").read_text()
    assert "samples below norm_threshold 0.99" in markdown
    assert not report["convergence"]["within_tolerance"]
    assert "### Convergence check" in markdown and "**over** the tolerance" in markdown

    result = run(failed, on_truncation="fail")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("cvgen error:")]
    assert errors and all("norm_threshold 0.99" in line for line in errors)
    assert not list((failed / "results/t").glob("shards/*.h5"))
    assert not (failed / "results/t/dataset.h5").exists()


@pytest.mark.slow
def test_convergence_over_tolerance_fails_the_build_with_on_truncation_fail(tmp_path):
    """Norms pass a lax threshold, yet the outputs move at a higher cutoff: the job fails."""
    result = run(tmp_path, on_truncation="fail", norm_threshold=0.01)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("cvgen error:")]
    assert errors and all(
        "from cutoff 3 to 7, over convergence.tolerance 0.01" in e for e in errors
    )
    assert all("moves by up to" in line and "raise circuit.cutoff" in line for line in errors)
    assert not list((tmp_path / "results/t").glob("shards/*.h5"))


def test_nan_output_fails_naming_the_samples_and_the_likely_cause():
    from cvgen.stages import check_finite

    values = {"norm": np.array([1.0, np.nan]), "quad_x": np.zeros((2, 1))}
    with pytest.raises(CvgenError, match=r"'norm' is NaN or Inf for samples in \[40, 42\).*cutoff"):
        check_finite(values, 40, 42)
