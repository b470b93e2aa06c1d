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

from cvgen.conventions import SAMPLING_OUTPUTS
from cvgen.convergence import MEASURABLE_NORM, checked_outputs
from cvgen.dataset import Dataset, read_dataset
from cvgen.noise import noise_report_lines
from cvgen.plan import DatasetPlan

log = logging.getLogger(__name__)

PLOTTED_MODES = 6  # per-mode panels of the sampling figure; the tables list every mode
# The report's figures, in report order: name (report/{name}.png, its caption in
# workflow/report/{name}.rst) -> its category in Snakemake's HTML report. A dataset draws and
# registers only those with something to show: figures_for(plan).
FIGURES = {
    "throughput": "Performance",
    "timeline": "Performance",
    "norm": "Truncation",
    "convergence": "Truncation",
    "outputs": "Expectation values",
    "sampling": "Sampled outcomes",
    "correlation": "Sampled outcomes",
}
PLOTS = tuple(FIGURES)
PER_MODE_OUTPUTS = ("quad_x", "quad_p", "mean_photon")
OUTPUT_LABELS = {
    "quad_x": r"$\langle x \rangle$ (ħ = 2)",
    "quad_p": r"$\langle p \rangle$ (ħ = 2)",
    "mean_photon": r"$\langle n \rangle$ (photons)",
    "fock_probs": "Fock probabilities",
}
# One style for every figure, sized for Snakemake's HTML report, which shows a PNG at its pixel
# size (WIDTH * DPI = 750 px wide fits beside the report's side panel) and report.md alike.
WIDTH = 7.5  # inches
DPI = 100
STYLE = {
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 11,
    "figure.titlesize": 12,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
}
COLOURS = {
    "startup": "#9e9e9e",
    "first": "tab:orange",
    "steady": "tab:blue",
    "whole": "#9ecae1",
    "check": "tab:green",
    "line": "#444444",
    "limit": "tab:red",
    "norm": "tab:purple",
    "sampled": "#9ecae1",
    "sampled_counts": "#fdae6b",
    "exact": "black",
}
# 1 - norm at or below this is rounding, not truncation (complex64 sums keep ~7 digits).
NORM_RESOLUTION = {"float32": 1e-6, "float64": 1e-12}
CHANGE_RESOLUTION = 1e-10  # smaller changes of an output at the higher cutoff: drawn at this
NORM_THRESHOLDS = (0.999, 0.99, 0.9)
# What the first batch of a job pays once, per engine and backend.
FIRST_BATCH_SETUP = {
    ("sf", "tensorflow"): "numba compilation of thewalrus's gate functions, TF kernels",
    ("compiled", "tensorflow"): "tracing the batch function (column trace s), TF's graph "
    "optimisation, the per-circuit gates",
    ("compiled", "numpy"): "the per-circuit gates (nothing is traced on numpy)",
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
    report["figures"] = list(plot_all(dataset, report, plot_dir))
    report["covered_outputs"] = list(dataset.plan.outputs)
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
    plan, attrs, shards = dataset.plan, dataset.attrs, dataset.shards
    circuit = plan.circuit
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
            "trace_s": float(shards["trace_s"][i]),
            "first_batch_s": float(shards["first_batch_s"][i]),
            "steady_s": float(shards["steady_s"][i]),
            "convergence_s": float(shards["convergence_s"][i]),
            "steady_samples_per_s": _finite(steady_rate[i]),
            "samples_per_s": float(samples[i] / wall[i]),
            "norm_below_threshold": int(shards["norm_below_threshold"][i]),
            "peak_rss_mb": float(shards["peak_rss_mb"][i]),
        }
        if i < len(benchmarks) and benchmarks[i]:
            row["max_rss_mb"] = benchmarks[i]["max_rss"]  # Snakemake's sampling of the job
        per_shard.append(row)
    norm = dataset.outputs["norm"].astype(np.float64)
    return {
        "dataset": plan.dataset,
        "config_hash": plan.config_hash,
        "engine": plan.engine,
        "engine_reason": plan.engine_reason,
        "noise_section": noise_report_lines(json.loads(plan.to_json())),
        "backend": plan.backend,
        "backend_reason": plan.backend_reason,
        "batch_size": plan.batch_size,
        "configured_batch_size": plan.configured_batch_size,
        "circuit": {
            "modes": circuit.modes,
            "cutoff": circuit.cutoff,
            "dtype": circuit.dtype,
            "truncation": circuit.truncation,
            "source": plan.config["circuit"]["blackbird"] or plan.config["circuit"]["template"],
            "layers": (
                plan.config["circuit"]["layers"]
                if not circuit.blackbird_text and plan.config["circuit"]["template"] == "qnn"
                else None
            ),
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
            "mean_import_s": float(shards["import_s"].mean()),
            "mean_trace_s": float(shards["trace_s"].mean()),
            "mean_first_batch_s": float(shards["first_batch_s"].mean()),
            "mean_convergence_s": float(shards["convergence_s"].mean()),
            "steady_samples_per_s_per_job": _finite(np.nanmean(steady_rate)),
            "max_rss_mb": max(
                (b["max_rss"] for b in benchmarks if b and b["max_rss"] is not None), default=None
            ),
            "peak_rss_mb": float(shards["peak_rss_mb"].max()),
            "shards": per_shard,
        },
        "truncation": {
            "norm_threshold": plan.norm_threshold,
            "samples_below_threshold": int(shards["norm_below_threshold"].sum()),
            "norm_min": float(norm.min()),
            "norm_mean": float(norm.mean()),
            "norm_p01": float(np.percentile(norm, 1)),
            "norm_median": float(np.median(norm)),
            **{f"fraction_norm_below_{t}": float(np.mean(norm < t)) for t in NORM_THRESHOLDS},
        },
        "convergence": convergence_summary(dataset),
        "outputs": {
            name: _statistics(values)
            for name, values in dataset.outputs.items()
            if name in ("quad_x", "quad_p", "mean_photon")
        },
        "sampling": sampling_summary(dataset),
    }


def convergence_summary(dataset: Dataset) -> dict:
    """The truncation check: per output, how far re-run samples moved at the higher cutoff."""
    if dataset.plan.engine == "gaussian":
        return {"verdict": "exact", "outputs": {}, "samples": 0, "unmeasured_samples": 0}
    check = dataset.convergence
    summary = {
        "cutoff": int(check["cutoff"]),
        "reference_cutoff": int(check["reference_cutoff"]),
        "tolerance": float(check["tolerance"]),
        "samples": len(check["rows"]) if "rows" in check else 0,
        "outputs": {},
    }
    for name in checked_outputs(dataset.plan.outputs):
        if f"max_{name}" in check:
            largest = check[f"max_{name}"]
            summary["outputs"][name] = {
                "max_abs_deviation": float(largest.max()),
                "mean_abs_deviation": float(check[f"mean_{name}"].mean()),
                "worst_sample": int(check["rows"][np.argmax(largest)]),
            }
    worst = [entry["max_abs_deviation"] for entry in summary["outputs"].values()]
    reference_norm = check.get("reference_norm")
    lost = 0 if reference_norm is None else int(np.sum(~(reference_norm >= MEASURABLE_NORM)))
    summary["unmeasured_samples"] = lost
    summary["within_tolerance"] = bool(worst) and not lost and max(worst) <= summary["tolerance"]
    if not worst:
        summary["verdict"] = "not run"
    elif lost:
        summary["verdict"] = "not measurable"
    else:
        summary["verdict"] = "within tolerance" if summary["within_tolerance"] else "over tolerance"
    return summary


def sampling_summary(dataset: Dataset) -> dict | None:
    """Sampled outcomes against the exact distributions of the same states, or None.

    Exact: the mean over the dataset's states of each state's own distribution (renormalised
    inside the cutoff), as the sampler saw them. Standard errors treat all outcomes as
    independent draws from that mixture.
    """
    if not dataset.sampling:
        return None
    outputs, summaries, sampling = dataset.outputs, dataset.summaries, dataset.sampling
    result = {"shots": int(sampling["shots"]), "angles": np.asarray(sampling["angles"]).tolist()}
    if "homodyne_density" in summaries:
        samples = outputs["homodyne"].astype(np.float64)
        flat = samples.reshape(-1, samples.shape[-1])
        mean, var = _density_moments(summaries["homodyne_density"], dataset.sampling)
        sampled_mean = flat.mean(axis=0)
        result["homodyne"] = {
            "sampled_mean": sampled_mean.tolist(),
            "exact_mean": mean.tolist(),
            "mean_z": ((sampled_mean - mean) / np.sqrt(var / len(flat))).tolist(),
            "sampled_std": flat.std(axis=0).tolist(),
            "exact_std": np.sqrt(var).tolist(),
            "grid_mass_error": float(summaries["homodyne_mass_error"]),
            "grid_interpolation_error": float(summaries["homodyne_interpolation_error"]),
        }
        if "homodyne_pair_moment" in summaries:
            exact = (summaries["homodyne_pair_moment"] - mean[0] * mean[1]) / np.sqrt(
                var[0] * var[1]
            )
            result["homodyne"]["correlation_01"] = {
                "sampled": float(np.corrcoef(flat[:, 0], flat[:, 1])[0, 1]),
                "exact": float(exact),
                "standard_error": float((1 - exact**2) / np.sqrt(len(flat))),
            }
    if "heterodyne_moments" in summaries:
        result["heterodyne"] = _heterodyne_summary(outputs["heterodyne"], summaries)
    if "fock_marginals" in summaries:
        exact = summaries["fock_marginals"]
        result["fock"] = {"exact_click_probability": (1 - exact[:, 0]).tolist()}
        if "photon_ceiling_mass" in summaries:
            result["fock"]["photon_ceiling_mass"] = float(summaries["photon_ceiling_mass"])
        if "threshold_samples" in outputs:
            clicks = outputs["threshold_samples"].reshape(-1, exact.shape[0])
            result["fock"]["sampled_click_probability"] = clicks.mean(axis=0).tolist()
        if "fock_samples" in outputs:
            flat = outputs["fock_samples"].reshape(-1, exact.shape[0]).astype(np.float64)
            frequencies = _fock_frequencies(outputs["fock_samples"], exact.shape[1])
            photons = np.arange(exact.shape[1])
            exact_mean = summaries.get("photon_means", exact @ photons)
            result["fock"].update(
                {
                    "sampled_click_probability": (1 - frequencies[:, 0]).tolist(),
                    "sampled_mean_photon": flat.mean(axis=0).tolist(),
                    "exact_mean_photon": np.asarray(exact_mean).tolist(),
                    "total_variation": (0.5 * np.abs(frequencies - exact).sum(axis=1)).tolist(),
                }
            )
    return result


def _heterodyne_summary(samples: np.ndarray, summaries: dict) -> dict:
    """Sampled means and variances of each mode's heterodyne x and p against the exact ones
    (from the states' Q-function moments, summaries["heterodyne_moments"] [modes, 5])."""
    pairs = samples.reshape(-1, *samples.shape[-2:]).astype(np.float64)  # [outcomes, M, 2]
    moments = summaries["heterodyne_moments"]
    exact_mean = moments[:, :2]
    exact_var = moments[:, 2:4] - exact_mean**2
    mean = pairs.mean(axis=0)
    return {
        "sampled_mean": mean.tolist(),
        "exact_mean": exact_mean.tolist(),
        "mean_z": ((mean - exact_mean) / np.sqrt(exact_var / len(pairs))).tolist(),
        "sampled_var": pairs.var(axis=0).tolist(),
        "exact_var": exact_var.tolist(),
    }


def _fock_frequencies(samples: np.ndarray, cutoff: int) -> np.ndarray:
    """Sampled photon-number frequencies per mode [modes, cutoff], counts of cutoff - 1 photons
    or more in the last column (the Gaussian engine's samples have no cutoff; its exact
    marginals are lumped alike)."""
    flat = np.minimum(samples.reshape(-1, samples.shape[-1]).astype(np.int64), cutoff - 1)
    counts = np.stack([np.bincount(flat[:, m], minlength=cutoff) for m in range(flat.shape[1])])
    return counts / len(flat)


def _density_moments(density: np.ndarray, sampling: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each mode's density on the grid [modes, points] (trapezoid rule)."""
    x = sampling["grid_start"] + sampling["grid_step"] * np.arange(density.shape[1])
    weights = np.full(len(x), sampling["grid_step"])
    weights[[0, -1]] /= 2
    mass = density @ weights
    mean = density @ (weights * x) / mass
    return mean, density @ (weights * x**2) / mass - mean**2


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


def figures_for(plan: DatasetPlan) -> tuple[str, ...]:
    """The figures a dataset's report draws, in report order: those with something to show.

    A pure function of the plan, so the workflow declares exactly these files before any job
    runs (workflow/rules/common.smk) and the report draws and links exactly them.
    """
    outputs = set(plan.outputs)
    fock = plan.engine != "gaussian"  # the Gaussian engine keeps every state whole
    shown = {
        "throughput": True,
        "timeline": True,
        "norm": fock,
        "convergence": fock and plan.convergence.fraction > 0,
        "outputs": bool(outputs & set(PER_MODE_OUTPUTS)),
        "sampling": bool(outputs & {"homodyne", "fock_samples", "threshold_samples"}),
        "correlation": "homodyne" in outputs and plan.circuit.modes >= 2,
    }
    return tuple(name for name in FIGURES if shown[name])


def plot_all(dataset: Dataset, report: dict, plot_dir: Path) -> tuple[str, ...]:
    """Draw the dataset's figures (figures_for) into plot_dir; remove stale ones of other
    figures; return the names drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = figures_for(dataset.plan)
    draw = {
        "throughput": lambda path: _plot_throughput(report, path),
        "timeline": lambda path: _plot_timeline(dataset, report, path),
        "norm": lambda path: _plot_norm(dataset, report["truncation"], path),
        "convergence": lambda path: _plot_convergence(dataset, report["convergence"], path),
        "outputs": lambda path: _plot_outputs(dataset, path),
        "sampling": lambda path: _plot_sampled_marginals(dataset, path),
        "correlation": lambda path: _plot_correlation(dataset, report["sampling"], path),
    }
    with plt.rc_context(STYLE):
        for name in FIGURES:
            path = plot_dir / f"{name}.png"
            if name in names:
                draw[name](path)
            else:
                path.unlink(missing_ok=True)  # a figure of an earlier build of other outputs
    return names


def _plot_throughput(report: dict, path: Path) -> None:
    """Samples/s of each shard job: steady state against the whole job, start-up included."""
    import matplotlib.pyplot as plt

    shards = report["performance"]["shards"]
    index = np.array([row["shard"] for row in shards])
    figure, axis = plt.subplots(figsize=(WIDTH, 3.4))
    width = 0.4
    axis.bar(
        index - width / 2,
        [row["steady_samples_per_s"] or 0 for row in shards],
        width,
        color=COLOURS["steady"],
        label="steady state (after the first batch)",
    )
    axis.bar(
        index + width / 2,
        [row["samples_per_s"] for row in shards],
        width,
        color=COLOURS["whole"],
        label="whole job, start-up included",
    )
    overall = report["performance"]["samples_per_s"]
    axis.axhline(overall, color=COLOURS["line"], linestyle="--", linewidth=1)
    axis.annotate(
        f"overall {overall:,.0f} samples/s (all samples / makespan)",
        (1, overall),
        xycoords=("axes fraction", "data"),
        xytext=(0, 3),
        textcoords="offset points",
        ha="right",
        va="bottom",
    )
    axis.set(xlabel="shard job", ylabel="throughput (samples/s)", xticks=index)
    axis.grid(axis="x", visible=False)
    axis.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    figure.suptitle("Throughput of each shard job")
    _save(figure, path)


def _plot_timeline(dataset: Dataset, report: dict, path: Path) -> None:
    """Each shard job's wall time, split into start-up, first batch, steady state and check."""
    import matplotlib.pyplot as plt

    shards = report["performance"]["shards"]
    figure, axis = plt.subplots(figsize=(WIDTH, 1.9 + 0.32 * len(shards)))
    origin = dataset.shards["process_start_unix"].min()
    parts = (
        ("start-up", "startup_s", COLOURS["startup"]),
        ("first batch", "first_batch_s", COLOURS["first"]),
        ("steady state", "steady_s", COLOURS["steady"]),
        ("convergence check", "convergence_s", COLOURS["check"]),
    )
    for row, begin in zip(shards, dataset.shards["process_start_unix"], strict=True):
        left = begin - origin
        for label, key, colour in parts:
            axis.barh(row["shard"], row[key], left=left, color=colour, label=label, height=0.7)
            left += row[key]
    handles, labels = axis.get_legend_handles_labels()
    axis.legend(
        handles[: len(parts)],
        labels[: len(parts)],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=len(parts),
        frameon=False,
    )
    axis.set(xlabel="time since the first job started (s)", ylabel="shard job")
    axis.set_yticks([row["shard"] for row in shards])
    axis.grid(axis="y", visible=False)
    axis.invert_yaxis()
    share = 100 * report["performance"]["startup_fraction"]
    figure.suptitle(f"Wall time of each shard job ({share:.0f} % of it start-up)")
    _save(figure, path)


def _plot_norm(dataset: Dataset, truncation: dict, path: Path) -> None:
    """Histogram of the probability each state loses outside the cutoff, on log axes."""
    import matplotlib.pyplot as plt

    loss = 1.0 - dataset.outputs["norm"].astype(np.float64)
    floor = NORM_RESOLUTION[str(dataset.outputs["norm"].dtype)]
    resolved = loss[loss > floor]
    figure, axis = plt.subplots(figsize=(WIDTH, 3.4))
    if len(resolved):
        top = max(resolved.max(), 10 * floor)
        bins = np.logspace(np.log10(floor), np.log10(top) + 1e-9, 50)
        axis.hist(resolved, bins=bins, color=COLOURS["norm"])
    axis.set_xscale("log")
    axis.set_yscale("log")
    cut = 1 - truncation["norm_threshold"]
    axis.axvline(cut, color=COLOURS["limit"], linestyle="--", linewidth=1.2)
    axis.annotate(
        f"norm_threshold {truncation['norm_threshold']:g} ",
        (cut, 0.5),
        xycoords=("data", "axes fraction"),
        ha="right",
        va="center",
        rotation=90,
        color=COLOURS["limit"],
    )
    axis.set_xlim(floor / 2, max(axis.get_xlim()[1], 3 * cut))
    axis.set(
        xlabel="1 − norm: probability outside the cutoff (log scale)",
        ylabel="samples per bin (log scale)",
    )
    axis.text(
        0.99,
        0.97,
        f"not shown: {len(loss) - len(resolved):,} of {len(loss):,} samples\n"
        f"lose ≤ {floor:.0e} (rounding, not truncation)",
        transform=axis.transAxes,
        ha="right",
        va="top",
        fontsize=STYLE["legend.fontsize"],
    )
    figure.suptitle("Probability each output state loses outside the cutoff")
    _save(figure, path)


def _plot_convergence(dataset: Dataset, convergence: dict, path: Path) -> None:
    """Per re-run sample: how far each output moved at the higher cutoff, against 1 - norm."""
    import matplotlib.pyplot as plt

    check = dataset.convergence
    # values at the rounding level are drawn on the axes' lower edges
    floor = NORM_RESOLUTION[str(check["norm"].dtype)]
    loss = np.maximum(1.0 - check["norm"].astype(np.float64), floor)
    figure, axis = plt.subplots(figsize=(WIDTH, 4.2))
    markers = iter("osD^v<>")
    for name in convergence["outputs"]:
        axis.scatter(
            loss,
            np.maximum(check[f"max_{name}"], CHANGE_RESOLUTION),
            s=14,
            marker=next(markers, "o"),
            alpha=0.6,
            label=OUTPUT_LABELS.get(name, name),
        )
    axis.axhline(convergence["tolerance"], color=COLOURS["limit"], linestyle="--", linewidth=1.2)
    axis.annotate(
        f"tolerance {convergence['tolerance']:g}",
        (0.01, convergence["tolerance"]),
        xycoords=("axes fraction", "data"),
        va="bottom",
        color=COLOURS["limit"],
    )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set(
        xlabel=f"1 − norm at cutoff {convergence['cutoff']} (log scale; ≤ {floor:.0e} drawn at it)",
        ylabel=f"largest change at cutoff {convergence['reference_cutoff']}\n"
        f"(output's units, log scale; ≤ {CHANGE_RESOLUTION:.0e} drawn at it)",
    )
    axis.set_xlim(floor / 1.5, max(3 * loss.max(), 1 - dataset.plan.norm_threshold))
    axis.set_ylim(bottom=CHANGE_RESOLUTION / 3)
    axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.suptitle(
        f"Truncation error of {convergence['samples']:,} re-run samples: {convergence['verdict']}"
    )
    _save(figure, path)


def _plot_outputs(dataset: Dataset, path: Path) -> None:
    """Per-mode expectation values over the dataset: one histogram panel per output."""
    import matplotlib.pyplot as plt

    names = [name for name in PER_MODE_OUTPUTS if name in dataset.outputs]
    modes = min(int(dataset.attrs["modes"]), PLOTTED_MODES)
    figure, axes = plt.subplots(1, len(names), figsize=(WIDTH, 3.3), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        values = dataset.outputs[name].astype(np.float64)
        counts = []
        for mode in range(modes):
            column = values[:, mode]
            counts += list(axis.hist(column, bins=_bins(column), histtype="step", linewidth=1.3,
                                     label=f"mode {mode}")[0])  # fmt: skip
        positive = np.array(counts)[np.array(counts) > 0]
        log = positive.max() > 100 * positive.min()  # the counts span decades
        if log:
            axis.set_yscale("log")
        axis.set(xlabel=OUTPUT_LABELS[name])
        axis.set_ylabel("samples per bin" + (" (log scale)" if log else ""))
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper right", ncol=min(modes, 6), frameon=False)
    shown = "" if modes == int(dataset.attrs["modes"]) else f" (first {modes} modes)"
    figure.suptitle(f"Expectation values over the dataset{shown}", x=0.02, ha="left")
    _save(figure, path)


def _plot_sampled_marginals(dataset: Dataset, path: Path) -> None:
    """Per mode: homodyne histogram over the exact density, sampled photon numbers over the exact
    probabilities (log scale: they span decades)."""
    import matplotlib.pyplot as plt

    summaries = dataset.summaries
    rows = ["homodyne"] if "homodyne" in dataset.outputs else []
    if "fock_samples" in dataset.outputs:
        rows.append("fock_samples")
    elif "threshold_samples" in dataset.outputs:
        rows.append("threshold_samples")
    modes = min(int(dataset.attrs["modes"]), PLOTTED_MODES)
    columns = min(modes, 3)
    grid_rows = [(name, start) for name in rows for start in range(0, modes, columns)]
    figure, axes = plt.subplots(
        len(grid_rows), columns, figsize=(WIDTH, 0.4 + 2.7 * len(grid_rows)), squeeze=False
    )
    for row, (name, start) in zip(axes, grid_rows, strict=True):
        for offset, axis in enumerate(row):
            mode = start + offset
            if mode >= modes:
                axis.set_visible(False)
                continue
            if name == "homodyne":
                _plot_homodyne_panel(axis, dataset, mode)
            elif name == "threshold_samples":
                click = 1 - summaries["fock_marginals"][mode][0]
                sampled = dataset.outputs[name][..., mode].mean()
                axis.bar([0, 1], [1 - sampled, sampled], color=COLOURS["sampled_counts"],
                         label="sampled")  # fmt: skip
                axis.plot([0, 1], [1 - click, click], "_", color=COLOURS["exact"],
                          markersize=14, markeredgewidth=2, label="exact")  # fmt: skip
                axis.set(xticks=[0, 1], xticklabels=["no click", "click"], ylabel="probability",
                         xlabel=f"threshold detector, mode {mode}")  # fmt: skip
            else:
                _plot_photon_panel(axis, dataset, name, mode)
            if offset:
                axis.set_ylabel("")
            else:
                axis.legend(loc="upper right" if name != "homodyne" else "upper left")
    shown = "" if modes == int(dataset.attrs["modes"]) else f" (first {modes} modes)"
    outcomes = int(np.prod(dataset.outputs[rows[0]].shape[:2]))
    figure.suptitle(
        f"{outcomes:,} sampled outcomes per mode against the exact distributions{shown}",
        x=0.02,
        ha="left",
    )
    _save(figure, path)


def _plot_homodyne_panel(axis, dataset: Dataset, mode: int) -> None:
    """One mode's homodyne outcomes (histogram) over the exact marginal density."""
    sampling = dataset.sampling
    density = dataset.summaries["homodyne_density"][mode]
    x = sampling["grid_start"] + sampling["grid_step"] * np.arange(len(density))
    values = dataset.outputs["homodyne"][..., mode].ravel()
    low, high = np.percentile(values, [0.05, 99.95])
    bins = np.linspace(low - 0.5, high + 0.5, int(np.clip(np.sqrt(len(values)) / 4, 20, 80)))
    axis.hist(values, bins=bins, density=True, color=COLOURS["sampled"], label="sampled")
    axis.plot(x, density, color=COLOURS["exact"], linewidth=1.3, label="exact")
    axis.set_xlim(bins[0], bins[-1])
    phi = float(np.asarray(sampling["angles"])[mode])
    quadrature = {0.0: "x", float(np.pi / 2): "p"}.get(phi, f"x_φ, φ = {phi:.3g}")
    axis.set(xlabel=f"homodyne {quadrature}, mode {mode} (ħ = 2)", ylabel="probability density")


def _plot_photon_panel(axis, dataset: Dataset, name: str, mode: int) -> None:
    """One mode's photon-number frequencies against the exact probabilities, log scale down to
    one outcome in all the shots."""
    exact = dataset.summaries["fock_marginals"][mode]
    samples = dataset.outputs[name]
    frequencies = _fock_frequencies(samples, len(exact))[mode]
    floor = 0.5 / int(np.prod(samples.shape[:-1]))  # half of one outcome
    seen = np.flatnonzero((exact > floor) | (frequencies > 0))
    top = int(seen.max()) if len(seen) else len(exact) - 1
    n = np.arange(top + 1)
    axis.bar(n, frequencies[: top + 1], color=COLOURS["sampled_counts"], label="sampled")
    axis.plot(n, exact[: top + 1], "_", color=COLOURS["exact"], markersize=14,
              markeredgewidth=2, label="exact")  # fmt: skip
    axis.set_yscale("log")
    axis.set_ylim(floor, 1.5)
    axis.set_xticks(n)
    axis.grid(axis="x", visible=False)
    axis.set(xlabel=f"photons detected, mode {mode}", ylabel="probability (log scale)")


def _plot_correlation(dataset: Dataset, sampling: dict, path: Path) -> None:
    """Joint histogram of the homodyne outcomes of modes 0 and 1, with both correlations."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    values = dataset.outputs["homodyne"].reshape(-1, dataset.outputs["homodyne"].shape[-1])
    correlation = sampling["homodyne"]["correlation_01"]
    figure, axis = plt.subplots(figsize=(WIDTH * 0.7, 4.6))
    ranges = [np.percentile(values[:, m], [0.05, 99.95]) for m in (0, 1)]
    *_, image = axis.hist2d(
        values[:, 0], values[:, 1], bins=60, range=ranges, cmap="viridis", norm=LogNorm(), cmin=1
    )
    figure.colorbar(image, ax=axis, label="outcomes per bin (log scale)")
    axis.set(
        xlabel="homodyne outcome, mode 0 (ħ = 2)",
        ylabel="homodyne outcome, mode 1 (ħ = 2)",
        aspect="equal",
    )
    axis.grid(False)
    figure.suptitle(
        f"Joint outcomes of modes 0 and 1: correlation sampled {correlation['sampled']:.4f}, "
        f"exact {correlation['exact']:.4f}",
        fontsize=STYLE["axes.titlesize"],
    )
    _save(figure, path)


def _bins(values: np.ndarray) -> int:
    """50 histogram bins, or 1 where all values are (numerically) equal."""
    return 50 if np.ptp(values) > 1e-12 * max(1.0, np.abs(values).max()) else 1


def _save(figure, path: Path) -> None:
    """Write one figure at the report's resolution (its pixels are the size the HTML report
    shows it at) and free it."""
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.12)
    plt.close(figure)


def render_markdown(report: dict, plot_dir: Path, base: Path) -> str:
    """A human-readable report that explains every number it shows."""
    perf, trunc, circuit = report["performance"], report["truncation"], report["circuit"]
    rel = Path(os.path.relpath(plot_dir, base))  # links work wherever the report is opened
    figures = report.get("figures", [])

    def figure(name: str) -> list[str]:
        """The figure's link, where the dataset has it (figures_for)."""
        return [f"![{name}]({rel / f'{name}.png'})"] if name in figures else []

    sampled = perf["max_rss_mb"]
    rss = f"{perf['peak_rss_mb']:.0f} MB" + (
        f" (Snakemake's benchmark files: {sampled:.0f} MB)" if sampled is not None else ""
    )
    lines = [
        f"# Dataset `{report['dataset']}`",
        "",
        f"{report['n_samples']} samples ({report['n_circuits']} circuit(s)) from a "
        f"{circuit['modes']}-mode `{circuit['source']}` circuit"
        + (f" with {circuit['layers']} layers" if circuit["layers"] else "")
        + (
            ", exact Gaussian states (no cutoff), "
            if report["engine"] == "gaussian"
            else f", cutoff {circuit['cutoff']} ({circuit['truncation']} truncation), "
        )
        + f"{circuit['dtype']}; engine `{report['engine']}` ({report['engine_reason']}) on "
        f"`{report['backend']}` "
        f"({report['backend_reason']}), batch size {report['batch_size']}"
        + (
            f" (configured {report['configured_batch_size']}, shrunk to fit memory_budget_mb)"
            if report["batch_size"] != report["configured_batch_size"]
            else ""
        )
        + f", {report['n_shards']} shard jobs. Config hash `{report['config_hash'][:16]}`.",
        "",
        *_covers_markdown(report),
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
        "ready (interpreter, imports, params.h5, engine set-up), over job time |",
        f"| mean start-up per job | {perf['mean_startup_s']:.2f} s | of which TF/SF imports "
        f"{perf['mean_import_s']:.2f} s (0 on numpy) |",
        f"| mean first batch | {perf['mean_first_batch_s']:.2f} s | includes one-off set-up: "
        f"{FIRST_BATCH_SETUP.get((report['engine'], report['backend']), 'engine set-up')}; "
        f"tracing {perf['mean_trace_s']:.2f} s |",
        f"| mean convergence check | {perf['mean_convergence_s']:.2f} s | re-running a "
        "subsample at a higher cutoff with the job's own compiled steps |",
        f"| steady samples/s per job | {_fmt(perf['steady_samples_per_s_per_job'])} | after "
        "the first batch, mean over jobs |",
        f"| peak memory of a job | {rss} | the largest peak RSS a job measured of itself "
        "(getrusage); Snakemake samples it and can miss short jobs' peaks |",
        "",
        "| shard | samples | wall s | start-up s | imports s | first batch s | trace s "
        "| steady s | convergence s | steady samples/s | samples/s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in perf["shards"]:
        lines.append(
            f"| {row['shard']} | {row['samples']} | {row['wall_s']:.2f} | {row['startup_s']:.2f} "
            f"| {row['import_s']:.2f} | {row['first_batch_s']:.2f} | {row['trace_s']:.2f} "
            f"| {row['steady_s']:.2f} | {row['convergence_s']:.2f} "
            f"| {_fmt(row['steady_samples_per_s'])} | {row['samples_per_s']:.1f} "
            f"| {row['peak_rss_mb']:.0f} |"
        )
    lines += ["", *figure("throughput"), *figure("timeline"), ""]
    if report["engine"] == "gaussian":
        lines += [
            "## Truncation",
            "",
            "**Exact**: engine `gaussian` holds each state as its exact means and covariance: "
            "there is no cutoff, `norm` is 1 for every sample and no output is truncated, so "
            "there is no truncation error to measure.",
            "",
        ]
    else:
        lines += _truncation_markdown(trunc, figure("norm"))
        lines += _convergence_markdown(report["convergence"], figure("convergence"))
    lines += report["noise_section"]
    if report["outputs"]:
        lines += [
            "## Expectation values",
            "",
            "Per-mode outputs over the dataset (quadratures in units of hbar = 2).",
            "",
            "| output | mode | mean | std | min | max |",
            "|---|---|---|---|---|---|",
        ]
        for name, stats in report["outputs"].items():
            for mode in range(len(stats["mean"])):
                lines.append(
                    f"| {name} | {mode} | {stats['mean'][mode]:.4f} | {stats['std'][mode]:.4f} "
                    f"| {stats['min'][mode]:.4f} | {stats['max'][mode]:.4f} |"
                )
        lines += ["", *figure("outputs"), ""]
    if report["sampling"]:
        lines += _sampling_markdown(report["sampling"], figure("sampling") + figure("correlation"))
    return "\n".join(lines)


def _covers_markdown(report: dict) -> list[str]:
    """What the report covers: the dataset's outputs, and the checks it has and has not."""
    outputs = report.get("covered_outputs", [])
    computed = [name for name in outputs if name not in SAMPLING_OUTPUTS]
    sampled = [name for name in outputs if name in SAMPLING_OUTPUTS]
    names = ", ".join(f"`{name}`" for name in computed)
    text = f"This report covers the outputs {names}" if computed else "This report covers"
    if sampled:
        shots = report["sampling"]["shots"] if report["sampling"] else "?"
        text += (
            (" and " if computed else " ")
            + "the sampled outcomes "
            + ", ".join(f"`{name}`" for name in sampled)
        )
        text += f" ({shots} shots per sample)"
    verdict = report["convergence"]["verdict"]
    if verdict == "exact":
        text += "; its states are exact Gaussian states, so nothing is truncated."
    elif report["convergence"]["outputs"]:
        text += f"; the convergence check measured the truncation error: {verdict}."
    else:
        text += (
            "; the truncation error was not measured (`convergence.fraction: 0`), only the "
            "probability each state keeps inside the cutoff."
        )
    return [text, ""]


def _truncation_markdown(trunc: dict, figure: list[str]) -> list[str]:
    """The truncation section of the Fock engines: how much probability the cutoff keeps."""
    lines = [
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
    return [*lines, "", *figure, ""]


def _convergence_markdown(convergence: dict, figure: list[str]) -> list[str]:
    """The convergence section: the measured truncation error of each output (left out where
    the check was switched off; the report's opening says so)."""
    if not convergence["outputs"]:
        return []
    lines = ["### Convergence check", ""]
    if convergence["verdict"] == "not measurable":
        lines += [
            f"**Not measurable**: {convergence['unmeasured_samples']} of "
            f"{convergence['samples']} re-run samples keep less than {MEASURABLE_NORM} of their "
            f"probability even at cutoff {convergence['reference_cutoff']}. Both runs lost "
            "those states, so their outputs agree because both are near zero, not because the "
            "cutoff suffices: the deviations below certify nothing. Narrow the parameter "
            "distributions or raise `circuit.cutoff`.",
            "",
        ]
    verdict = {"within tolerance": "within", "over tolerance": "**over**"}.get(
        convergence["verdict"], "not certified against"
    )
    lines += [
        f"{convergence['samples']} seeded samples (spread over all shards) were re-run at cutoff "
        f"{convergence['reference_cutoff']} instead of {convergence['cutoff']}. How far an "
        "output moves estimates its truncation error (the part a higher cutoff removes; the "
        f"reference is truncated too). The largest change is {verdict} the tolerance "
        f"{convergence['tolerance']:g}.",
        "",
        "| output | max abs deviation | mean abs deviation | worst sample |",
        "|---|---|---|---|",
    ]
    for name, entry in convergence["outputs"].items():
        lines.append(
            f"| {name} | {entry['max_abs_deviation']:.3g} | {entry['mean_abs_deviation']:.3g} "
            f"| {entry['worst_sample']} |"
        )
    if convergence["verdict"] == "over tolerance":
        lines += [
            "",
            "Raise `circuit.cutoff` (`cvgen suggest-cutoff --config CONFIG` finds the "
            "smallest that meets the tolerance) or narrow the parameter distributions.",
        ]
    return [*lines, "", *figure, ""]


def _sampling_markdown(sampling: dict, figures: list[str]) -> list[str]:
    """The sampled-outcomes section: each sampled statistic beside its exact value."""
    unique = set(sampling["angles"])
    angles = (
        f"{sampling['angles'][0]:.4g} on every mode"
        if len(unique) == 1
        else ", ".join(f"{a:.4g}" for a in sampling["angles"])
    )
    lines = [
        "## Sampled outcomes",
        "",
        f"{sampling['shots']} joint outcomes per state (quadrature angles: {angles}). "
        "Exact values are those of the same states (each renormalised inside the cutoff, as "
        "sampled, or the exact Gaussian states of engine gaussian); z is the difference in "
        "standard errors of the sampled mean.",
        "",
    ]
    homodyne = sampling.get("homodyne")
    if homodyne:
        lines += [
            "| mode | sampled mean | exact mean | z | sampled std | exact std |",
            "|---|---|---|---|---|---|",
        ]
        for mode, mean in enumerate(homodyne["sampled_mean"]):
            lines.append(
                f"| {mode} | {mean:.4f} | {homodyne['exact_mean'][mode]:.4f} "
                f"| {homodyne['mean_z'][mode]:+.2f} | {homodyne['sampled_std'][mode]:.4f} "
                f"| {homodyne['exact_std'][mode]:.4f} |"
            )
        lines += [
            "",
            f"Homodyne grid: at most {homodyne['grid_mass_error']:.1e} of a marginal's "
            "probability lies outside it (sampling.homodyne.grid_range), and linear "
            f"interpolation between its points is off by at most "
            f"{homodyne['grid_interpolation_error']:.1e} of a density's peak "
            "(sampling.homodyne.grid_points).",
        ]
        if "correlation_01" in homodyne:
            c = homodyne["correlation_01"]
            lines += [
                "",
                f"Correlation of modes 0 and 1: sampled {c['sampled']:.4f}, exact {c['exact']:.4f}"
                f" (standard error {c['standard_error']:.4f}).",
            ]
    heterodyne = sampling.get("heterodyne")
    if heterodyne:
        lines += [
            "",
            "Heterodyne (x, p) pairs, per mode: sampled against exact means and variances "
            "(exact: the Husimi Q function's, Var = Var of the state + 1 at hbar = 2).",
            "",
            "| mode | mean x | exact | mean p | exact | z (x, p) | Var x | exact | Var p | exact |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for mode, (mean, exact, z, var, exact_var) in enumerate(
            zip(
                *(
                    heterodyne[k]
                    for k in ("sampled_mean", "exact_mean", "mean_z", "sampled_var", "exact_var")
                ),
                strict=True,
            )  # fmt: skip
        ):
            lines.append(
                f"| {mode} | {mean[0]:.4f} | {exact[0]:.4f} | {mean[1]:.4f} | {exact[1]:.4f} "
                f"| {z[0]:+.2f}, {z[1]:+.2f} | {var[0]:.4f} | {exact_var[0]:.4f} "
                f"| {var[1]:.4f} | {exact_var[1]:.4f} |"
            )
    fock = sampling.get("fock")
    if fock:
        lines += [
            "",
            "| mode | sampled P(click) | exact P(click) | sampled <n> | exact <n> "
            "| total variation |",
            "|---|---|---|---|---|---|",
        ]
        for mode, exact in enumerate(fock["exact_click_probability"]):
            row = [fock.get("sampled_click_probability", [None] * (mode + 1))[mode], exact]
            row += [
                fock.get(k, [None] * (mode + 1))[mode]
                for k in ("sampled_mean_photon", "exact_mean_photon", "total_variation")
            ]
            lines.append(f"| {mode} | " + " | ".join(_fmt(v, ".4f") for v in row) + " |")
        if "photon_ceiling_mass" in fock:
            lines += [
                "",
                f"Photon ceiling (sampling.max_photons): P(N > ceiling) = "
                f"{fock['photon_ceiling_mass']:.2e} at most, computed exactly per state; it bounds "
                "the total-variation distance of the photon-number samples from the exact "
                "distribution. Total variation per mode lumps counts at or above the last "
                "plotted photon number.",
            ]
    return [*lines, "", *figures, ""]


def _fmt(value, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)
