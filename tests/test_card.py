"""Self-describing datasets: conventions as attributes, the dataset card (DATASET.md) and its
Croissant metadata (croissant.json), on datasets built by the real workflow."""

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT, run_workflow
from cvgen import read_dataset
from cvgen.dataset import SCHEMA_VERSION
from cvgen.shards import file_sha256

pytestmark = pytest.mark.slow

CONFIG = {
    "dataset": "card",
    "seed": 17,
    "circuit": {"template": "qnn", "modes": 2, "layers": 1, "cutoff": 6},
    "n_circuits": 5,
    "samples_per_circuit": 20,
    "shard_size": 50,
    "batch_size": 16,
    "outputs": ["quad_x", "mean_photon", "fock_probs", "homodyne", "norm"],
    "sampling": {"shots": 2},
    "split": {"train": 0.6, "val": 0.2, "test": 0.2},
}


def build(workdir, config):
    results = f"results/{config['dataset']}"
    targets = [f"{results}/DATASET.md", f"{results}/croissant.json"]
    result = run_workflow(workdir, "--cores", "2", *targets, config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / results


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("card"), CONFIG)


@pytest.fixture(scope="module")
def total(tmp_path_factory):
    config = {**CONFIG, "dataset": "total", "split": None}
    config["circuit"] = {**CONFIG["circuit"], "modes": 3, "truncation": "total"}
    return build(tmp_path_factory.mktemp("total"), config)


def test_dataset_carries_its_conventions_as_attributes(built):
    dataset = read_dataset(built / "dataset.h5")
    attrs = dataset.attrs
    assert attrs["schema_version"] == SCHEMA_VERSION
    assert attrs["hbar"] == 2.0 and "x = a + a^dagger" in attrs["quadrature_order"]
    assert "row-major over modes" in attrs["fock_order"] and "total" in attrs["fock_order"]
    assert "not renormalised" in attrs["expectation_values"]
    assert attrs["cutoff"] == 6 and attrs["truncation"] == "per_mode"
    assert attrs["dtype"] == "complex64" and attrs["real_dtype"] == "float32"
    assert list(json.loads(attrs["detector_model"])) == ["homodyne"]
    split = json.loads(attrs["split"])
    assert split["by"] == "circuit" and split["parts"] == ["test", "train", "val"]
    assert split["circuits"] == {"test": 1, "train": 3, "val": 1}
    assert {k: len(v) for k, v in dataset.splits.items()} == split["samples"]
    with h5py.File(built / "dataset.h5") as handle:
        axes = {n: json.loads(d.attrs["axes"]) for n, d in handle["outputs"].items()}
        assert handle["outputs/homodyne"].attrs["detector"].startswith("ideal homodyne")
    assert axes["fock_probs"] == ["sample", "fock_state"]
    assert axes["homodyne"] == ["sample", "shot", "mode"] and axes["norm"] == ["sample"]


@pytest.mark.parametrize("which", ["built", "total"])
def test_fock_probs_are_row_major_over_modes_as_the_attributes_say(which, request):
    """<n_m> from fock_probs read as an array [D] * M with mode 0 first equals mean_photon."""
    dataset = read_dataset(request.getfixturevalue(which) / "dataset.h5")
    modes, cutoff = int(dataset.attrs["modes"]), int(dataset.attrs["cutoff"])
    probs = dataset.outputs["fock_probs"].reshape(-1, *[cutoff] * modes).astype(np.float64)
    for mode in range(modes):
        others = tuple(axis for axis in range(1, modes + 1) if axis != mode + 1)
        marginal = probs.sum(axis=others)
        mean = marginal @ np.arange(cutoff)
        np.testing.assert_allclose(mean, dataset.outputs["mean_photon"][:, mode], atol=2e-5)
    if dataset.attrs["truncation"] == "total":  # the box, zeros outside n_0 + ... < cutoff
        photons = np.indices([cutoff] * modes).sum(axis=0)
        assert np.all(probs[:, photons >= cutoff] == 0) and np.any(probs[:, photons < cutoff] > 0)


def test_card_states_what_was_built(built):
    card = (built / "DATASET.md").read_text()
    dataset = read_dataset(built / "dataset.h5")
    assert card.startswith("# Dataset card: card\n")
    assert f"`{file_sha256(built / 'dataset.h5')}`" in card
    assert "100 samples of a 2-mode" in card and "`compiled`" in card
    assert f"(schema_version {SCHEMA_VERSION})" in card
    assert "| train | 0.6 | 3 | 60 |" in card and "| test | 0.2 | 1 | 20 |" in card
    assert "| `outputs/homodyne` | 100 x 2 x 2 | f4 | sample, shot, mode |" in card
    worst = dataset.attrs["convergence_max_abs_deviation_quad_x"]
    assert f"`quad_x`: {worst:.3g}" in card
    assert f"lowest {dataset.outputs['norm'].min():.6f}" in card
    assert yaml.safe_load(card.split("```yaml\n")[1].split("```")[0]) == dataset.config
    for digest_of in ("outputs/quad_x", "samples/parameters", "splits/circuit_part"):
        manifest = json.loads(dataset.attrs["manifest"])
        assert f"| `{digest_of}` | `{manifest[digest_of]}` |" in card


def test_the_cards_loading_code_runs_next_to_the_dataset(built):
    card = (built / "DATASET.md").read_text()
    code = card.split("```python\n")[1].split("```")[0]
    code = code.replace("num_workers=4", "num_workers=2")  # 2-core test machine
    code += "\nprint('loaded', ds.outputs['quad_x'].shape, tuple(batch['quad_x'].shape))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=built, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded (100, 2) (20, 2)" in result.stdout  # the tf batches of the test part


def test_croissant_metadata_validates_and_describes_the_file(built):
    import mlcroissant as mlc

    metadata = json.loads((built / "croissant.json").read_text())
    dataset = mlc.Dataset(jsonld=built / "croissant.json")  # raises on an invalid document
    assert not dataset.metadata.issues.errors
    assert {w for w in dataset.metadata.issues.warnings if "license" not in w} == set()
    assert metadata["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    (file,) = metadata["distribution"]
    assert file["contentUrl"] == "dataset.h5" and file["sha256"] == file_sha256(
        built / "dataset.h5"
    )
    samples, splits = metadata["recordSet"]
    fields = {field["name"]: field for field in samples["field"]}
    data = read_dataset(built / "dataset.h5")
    for name, values in data.outputs.items():
        field = fields[name]
        assert field["source"]["extract"]["column"] == f"outputs/{name}"
        shape = ",".join(map(str, [-1, *values.shape[1:]]))
        assert field.get("cr:arrayShape", "-1") == shape
        assert field["dataType"] == ("sc:Integer" if values.dtype.kind in "iu" else "sc:Float")
    assert fields["inputs"]["cr:arrayShape"] == "-1,2"
    assert splits["field"][0]["source"]["extract"]["column"] == "splits/circuit_part"


def test_the_card_is_rebuilt_with_the_dataset(built):
    """The card is an output of the workflow: deleting it reruns only its rule."""
    workdir = built.parents[1]
    (built / "DATASET.md").unlink()
    result = run_workflow(workdir, "--cores", "1", "results/card/DATASET.md")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"dataset_card\s+1", result.stderr) and "generate_shard" not in result.stderr
    assert (built / "DATASET.md").read_text().startswith("# Dataset card: card")


def test_citation_file_has_what_cff_requires():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["message"] and citation["title"].startswith("cvgen")
    assert citation["authors"] and all(
        "name" in a or "family-names" in a for a in citation["authors"]
    )
    for reference in citation["references"]:
        assert {"type", "title", "authors"} <= set(reference) and reference["doi"].startswith("10.")
