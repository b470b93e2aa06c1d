"""A lossy QNN dataset with homodyne and photon-counting samples through the real workflow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_workflow
from cvgen import read_dataset
from cvgen.noise import noise_report_lines

pytestmark = pytest.mark.slow


def lossy_config(**overrides) -> dict:
    config = {
        "dataset": "lossy",
        "seed": 7,
        "circuit": {"modes": 2, "layers": 1, "cutoff": 6, "loss": {"per_layer": 0.8}},
        "outputs": ["quad_x", "mean_photon", "norm", "homodyne", "fock_samples"],
        "sampling": {"shots": 8, "detector": {"efficiency": 0.9, "dark_counts": 0.01}},
        "n_circuits": 1,
        "samples_per_circuit": 96,
        "shard_size": 48,
        "batch_size": 16,
    }
    config.update(overrides)
    return config


def build(workdir, config):
    result = run_workflow(workdir, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    return read_dataset(workdir / "results/lossy/dataset.h5")


def test_lossy_qnn_dataset_builds_and_reports_its_noise_path(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dataset = build(tmp_path / "a", lossy_config())
    plan = dataset.plan
    assert plan.engine == "compiled" and plan.noise.method == "density_matrix"
    outputs = dataset.outputs
    assert outputs["homodyne"].shape == (96, 8, 2)
    assert outputs["fock_samples"].shape == (96, 8, 2)
    assert "quad_x_stderr" not in outputs  # exact: density matrices
    report = json.loads((tmp_path / "a/results/lossy/report.json").read_text())
    assert report["sampling"] is not None
    lines = "\n".join(noise_report_lines(json.loads(plan.to_json())))
    assert "density matrix" in lines and "efficiency 0.9" in lines
    markdown = (tmp_path / "a/results/lossy/report.md").read_text()
    assert "## Loss and noise" in markdown and lines in markdown
    # the trajectory path: expectation outputs with standard errors, the same sampled outcomes
    other = build(tmp_path / "b", lossy_config(noise={"method": "trajectories"}, batch_size=7))
    assert other.plan.noise.method == "trajectories"
    np.testing.assert_array_equal(other.outputs["fock_samples"], outputs["fock_samples"])
    error = other.outputs["quad_x_stderr"].astype(np.float64)
    assert np.all(error >= 0)
    # Pooled over the samples (a sample whose 64 trajectories all missed a rare jump reports a
    # standard error of 0): the mean difference from the exact values within 5 pooled errors.
    difference = (other.outputs["quad_x"] - outputs["quad_x"]).astype(np.float64).mean(axis=0)
    pooled = np.sqrt(np.sum(error**2, axis=0)) / len(error)
    assert np.all(np.abs(difference) < 5 * pooled + 1e-5)
