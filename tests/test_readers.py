"""The torch and tf.data readers on datasets built by the real workflow: every sample exactly
once, equal to read_dataset, splits honoured, files opened per worker."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_workflow
from cvgen import read_dataset
from cvgen.dataset import CHUNK_BYTES
from cvgen.errors import CvgenError
from cvgen.readers import SampleReader

pytestmark = pytest.mark.slow

SPLIT = {"train": 0.8, "val": 0.1, "test": 0.1}
CONFIG = {
    "dataset": "readers",
    "seed": 13,
    "circuit": {"template": "qnn", "modes": 2, "layers": 1, "cutoff": 5},
    "n_circuits": 10,
    "samples_per_circuit": 24,
    "shard_size": 100,
    "batch_size": 16,
    "outputs": ["quad_x", "mean_photon", "fock_probs", "homodyne", "fock_samples", "norm"],
    "sampling": {"shots": 3},
    "split": SPLIT,
}
# Every kind of output the Gaussian engine gives, on a small Blackbird circuit.
GAUSSIAN_CIRCUIT = """name g
version 1.0

Sgate({r}, 0.0) | 0
Dgate({alpha}, 0.0) | 1
BSgate(0.7, 0.1) | [0, 1]
LossChannel(0.9) | 0
"""
GAUSSIAN = {
    "dataset": "gaussian",
    "seed": 2,
    "circuit": {"blackbird": "g.xbb", "cutoff": 3},
    "parameters": [
        {"match": "r", "distribution": "uniform", "low": 0.1, "high": 0.4, "vary": "per_sample"},
        {"match": "alpha", "distribution": "normal", "std": 0.5, "vary": "per_circuit"},
    ],
    "n_circuits": 4,
    "samples_per_circuit": 10,
    "shard_size": 20,
    "batch_size": 8,
    "outputs": ["quad_x", "means", "cov", "heterodyne", "homodyne", "threshold_samples"],
    "sampling": {"shots": 2},
    "split": {"train": 0.5, "test": 0.5},
}


def build(workdir, config) -> str:
    target = f"results/{config['dataset']}/dataset.h5"
    result = run_workflow(workdir, "--cores", "2", target, config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(workdir / target)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = build(tmp_path_factory.mktemp("readers"), CONFIG)
    return path, read_dataset(path)


def check_batches(batches, dataset, expected_rows):
    """Every expected sample exactly once, each key equal to read_dataset's values."""
    seen = []
    for batch in batches:
        rows = np.asarray(batch["index"])
        seen += rows.tolist()
        assert np.array_equal(np.asarray(batch["circuit"]), dataset.circuit_index[rows])
        inputs = np.stack([dataset.sample_parameters[n][rows] for n in dataset.sample_parameters])
        assert np.array_equal(np.asarray(batch["inputs"]), inputs.T)
        for name, values in dataset.outputs.items():
            assert np.array_equal(np.asarray(batch[name]), values[rows]), name
    assert sorted(seen) == sorted(expected_rows)
    assert len(seen) == len(set(seen))
    return seen


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_with_four_workers_gives_every_sample_once_as_read_dataset(built, context):
    from torch.utils.data import DataLoader

    from cvgen.torch import CvgenDataset

    path, dataset = built
    data = CvgenDataset(path)
    assert len(data) == 240
    data[0]  # the parent's own handle, open before the workers start, must not reach them
    loader = DataLoader(
        data, batch_size=32, shuffle=True, num_workers=4, multiprocessing_context=context
    )
    seen = check_batches(loader, dataset, range(240))
    assert seen != sorted(seen)  # shuffled


def test_each_split_part_is_whole_circuits_and_parts_share_none(built):
    from torch.utils.data import DataLoader

    from cvgen.torch import CvgenDataset

    path, dataset = built
    circuits = {}
    for part in SPLIT:
        rows = dataset.splits[part]
        loader = DataLoader(CvgenDataset(path, split=part), batch_size=7, num_workers=2)
        check_batches(loader, dataset, rows)
        circuits[part] = set(dataset.circuit_index[rows].tolist())
        counted = np.bincount(dataset.circuit_index[rows])
        assert set(counted[counted > 0].tolist()) == {24}  # whole circuits only
    assert len(circuits["train"]) == 8 and len(circuits["val"]) == len(circuits["test"]) == 1
    assert not (circuits["train"] & circuits["val"] or circuits["train"] & circuits["test"])
    assert sum(len(c) for c in circuits.values()) == 10


def test_tf_dataset_streams_every_sample_once_as_read_dataset(built):
    from cvgen.tf import dataset as tf_dataset

    path, dataset = built
    data = tf_dataset(path, batch_size=32, shuffle=True, seed=3)
    batches = list(data)
    assert max(len(b["index"]) for b in batches) == 32 and len(batches) == 8
    first = check_batches(batches, dataset, range(240))
    second = [i for b in data for i in b["index"].numpy().tolist()]
    assert second != first and sorted(second) == sorted(first)  # a new order every pass
    again = [i for b in tf_dataset(path, batch_size=32, shuffle=True, seed=3) for i in b["index"]]
    assert [int(i) for i in again] == first  # the same seed repeats the same passes


def test_tf_dataset_honours_the_split(built):
    from cvgen.tf import dataset as tf_dataset

    path, dataset = built
    for part in SPLIT:
        batches = tf_dataset(path, split=part, batch_size=5)
        check_batches(batches, dataset, dataset.splits[part])


def test_selected_inputs_outputs_and_transform(built):
    from cvgen.torch import CvgenDataset

    path, dataset = built
    weight = "l0_kerr_1"
    data = CvgenDataset(
        path,
        outputs=["quad_x"],
        inputs=[weight, "input_1"],
        transform=lambda item: (item["inputs"], item["quad_x"].sum()),
    )
    inputs, target = data[100]
    circuit = dataset.circuit_index[100]
    expected = [
        dataset.circuit_parameters[weight][circuit],
        dataset.sample_parameters["input_1"][100],
    ]
    assert inputs.tolist() == expected
    assert float(target) == pytest.approx(float(dataset.outputs["quad_x"][100].sum()))
    batch = data.reader.read([5, 3, 5])  # any order, repeats allowed
    assert batch["index"].tolist() == [5, 3, 5] and set(batch) == {
        "index",
        "circuit",
        "inputs",
        "quad_x",
    }


def test_unknown_names_are_one_clear_error(built, tmp_path):
    path, _ = built
    with pytest.raises(CvgenError, match="has no output 'quad_y'; its outputs are"):
        SampleReader(path, outputs=["quad_y"])
    with pytest.raises(CvgenError, match="has no input 'weights'"):
        SampleReader(path, inputs=["weights"])
    with pytest.raises(CvgenError, match="has no split part 'training'; its parts are test"):
        SampleReader(path, split="training")
    with pytest.raises(CvgenError, match="not found"):
        SampleReader(tmp_path / "missing.h5")


def test_outputs_are_sample_axis_first_in_chunks_of_whole_samples(built):
    import h5py

    path, dataset = built
    with h5py.File(path) as handle:
        for name, values in dataset.outputs.items():
            data = handle[f"outputs/{name}"]
            assert data.shape[0] == 240 and data.chunks[1:] == data.shape[1:], name
            assert data.chunks[0] * values[0].nbytes <= max(CHUNK_BYTES, values[0].nbytes)


def test_readers_give_every_output_kind_of_a_gaussian_dataset(tmp_path):
    from torch.utils.data import DataLoader

    from cvgen.tf import dataset as tf_dataset
    from cvgen.torch import CvgenDataset

    (tmp_path / "g.xbb").write_text(GAUSSIAN_CIRCUIT)
    path = build(tmp_path, GAUSSIAN)
    dataset = read_dataset(path)
    assert dataset.plan.engine == "gaussian"
    assert dataset.outputs["heterodyne"].shape == (40, 2, 2, 2)
    for part, rows in dataset.splits.items():
        check_batches(DataLoader(CvgenDataset(path, split=part), batch_size=4), dataset, rows)
        check_batches(tf_dataset(path, split=part, batch_size=4), dataset, rows)


def test_without_torch_importing_cvgen_torch_is_one_line_naming_the_install():
    code = "import sys; sys.modules['torch'] = None; import cvgen.torch"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: cvgen.torch needs PyTorch: pip install -e .[torch]")
    assert "During handling" not in result.stderr  # torch's own error is not chained in


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_reading_benchmark_measures_the_file_as_written_and_rechunked(built, tmp_path):
    from cvgen.bench.reading import rechunk, render_markdown, run_all

    path, dataset = built
    copy = tmp_path / "copy.h5"
    rechunk(path, copy, 1024)
    assert (
        read_dataset(copy).outputs["fock_probs"].tolist() == dataset.outputs["fock_probs"].tolist()
    )
    summary = run_all(path, [CHUNK_BYTES // 1024, 4], 0.05, tmp_path)
    written, small = summary["rows"]
    assert written["chunk"].endswith("(as written)") and written["samples"] == 240
    for key in ("single_reads_per_s", "uncached_single_reads_per_s", "batch_samples_per_s"):
        assert written[key] > 0 and small[key] > 0
    assert small["chunk_rows"]["fock_probs"] == 4096 // (25 * 4)
    assert render_markdown(summary) == (tmp_path / "reading.md").read_text()
