"""A lossy QNN dataset with homodyne and photon-counting samples through the real workflow, on
both paths and both truncations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_workflow
from cvgen import read_dataset
from cvgen.circuits import compile_circuit
from cvgen.engines.noisy import DensityEngine
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


def test_total_truncation_lossy_dataset_takes_the_density_path(tmp_path):
    """The plan picks density matrices for total truncation; the dataset's outputs are those of
    the total-truncation density engine on its drawn parameters, and the truncation check ran
    on the same path at a higher cutoff."""
    config = lossy_config(
        circuit={"modes": 2, "layers": 1, "cutoff": 6, "truncation": "total",
                 "loss": {"per_layer": 0.8}},
        outputs=["quad_x", "mean_photon", "fock_probs", "norm", "fock_samples"],
        samples_per_circuit=32,
        shard_size=32,
    )  # fmt: skip
    dataset = build(tmp_path, config)
    plan = dataset.plan
    assert plan.noise.method == "density_matrix" and plan.circuit.truncation == "total"
    assert "quad_x_stderr" not in dataset.outputs
    assert dataset.outputs["fock_samples"].shape == (32, 8, 2)
    args = {**dataset.sample_parameters}
    args.update({n: v[dataset.circuit_index] for n, v in dataset.circuit_parameters.items()})
    names = ("quad_x", "mean_photon", "fock_probs", "norm")
    circuit = compile_circuit(plan.circuit)
    exact = DensityEngine(circuit, 32, tuple(dataset.circuit_parameters), names).observables(
        args, 32
    )
    for name in names:
        np.testing.assert_allclose(dataset.outputs[name], exact[name], atol=2e-5, err_msg=name)
    assert len(dataset.convergence["rows"]) > 0
