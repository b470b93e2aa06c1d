"""Reading benchmark: how fast ML code gets samples out of a dataset.h5.

On a built dataset (`--dataset`, or the config's dataset built by the real workflow in a
temporary folder), for the chunking cvgen writes (cvgen.dataset.CHUNK_BYTES) and for other
chunk sizes (`--chunk-kib`, a copy of the file rechunked), it measures:

- random access: single samples at random positions through `SampleReader.read` (reads/s),
  with HDF5's chunk cache (a file that fits it: after the first touch, no decompression) and
  without (each read decompresses its chunk: a file far larger than the cache), and random
  batches of 256 (samples/s), every output and the inputs each time;
- a shuffled `torch.utils.data.DataLoader` over `cvgen.torch.CvgenDataset` (samples/s, with 0
  and 2 workers; skipped without torch);
- sequential: every output read in order in blocks of whole chunks (MB/s of uncompressed
  values), and one pass of `cvgen.tf.dataset` with batches of 4096 (MB/s).

The file is read from the page cache after the first pass (a freshly built dataset is there
anyway): the numbers are decompression, checksums and HDF5's own cost, not the disk's.

    python benchmarks/reading.py [--dataset results/demo/dataset.h5 | --config config.yaml]
        [--chunk-kib 64,1024] [--seconds 2] [--output results/benchmarks]

Writes reading.json and reading.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from cvgen.bench.measure import machine
from cvgen.dataset import CHUNK_BYTES
from cvgen.readers import SampleReader

__all__ = ["main", "measure", "render_markdown", "rechunk"]

BATCH = 256


def timed(step, seconds: float) -> tuple[int, float]:
    """Run `step()` (returning a count) until `seconds` have passed: (total count, elapsed)."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        count += step()
    return count, elapsed


def measure(path: Path, seconds: float) -> dict:
    """Every reading rate on one file."""
    reader = SampleReader(path)
    n = len(reader)
    rng = np.random.default_rng(0)
    row_bytes = sum(
        int(np.prod(shape, dtype=np.int64)) * reader.dtypes[name].itemsize
        for name, shape in reader.shapes.items()
    )
    reader.read(np.arange(n))  # open the file, warm the page cache and the chunk cache
    singles, elapsed = timed(lambda: len(reader.read([rng.integers(n)])["index"]), seconds)
    result = {"samples": n, "bytes_per_sample": row_bytes, "single_reads_per_s": singles / elapsed}
    batches, elapsed = timed(
        lambda: len(reader.read(rng.choice(n, min(BATCH, n), replace=False))["index"]), seconds
    )
    result["batch_samples_per_s"] = batches / elapsed
    reader.close()  # HDF5 shares one open file's cache settings with every later opening
    cold = SampleReader(path, chunk_cache_bytes=0)
    singles, elapsed = timed(lambda: len(cold.read([rng.integers(n)])["index"]), seconds)
    result["uncached_single_reads_per_s"] = singles / elapsed
    batches, elapsed = timed(
        lambda: len(cold.read(rng.choice(n, min(BATCH, n), replace=False))["index"]), seconds
    )
    result["uncached_batch_samples_per_s"] = batches / elapsed
    cold.close()
    result["sequential_mb_per_s"] = _sequential(path, reader.outputs)
    result["tf_pass_mb_per_s"] = _tf_pass(path, row_bytes)
    for workers in (0, 2):
        result[f"dataloader_{workers}_samples_per_s"] = _dataloader(path, workers, seconds)
    return result


def _sequential(path: Path, outputs: list[str]) -> float:
    """MB/s of reading every output in order, in blocks of whole chunks (about 16 MB)."""
    total, start = 0, time.perf_counter()
    with h5py.File(path, "r") as handle:
        for name in outputs:
            data = handle[f"outputs/{name}"]
            row = max(1, data.dtype.itemsize * int(np.prod(data.shape[1:], dtype=np.int64)))
            rows = max(data.chunks[0], (16 << 20) // row // data.chunks[0] * data.chunks[0])
            for first in range(0, data.shape[0], rows):
                total += data[first : first + rows].nbytes
    return total / 2**20 / (time.perf_counter() - start)


def _tf_pass(path: Path, row_bytes: int) -> float | None:
    """MB/s of one pass of cvgen.tf.dataset in batches of 4096 (outputs only counted)."""
    try:
        from cvgen.tf import dataset
    except ImportError:
        return None
    data = dataset(path, batch_size=4096)
    next(iter(data))  # tf.data's own start-up
    start, samples = time.perf_counter(), 0
    for batch in data:
        samples += int(batch["index"].shape[0])
    return samples * row_bytes / 2**20 / (time.perf_counter() - start)


def _dataloader(path: Path, workers: int, seconds: float) -> float | None:
    """Samples/s of a shuffled DataLoader (batches of 256) over CvgenDataset, in whole passes
    until `seconds` have passed; None without torch."""
    try:
        from torch.utils.data import DataLoader

        from cvgen.torch import CvgenDataset
    except ImportError:
        return None
    loader = DataLoader(
        CvgenDataset(path),
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    iter(loader)  # workers start outside the timing when persistent
    samples, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch in loader:
            samples += len(batch["index"])
    return samples / (time.perf_counter() - start)


def rechunk(source: Path, target: Path, chunk_bytes: int) -> None:
    """A copy of a dataset whose outputs are chunked in about `chunk_bytes` of whole samples
    (same compression and checksums as cvgen writes)."""
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as handle:
        for name in list(handle["outputs"]):
            old = handle[f"outputs/{name}"]
            values, attrs = old[()], dict(old.attrs)
            rows = max(1, min(len(values), chunk_bytes // max(1, values[0].nbytes)))
            del handle[f"outputs/{name}"]
            new = handle["outputs"].create_dataset(
                name,
                data=values,
                chunks=(rows, *values.shape[1:]),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
                fletcher32=True,
            )
            new.attrs.update(attrs)
    # rewriting leaves the old chunks' space unused inside the file: repack into a compact copy
    packed = target.with_suffix(".packed.h5")
    with h5py.File(target, "r") as old, h5py.File(packed, "w") as new:
        for key in old:
            old.copy(old[key], new, name=key)
        new.attrs.update(old.attrs)
    packed.replace(target)


def build_dataset(config: Path, folder: Path) -> Path:
    """The config's dataset.h5, built by the real workflow in `folder`."""
    import yaml

    root = Path(__file__).resolve().parents[3]
    name = yaml.safe_load(config.read_text()).get("dataset", "demo")
    target = f"results/{name}/dataset.h5"
    command = [
        str(Path(sys.executable).with_name("snakemake")),
        *("-s", str(root / "Snakefile"), "--directory", str(folder)),
        *("--configfile", str(config.resolve()), "--cores", "2", target),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"building the dataset failed:\n{done.stderr[-3000:]}")
    return folder / target


def run_all(dataset: Path, chunk_kib: list[int], seconds: float, output: Path) -> dict:
    """Measure the file as written and each rechunked copy; write reading.{json,md}."""
    dataset, rows = Path(dataset), []
    with tempfile.TemporaryDirectory() as folder:
        for kib in chunk_kib:
            if kib * 1024 == CHUNK_BYTES:
                path, label = dataset, f"{kib} KiB (as written)"
            else:
                path, label = Path(folder) / f"rechunked_{kib}.h5", f"{kib} KiB"
                rechunk(dataset, path, kib * 1024)
            with h5py.File(path, "r") as handle:
                chunks = {n: handle[f"outputs/{n}"].chunks[0] for n in handle["outputs"]}
            rows.append({"chunk": label, "chunk_rows": chunks, **measure(path, seconds)})
            rows[-1]["file_mb"] = path.stat().st_size / 2**20
    summary = {"dataset": str(dataset), "machine": machine(), "seconds": seconds, "rows": rows}
    output.mkdir(parents=True, exist_ok=True)
    (output / "reading.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output / "reading.md").write_text(render_markdown(summary))
    return summary


def render_markdown(summary: dict) -> str:
    """The results as a Markdown table."""
    first = summary["rows"][0]
    lines = [
        f"Reading {summary['dataset']}: {first['samples']:,} samples, "
        f"{first['bytes_per_sample']} bytes of outputs per sample ({summary['machine']}).",
        "",
        "| chunks | file MB | random reads/s (1 sample), cached / uncached chunks "
        "| random batches of 256, samples/s, cached / uncached "
        "| DataLoader shuffled, 0 / 2 workers, samples/s "
        "| sequential MB/s | tf.data pass MB/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        loader = " / ".join(
            "-" if row[key] is None else f"{row[key]:,.0f}"
            for key in ("dataloader_0_samples_per_s", "dataloader_2_samples_per_s")
        )
        tf_pass = "-" if row["tf_pass_mb_per_s"] is None else f"{row['tf_pass_mb_per_s']:,.0f}"
        lines.append(
            f"| {row['chunk']} | {row['file_mb']:.1f} | {row['single_reads_per_s']:,.0f} / "
            f"{row['uncached_single_reads_per_s']:,.0f} | "
            f"{row['batch_samples_per_s']:,.0f} / {row['uncached_batch_samples_per_s']:,.0f} | "
            f"{loader} | {row['sequential_mb_per_s']:,.0f} "
            f"| {tf_pass} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a built dataset.h5 (default: build one)")
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="to build")
    parser.add_argument("--chunk-kib", default="64,1024", help="chunk sizes compared (KiB)")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--output", type=Path, default=Path("results/benchmarks"))
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.chunk_kib.split(",")]
    if args.dataset:
        summary = run_all(args.dataset, sizes, args.seconds, args.output)
    else:
        with tempfile.TemporaryDirectory() as folder:
            dataset = build_dataset(args.config, Path(folder))
            summary = run_all(dataset, sizes, args.seconds, args.output)
    print(render_markdown(summary), end="")
