"""Job benchmark: one generation job of a dataset, run as the workflow runs it, on each backend.

A job is a fresh process (`cvgen generate-shard`), so its wall time holds everything a real job
pays: the interpreter, imports, params.h5, engine set-up, the first batch (tracing on TF), the
steady state, the convergence check and the write. For each backend (`numpy`, `tensorflow`,
and the `sf` engine) the same shard of the same dataset (the default config unless one is given)
runs `--repeats` times, alternating, and the breakdown each job records (cvgen.records.ShardRun)
is reported as medians with the outside wall time, and ratios to the numpy job.

    python benchmarks/jobs.py [--config config.yaml] [--repeats 3] [--output results/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py

from cvgen.bench.measure import machine
from cvgen.config import read_config
from cvgen.records import RUN_FIELDS

__all__ = ["VARIANTS", "main", "render_markdown", "run_all"]

# (label, config overrides): the same dataset on each backend, and on SF's engine.
VARIANTS = (
    ("numpy", {"engine": "compiled", "backend": "numpy"}),
    ("tensorflow", {"engine": "compiled", "backend": "tensorflow"}),
    ("sf", {"engine": "sf"}),
)
TIMINGS = ("startup_s", "import_s", "trace_s", "first_batch_s", "steady_s", "convergence_s")


def run_job(params: Path, output: Path) -> dict:
    """One generate_shard process for shard 0: its outside wall time and its own record."""
    command = [
        sys.executable,
        "-c",
        "from cvgen.cli import main; main()",
        "generate-shard",
        "--params",
        str(params),
        "--shard",
        "0",
        "--output",
        str(output),
    ]
    clock = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - clock
    if done.returncode:
        raise RuntimeError(f"job failed:\n{done.stderr[-3000:]}")
    with h5py.File(output, "r") as handle:
        run = {name: handle.attrs[name] for name in RUN_FIELDS}
    output.unlink()
    samples = int(run["stop"] - run["start"])
    steady = float(run["steady_s"])
    return {
        "wall_s": wall,
        **{name: float(run[name]) for name in TIMINGS},
        "samples": samples,
        "steady_samples_per_s": run["steady_samples"] / steady if steady > 0 else None,
        "backend": str(run["backend"]),
    }


def run_all(config: dict, repeats: int, output: Path) -> dict:
    """Every variant's job, `repeats` times each, interleaved; medians and ratios."""
    from cvgen.stages import prepare_params

    folder = Path(tempfile.mkdtemp(prefix="cvgen-jobs-"))
    try:
        params = {}
        for label, overrides in VARIANTS:
            params[label] = folder / f"{label}.h5"
            prepare_params({**config, **overrides}, params[label])
        rows: dict[str, list[dict]] = {label: [] for label, _ in VARIANTS}
        for _ in range(repeats):
            for label, _ in VARIANTS:
                rows[label].append(run_job(params[label], folder / f"{label}-shard.h5"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    medians = {
        label: {
            key: statistics.median(row[key] for row in runs)
            for key in ("wall_s", *TIMINGS, "steady_samples_per_s")
        }
        for label, runs in rows.items()
    }
    base = medians["numpy"]
    ratios = {
        label: {
            "wall_vs_numpy": values["wall_s"] / base["wall_s"],
            "steady_rate_vs_numpy": values["steady_samples_per_s"] / base["steady_samples_per_s"],
        }
        for label, values in medians.items()
    }
    summary = {
        "machine": machine(),
        "samples": rows["numpy"][0]["samples"],
        "repeats": repeats,
        "medians": medians,
        "ratios": ratios,
        "runs": rows,
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "jobs.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output / "jobs.md").write_text(render_markdown(summary))
    return summary


def render_markdown(summary: dict) -> str:
    """The table of medians, one row per variant."""
    lines = [
        f"One generation job of {summary['samples']} samples in a fresh process, median of "
        f"{summary['repeats']} ({summary['machine']}); seconds unless stated.",
        "",
        "| job | wall (outside) | start-up | of it imports | first batch | of it tracing "
        "| steady | convergence | steady samples/s | wall / numpy's |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, values in summary["medians"].items():
        ratio = summary["ratios"][label]["wall_vs_numpy"]
        lines.append(
            f"| {label} | {values['wall_s']:.2f} | {values['startup_s']:.2f} "
            f"| {values['import_s']:.2f} | {values['first_batch_s']:.2f} "
            f"| {values['trace_s']:.2f} | {values['steady_s']:.2f} "
            f"| {values['convergence_s']:.2f} | {values['steady_samples_per_s']:,.0f} "
            f"| {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Command line: run the job benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml", help="dataset config (config.yaml)")
    parser.add_argument("--repeats", type=int, default=3, help="jobs per variant (3)")
    parser.add_argument("--output", default="results/benchmarks", help="folder for jobs.*")
    args = parser.parse_args(argv)
    summary = run_all(read_config(args.config), args.repeats, Path(args.output))
    print(render_markdown(summary), end="")


if __name__ == "__main__":
    main()
