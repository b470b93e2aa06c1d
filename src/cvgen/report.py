"""Performance and content report of a dataset: JSON for machines, Markdown and PNGs for people.

Every number is derived from dataset.h5 (per-shard timings recorded by the jobs themselves) and,
when given, Snakemake's per-shard benchmark files (peak memory).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import numpy as np

from cvgen.dataset import Dataset, read_dataset

log = logging.getLogger(__name__)

PLOTS = ("throughput", "timeline", "norm", "outputs")
NORM_THRESHOLDS = (0.999, 0.99, 0.9)
# What the first batch of a job pays once, per engine.
FIRST_BATCH_SETUP = {
    "sf": "numba compilation of thewalrus's gate functions, TF kernels",
    "compiled": "tracing the tf.function and building the per-circuit gates",
}


def build_report(
    dataset_path: str | Path,
    json_path: str | Path,
    markdown_path: str | Path,
    plot_dir: str | Path,
    benchmark_paths: list[str | Path] = (),
) -> dict:
    """Write report.json, report.md and the plots; return the report as a dict."""
    dataset = read_dataset(dataset_path)
    report = summarise(dataset, [read_benchmark(p) for p in benchmark_paths])
    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    plot_all(dataset, report, plot_dir)
    Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    Path(markdown_path).write_text(render_markdown(report, plot_dir, Path(markdown_path).parent))
    log.info("report written to %s and %s", json_path, markdown_path)
    return report


def read_benchmark(path: str | Path) -> dict[str, float]:
    """The one row of a Snakemake benchmark TSV (wall seconds, peak RSS in MB, CPU seconds)."""
    with open(path, newline="") as handle:
        row = next(csv.DictReader(handle, delimiter="\t"))
    return {key: _number(row.get(key)) for key in ("s", "max_rss", "cpu_time", "mean_load")}


def _number(text: str | None) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def summarise(dataset: Dataset, benchmarks: list[dict] = ()) -> dict:
    """All report numbers: performance per shard and overall, truncation, output statistics."""
    config, attrs, shards = dataset.config, dataset.attrs, dataset.shards
    samples = shards["stop"] - shards["start"]
    wall = shards["finished_unix"] - shards["process_start_unix"]
    makespan = float(shards["finished_unix"].max() - shards["process_start_unix"].min())
    steady_rate = np.divide(
        shards["steady_samples"],
        shards["steady_s"],
        out=np.full(len(samples), np.nan),
        where=shards["steady_s"] > 0,
    )
    per_shard = []
    for i in range(len(samples)):
        row = {
            "shard": int(shards["shard_index"][i]),
            "samples": int(samples[i]),
            "host": str(shards["host"][i]),
            "threads": int(shards["threads"][i]),
            "wall_s": float(wall[i]),
            "startup_s": float(shards["startup_s"][i]),
            "import_s": float(shards["import_s"][i]),
            "first_batch_s": float(shards["first_batch_s"][i]),
            "steady_s": float(shards["steady_s"][i]),
            "steady_samples_per_s": _finite(steady_rate[i]),
            "samples_per_s": float(samples[i] / wall[i]),
            "norm_below_threshold": int(shards["norm_below_threshold"][i]),
        }
        if i < len(benchmarks) and benchmarks[i]:
            row["max_rss_mb"] = benchmarks[i]["max_rss"]
        per_shard.append(row)
    norm = dataset.outputs["norm"].astype(np.float64)
    return {
        "dataset": config["dataset"],
        "config_hash": str(attrs["config_hash"]),
        "engine": config["engine"],
        "batch_size": config["batch_size"],
        "circuit": {
            "modes": int(attrs["modes"]),
            "cutoff": int(attrs["cutoff"]),
            "dtype": str(attrs["dtype"]),
            "source": config["circuit"]["blackbird"] or config["circuit"]["template"],
            "layers": None if config["circuit"]["blackbird"] else config["circuit"]["layers"],
        },
        "n_samples": int(attrs["n_samples"]),
        "n_circuits": int(attrs["n_circuits"]),
        "n_shards": len(samples),
        "performance": {
            "makespan_s": makespan,
            "samples_per_s": float(samples.sum() / makespan),
            "total_job_s": float(wall.sum()),
            "effective_parallel_speedup": float(wall.sum() / makespan),
            "startup_fraction": float(shards["startup_s"].sum() / wall.sum()),
            "mean_startup_s": float(shards["startup_s"].mean()),
            "mean_first_batch_s": float(shards["first_batch_s"].mean()),
            "steady_samples_per_s_per_job": _finite(np.nanmean(steady_rate)),
            "max_rss_mb": max(
                (b["max_rss"] for b in benchmarks if b and b["max_rss"] is not None), default=None
            ),
            "shards": per_shard,
        },
        "truncation": {
            "norm_threshold": config["norm_threshold"],
            "samples_below_threshold": int(shards["norm_below_threshold"].sum()),
            "norm_min": float(norm.min()),
            "norm_mean": float(norm.mean()),
            "norm_p01": float(np.percentile(norm, 1)),
            "norm_median": float(np.median(norm)),
            **{f"fraction_norm_below_{t}": float(np.mean(norm < t)) for t in NORM_THRESHOLDS},
        },
        "outputs": {
            name: _statistics(values)
            for name, values in dataset.outputs.items()
            if name in ("quad_x", "quad_p", "mean_photon")
        },
    }


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _statistics(values: np.ndarray) -> dict[str, list[float]]:
    """Per-mode mean, standard deviation, minimum and maximum of a samples x modes output."""
    values = values.astype(np.float64)
    return {
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0).tolist(),
        "min": values.min(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
    }


def plot_all(dataset: Dataset, report: dict, plot_dir: Path) -> None:
    """Write the report's PNG plots into plot_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shards = report["performance"]["shards"]
    index = [row["shard"] for row in shards]

    figure, axis = plt.subplots(figsize=(7, 3.5))
    width = 0.4
    axis.bar(
        np.subtract(index, width / 2),
        [r["steady_samples_per_s"] or 0 for r in shards],
        width,
        label="steady state (after the first batch)",
    )
    axis.bar(
        np.add(index, width / 2),
        [r["samples_per_s"] for r in shards],
        width,
        label="whole job, start-up included",
    )
    axis.set(xlabel="shard", ylabel="samples / s")
    figure.suptitle("Throughput per shard job")
    axis.set_xticks(index)
    axis.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=2)
    _save(figure, plot_dir / "throughput.png")

    figure, axis = plt.subplots(figsize=(7, 1.6 + 0.35 * len(shards)))
    origin = dataset.shards["process_start_unix"].min()
    for row, begin in zip(shards, dataset.shards["process_start_unix"], strict=True):
        left = begin - origin
        parts = (
            ("start-up", row["startup_s"], "tab:gray"),
            ("first batch", row["first_batch_s"], "tab:orange"),
            ("steady state", row["steady_s"], "tab:blue"),
        )
        for label, length, colour in parts:
            axis.barh(row["shard"], length, left=left, color=colour, label=label)
            left += length
    handles, labels = axis.get_legend_handles_labels()
    axis.legend(
        handles[:3], labels[:3], fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.12), ncol=3
    )
    axis.set(xlabel="seconds since the first job started", ylabel="shard")
    figure.suptitle("Wall time of each job: start-up vs compute")
    axis.invert_yaxis()
    _save(figure, plot_dir / "timeline.png")

    figure, axis = plt.subplots(figsize=(6, 3.5))
    loss = 1.0 - dataset.outputs["norm"].astype(np.float64)
    axis.hist(loss, bins=_bins(loss), color="tab:purple")
    axis.set(
        xlabel="1 - norm (probability lost outside the cutoff)",
        ylabel="samples",
        title="Truncation of each output state",
    )
    axis.set_yscale("log")
    _save(figure, plot_dir / "norm.png")

    names = [n for n in ("quad_x", "quad_p", "mean_photon") if n in dataset.outputs]
    figure, axes = plt.subplots(1, max(1, len(names)), figsize=(4 * max(1, len(names)), 3.2))
    for axis, name in zip(np.atleast_1d(axes), names, strict=False):
        values = dataset.outputs[name].astype(np.float64)
        for mode in range(values.shape[1]):
            column = values[:, mode]
            axis.hist(column, bins=_bins(column), histtype="step", label=f"mode {mode}")
        axis.set(xlabel=name, ylabel="samples")
        axis.legend(fontsize=7)
    if not names:
        np.atleast_1d(axes)[0].text(0.5, 0.5, "no per-mode outputs requested", ha="center")
    figure.suptitle("Distribution of the outputs over the dataset")
    _save(figure, plot_dir / "outputs.png")


def _bins(values: np.ndarray) -> int:
    """50 histogram bins, or 1 where all values are (numerically) equal."""
    return 50 if np.ptp(values) > 1e-12 * max(1.0, np.abs(values).max()) else 1


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def render_markdown(report: dict, plot_dir: Path, base: Path) -> str:
    """A human-readable report that explains every number it shows."""
    perf, trunc, circuit = report["performance"], report["truncation"], report["circuit"]
    rel = Path(os.path.relpath(plot_dir, base))  # links work wherever the report is opened
    rss = f"{perf['max_rss_mb']:.0f} MB" if perf["max_rss_mb"] is not None else "not measured"
    lines = [
        f"# Dataset `{report['dataset']}`",
        "",
        f"{report['n_samples']} samples ({report['n_circuits']} circuit(s)) from a "
        f"{circuit['modes']}-mode `{circuit['source']}` circuit"
        + (f" with {circuit['layers']} layers" if circuit["layers"] else "")
        + f", cutoff {circuit['cutoff']}, {circuit['dtype']}; engine `{report['engine']}`, "
        f"batch size {report['batch_size']}, {report['n_shards']} shard jobs. "
        f"Config hash `{report['config_hash'][:16]}`.",
        "",
        "## Performance",
        "",
        "| quantity | value | meaning |",
        "|---|---|---|",
        f"| samples/s overall | {perf['samples_per_s']:.1f} | all samples / makespan |",
        f"| makespan | {perf['makespan_s']:.1f} s | first job start to last job end |",
        f"| job time, summed | {perf['total_job_s']:.1f} s | sum of every job's wall time |",
        f"| effective parallel speed-up | {perf['effective_parallel_speedup']:.2f}x | "
        "summed job time / makespan |",
        f"| start-up share | {100 * perf['startup_fraction']:.1f} % | process start to engine "
        "ready (interpreter, TF+SF import, program build), over job time |",
        f"| mean start-up per job | {perf['mean_startup_s']:.2f} s | |",
        f"| mean first batch | {perf['mean_first_batch_s']:.2f} s | includes one-off set-up: "
        f"{FIRST_BATCH_SETUP.get(report['engine'], 'engine set-up')} |",
        f"| steady samples/s per job | {_fmt(perf['steady_samples_per_s_per_job'])} | after "
        "the first batch, mean over jobs |",
        f"| peak memory of a job | {rss} | max RSS from Snakemake's benchmark files |",
        "",
        "| shard | samples | wall s | start-up s | first batch s | steady s | steady samples/s "
        "| samples/s | max RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in perf["shards"]:
        lines.append(
            f"| {row['shard']} | {row['samples']} | {row['wall_s']:.2f} | {row['startup_s']:.2f} "
            f"| {row['first_batch_s']:.2f} | {row['steady_s']:.2f} "
            f"| {_fmt(row['steady_samples_per_s'])} | {row['samples_per_s']:.1f} "
            f"| {_fmt(row.get('max_rss_mb'), '.0f')} |"
        )
    lines += [
        "",
        f"![throughput]({rel / 'throughput.png'})",
        f"![timeline]({rel / 'timeline.png'})",
        "",
        "## Truncation",
        "",
        "`norm` is the probability of the output state inside the Fock cutoff; 1 - norm is "
        "lost to truncation. Expectation values are those of the truncated state (as SF "
        "reports them), so low norms mean biased outputs: raise the cutoff if they matter.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| samples below norm_threshold {trunc['norm_threshold']} | "
        f"{trunc['samples_below_threshold']} |",
        f"| min norm | {trunc['norm_min']:.6f} |",
        f"| 1st percentile | {trunc['norm_p01']:.6f} |",
        f"| median | {trunc['norm_median']:.6f} |",
        f"| mean | {trunc['norm_mean']:.6f} |",
    ]
    lines += [
        f"| fraction below {t} | {trunc[f'fraction_norm_below_{t}']:.4f} |" for t in NORM_THRESHOLDS
    ]
    lines += ["", f"![norm]({rel / 'norm.png'})", "", "## Outputs", ""]
    if report["outputs"]:
        lines += ["| output | mode | mean | std | min | max |", "|---|---|---|---|---|---|"]
        for name, stats in report["outputs"].items():
            for mode in range(len(stats["mean"])):
                lines.append(
                    f"| {name} | {mode} | {stats['mean'][mode]:.4f} | {stats['std'][mode]:.4f} "
                    f"| {stats['min'][mode]:.4f} | {stats['max'][mode]:.4f} |"
                )
    lines += ["", f"![outputs]({rel / 'outputs.png'})", ""]
    return "\n".join(lines)


def _fmt(value, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)
