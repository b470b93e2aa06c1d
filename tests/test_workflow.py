"""End to end: the real Snakemake workflow on tiny configs in a temporary folder."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import run_workflow, tiny_config
from cvgen import read_dataset
from cvgen.config import config_hash
from cvgen.plan import validate_config
from cvgen.report import PLOTS, figures_for

CVGEN = Path(sys.executable).with_name("cvgen")

pytestmark = pytest.mark.slow


def build(workdir: Path, config: dict) -> subprocess.CompletedProcess:
    result = run_workflow(workdir, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


TEMPLATE_CONFIG = {
    "dataset": "tiny",
    "seed": 11,
    "circuit": {"template": "qnn", "modes": 2, "layers": 1, "cutoff": 6},
    "parameters": [
        {"match": "input_*", "distribution": "normal", "std": 0.4, "vary": "per_sample"},
        {"match": "*", "distribution": "uniform", "low": -0.2, "high": 0.2},
    ],
    "n_circuits": 2,
    "samples_per_circuit": 30,
    "shard_size": 25,
    "batch_size": 8,
    "engine": "sf",
}


@pytest.fixture(scope="module")
def template_build(tmp_path_factory):
    """3 shards (the last one short), batches of 8 (the last one short), 2 circuits."""
    workdir = tmp_path_factory.mktemp("template")
    build(workdir, TEMPLATE_CONFIG)
    return workdir, validate_config(TEMPLATE_CONFIG)


def test_workflow_builds_a_verified_dataset(template_build):
    workdir, config = template_build
    dataset = read_dataset(workdir / "results/tiny/dataset.h5")
    assert dataset.config == config
    assert dataset.attrs["config_hash"] == config_hash(config)
    n = 60
    assert {k: v.shape for k, v in dataset.outputs.items()} == {
        "quad_x": (n, 2),
        "quad_p": (n, 2),
        "mean_photon": (n, 2),
        "fock_probs": (n, 36),
        "norm": (n,),
    }
    assert dataset.outputs["norm"].dtype == np.float32
    assert np.all(dataset.outputs["norm"] > 0.9) and np.all(dataset.outputs["norm"] < 1 + 1e-5)
    assert np.allclose(dataset.outputs["fock_probs"].sum(axis=1), dataset.outputs["norm"])
    assert set(dataset.sample_parameters) == {"input_0", "input_1"}
    assert dataset.circuit_index.tolist() == [0] * 30 + [1] * 30
    assert dataset.shards["stop"].tolist() == [25, 50, 60]
    assert np.all(dataset.shards["steady_s"] >= 0) and np.all(dataset.shards["startup_s"] > 0)
    versions = json.loads(dataset.attrs["versions"])
    assert versions["strawberryfields"] == "0.23.0"
    assert dataset.attrs["seed"] == 11 and len(dataset.attrs["git_commit"]) >= 40
    assert yaml.safe_load(dataset.attrs["config_yaml"]) == config


def test_dataset_outputs_equal_a_direct_simulation(template_build):
    from cvgen.circuits import circuit_from_config
    from cvgen.engines.backend import namespace
    from cvgen.engines.observables import ket_observables
    from cvgen.engines.sf import SFEngine
    from cvgen.shards import read_params_file

    xp = namespace("tensorflow")
    workdir, config = template_build
    dataset = read_dataset(workdir / "results/tiny/dataset.h5")
    params = read_params_file(workdir / "results/tiny/params.h5")
    engine = SFEngine(circuit_from_config(config), 8)
    for start in (20, 52):  # across shard and circuit boundaries, and the short last shard
        kets = engine.kets(params.drawn.batch_args(start, start + 8), 8)
        expected = ket_observables(xp, kets, config["outputs"])
        for name, values in expected.items():
            values = xp.numpy(values)
            np.testing.assert_allclose(dataset.outputs[name][start : start + 8], values, atol=1e-6)


def test_report_explains_the_run(template_build):
    workdir, _ = template_build
    results = workdir / "results/tiny"
    report = json.loads((results / "report.json").read_text())
    assert report["n_samples"] == 60 and report["n_shards"] == 3
    perf = report["performance"]
    assert perf["samples_per_s"] > 0 and perf["makespan_s"] > 0
    assert 0 < perf["effective_parallel_speedup"] <= 2.2  # two cores
    assert [row["samples"] for row in perf["shards"]] == [25, 25, 10]
    assert all("max_rss_mb" in row for row in perf["shards"])  # Snakemake's files were read
    assert all(row["peak_rss_mb"] > 20 for row in perf["shards"])  # numpy jobs: ~60 MB
    assert 0.9 < report["truncation"]["norm_min"] <= report["truncation"]["norm_mean"]
    markdown = (results / "report.md").read_text()
    assert "effective parallel speed-up" in markdown and "| 2 | 10 |" in markdown
    drawn = figures_for(read_dataset(results / "dataset.h5").plan)
    assert report["figures"] == list(drawn) and "sampling" not in drawn  # nothing sampled
    for name in PLOTS:
        png = results / "report" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" if name in drawn else not png.exists()


def test_convergence_check_reaches_the_dataset_and_the_report(template_build):
    workdir, config = template_build
    results = workdir / "results/tiny"
    dataset = read_dataset(results / "dataset.h5")
    check = dataset.convergence
    assert check["reference_cutoff"] == 10 and len(check["rows"]) == 3 * 8  # min_samples a shard
    assert np.all(np.diff(check["rows"]) > 0) and check["rows"][-1] < 60
    for name in ("quad_x", "quad_p", "mean_photon", "fock_probs"):
        worst = dataset.attrs[f"convergence_max_abs_deviation_{name}"]
        assert worst == check[f"max_{name}"].max() > 0
    report = json.loads((results / "report.json").read_text())["convergence"]
    assert report["samples"] == 24 and set(report["outputs"]) == {
        "quad_x",
        "quad_p",
        "mean_photon",
        "fock_probs",
    }
    assert "### Convergence check" in (results / "report.md").read_text()


def test_compiled_engine_builds_the_same_dataset(template_build, tmp_path):
    workdir, _ = template_build
    build(tmp_path, {**TEMPLATE_CONFIG, "engine": "compiled"})
    compiled = read_dataset(tmp_path / "results/tiny/dataset.h5")
    reference = read_dataset(workdir / "results/tiny/dataset.h5")
    assert compiled.attrs["engine"] == "compiled"
    for name, values in reference.outputs.items():
        assert compiled.outputs[name].dtype == values.dtype
        np.testing.assert_allclose(compiled.outputs[name], values, atol=1e-5, err_msg=name)
    for name, values in reference.sample_parameters.items():
        assert np.array_equal(compiled.sample_parameters[name], values)


def test_second_run_has_nothing_to_do(template_build):
    workdir, _ = template_build
    result = run_workflow(workdir, "--cores", "2", "--dry-run")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_snakemake_html_report(template_build):
    workdir, _ = template_build
    result = run_workflow(workdir, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    html = (workdir / "report.html").read_text()
    assert "throughput.png" in html and "timeline.png" in html


def test_config_extracted_from_a_dataset_rebuilds_it(template_build):
    workdir, config = template_build
    result = subprocess.run(
        [CVGEN, "config", workdir / "results/tiny/dataset.h5"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert config_hash(validate_config(yaml.safe_load(result.stdout))) == config_hash(config)


def test_blackbird_workflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Blackbird paths are relative to the working directory
    (tmp_path / "circuit.xbb").write_text(
        "name two_mode\nversion 1.0\n\n"
        "Sgate({r}, 0.0) | 0\nDgate({alpha}, 0.0) | 1\nBSgate(0.7, 0.1) | [0, 1]\n"
    )
    config = tiny_config(
        dataset="bb",
        circuit={"blackbird": "circuit.xbb", "cutoff": 8},
        parameters=[
            {"match": "alpha", "distribution": "normal", "std": 0.5, "vary": "per_sample"},
            {"match": "r", "distribution": "constant", "value": 0.2},
        ],
        n_circuits=1,
        samples_per_circuit=12,
        shard_size=6,
        batch_size=4,
        outputs=["quad_x", "mean_photon"],
    )
    build(tmp_path, config)
    dataset = read_dataset(tmp_path / "results/bb/dataset.h5")
    assert set(dataset.outputs) == {"quad_x", "mean_photon", "norm"}
    assert "Sgate({r}" in dataset.attrs["blackbird"]
    # A 50:50-ish beamsplitter mixes the displaced mode into both outputs: <x> is linear in alpha.
    alpha = dataset.sample_parameters["alpha"]
    slope = np.polyfit(alpha, dataset.outputs["quad_x"][:, 1], 1)[0]
    assert abs(slope - 2 * np.cos(0.7)) < 1e-3


def test_bad_config_fails_before_any_work(tmp_path):
    result = run_workflow(tmp_path, "--cores", "1", config={"circuit": {"cutoff": 1}})
    assert result.returncode != 0
    assert "config key circuit.cutoff" in result.stderr
    assert not (tmp_path / "results").exists()


SAMPLING_CONFIG = {
    **TEMPLATE_CONFIG,
    "dataset": "sampled",
    "engine": "compiled",
    "circuit": {**TEMPLATE_CONFIG["circuit"], "dtype": "complex128"},
    "outputs": ["quad_x", "homodyne", "fock_samples", "threshold_samples"],
    "sampling": {"shots": 5, "homodyne": {"quadratures": ["x", "p"]}},
}


def test_sampled_outputs_through_the_workflow(tmp_path):
    """Compiled engine, 3 shards; then the same dataset as one shard on the SF engine."""
    from cvgen import stages
    from cvgen.engines import configure_tensorflow

    build(tmp_path, SAMPLING_CONFIG)
    results = tmp_path / "results/sampled"
    dataset = read_dataset(results / "dataset.h5")
    n = 60
    assert {k: (v.shape, v.dtype) for k, v in dataset.outputs.items()} == {
        "quad_x": ((n, 2), np.float64),
        "norm": ((n,), np.float64),
        "homodyne": ((n, 5, 2), np.float64),
        "fock_samples": ((n, 5, 2), np.uint8),
        "threshold_samples": ((n, 5, 2), np.uint8),
    }
    assert np.array_equal(dataset.outputs["threshold_samples"], dataset.outputs["fock_samples"] > 0)
    assert dataset.sampling["angles"] == pytest.approx([0, np.pi / 2])
    density = dataset.summaries["homodyne_density"]
    assert density.shape == (2, 1025)
    assert density.sum(axis=1) * dataset.sampling["grid_step"] == pytest.approx([1, 1], abs=1e-6)
    report = json.loads((results / "report.json").read_text())
    homodyne = report["sampling"]["homodyne"]
    assert np.all(np.abs(homodyne["mean_z"]) < 5)
    assert homodyne["grid_mass_error"] < 1e-6
    # x on mode 0: the exact mean of the mixture equals the mean of the quad_x output
    norm_weighted = np.mean(dataset.outputs["quad_x"][:, 0] / dataset.outputs["norm"])
    assert homodyne["exact_mean"][0] == pytest.approx(norm_weighted, abs=1e-9)
    assert "## Sampled outcomes" in (results / "report.md").read_text()

    configure_tensorflow(1)
    config = validate_config({**SAMPLING_CONFIG, "engine": "sf", "shard_size": 60})
    stages.prepare_params(config, tmp_path / "params.h5")
    shard = stages.generate_shard(tmp_path / "params.h5", 0, tmp_path / "0.h5")
    assert np.array_equal(shard.outputs["fock_samples"], dataset.outputs["fock_samples"])
    np.testing.assert_allclose(shard.outputs["homodyne"], dataset.outputs["homodyne"], atol=1e-6)
