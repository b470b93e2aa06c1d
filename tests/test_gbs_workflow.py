"""Gaussian boson sampling datasets through the real workflow (engine auto -> gaussian)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_workflow
from cvgen import read_dataset
from cvgen.errors import CvgenError
from cvgen.plan import build_plan

pytestmark = pytest.mark.slow

GRAPH = np.array(
    [
        [0, 1, 1, 0, 0, 1],
        [1, 0, 1, 1, 0, 0],
        [1, 1, 0, 1, 1, 0],
        [0, 1, 1, 0, 1, 1],
        [0, 0, 1, 1, 0, 1],
        [1, 0, 0, 1, 1, 0],
    ],
    dtype=float,
)


def gbs_config(**overrides) -> dict:
    config = {
        "dataset": "gbs",
        "seed": 5,
        "circuit": {
            "template": "gbs",
            "gbs": {"graph": "graph.csv", "mean_photon": 2.0, "transmissivity": 0.8},
        },
        "outputs": ["fock_samples", "threshold_samples", "homodyne", "heterodyne", "means", "cov"],
        "sampling": {"shots": 25, "max_photons": 30},
        "n_circuits": 1,
        "samples_per_circuit": 96,
        "shard_size": 40,
        "batch_size": 16,
    }
    config.update(overrides)
    return config


def build(workdir, config):
    np.savetxt(workdir / "graph.csv", GRAPH, delimiter=",")
    result = run_workflow(workdir, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    return read_dataset(workdir / "results/gbs/dataset.h5")


@pytest.fixture(scope="module")
def gbs_build(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gbs")
    return workdir, build(workdir, gbs_config())


def test_gbs_dataset_is_exact_and_reported(gbs_build):
    workdir, dataset = gbs_build
    assert dataset.plan.engine == "gaussian"
    outputs = dataset.outputs
    assert outputs["fock_samples"].shape == (96, 25, 6)
    assert outputs["heterodyne"].shape == (96, 25, 6, 2)
    assert outputs["cov"].shape == (96, 12, 12)
    np.testing.assert_array_equal(outputs["norm"], 1.0)
    np.testing.assert_array_equal(outputs["threshold_samples"], outputs["fock_samples"] > 0)
    assert outputs["fock_samples"].sum(axis=-1).max() <= 30
    # the loss is in the state: every sample's mean photon number is 0.8 x 2 in total
    photons = np.trace(outputs["cov"].astype(np.float64), axis1=1, axis2=2) / 4 - 3
    np.testing.assert_allclose(photons, 1.6, rtol=1e-5)
    report = json.loads((workdir / "results/gbs/report.json").read_text())
    assert report["engine"] == "gaussian"
    assert report["convergence"]["verdict"] == "exact"
    fock = report["sampling"]["fock"]
    assert fock["photon_ceiling_mass"] < 1e-4
    # 2400 shots: every mode's sampled click probability within 5 standard errors of exact
    exact = np.array(fock["exact_click_probability"])
    sampled = np.array(fock["sampled_click_probability"])
    assert np.all(np.abs(sampled - exact) < 5 * np.sqrt(exact * (1 - exact) / 2400) + 1e-3)
    text = (workdir / "results/gbs/report.md").read_text()
    assert "**Exact**" in text and "Photon ceiling" in text


def test_gbs_outcomes_do_not_depend_on_sharding_or_batching(gbs_build, tmp_path):
    _, dataset = gbs_build
    other = build(tmp_path, gbs_config(shard_size=96, batch_size=7))
    for name in ("fock_samples", "homodyne", "heterodyne", "cov"):
        np.testing.assert_array_equal(other.outputs[name], dataset.outputs[name])


def test_gbs_template_refuses_fock_engines_and_bad_graphs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savetxt("graph.csv", GRAPH, delimiter=",")
    with pytest.raises(CvgenError, match="needs engine gaussian"):
        build_plan(gbs_config(engine="compiled"))
    np.savetxt("graph.csv", GRAPH + np.triu(GRAPH), delimiter=",")
    with pytest.raises(CvgenError, match="symmetric"):
        build_plan(gbs_config())
    with pytest.raises(CvgenError, match="not found"):
        build_plan(gbs_config(circuit={"template": "gbs", "gbs": {"graph": "missing.npy"}}))
    with pytest.raises(CvgenError, match="needs engine gaussian"):
        build_plan({"outputs": ["means"], "engine": "compiled"})
