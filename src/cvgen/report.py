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

from cvgen.convergence import MEASURABLE_NORM, checked_outputs
from cvgen.dataset import Dataset, read_dataset

log = logging.getLogger(__name__)

PLOTS = ("throughput", "timeline", "norm", "convergence", "outputs", "sampling", "correlation")
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
            "layers": None if circuit.blackbird_text else plan.config["circuit"]["layers"],
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
    if "fock_marginals" in summaries:
        exact = summaries["fock_marginals"]
        result["fock"] = {"exact_click_probability": (1 - exact[:, 0]).tolist()}
        if "threshold_samples" in outputs:
            clicks = outputs["threshold_samples"].reshape(-1, exact.shape[0])
            result["fock"]["sampled_click_probability"] = clicks.mean(axis=0).tolist()
        if "fock_samples" in outputs:
            frequencies = _fock_frequencies(outputs["fock_samples"], exact.shape[1])
            photons = np.arange(exact.shape[1])
            result["fock"].update(
                {
                    "sampled_click_probability": (1 - frequencies[:, 0]).tolist(),
                    "sampled_mean_photon": (frequencies @ photons).tolist(),
                    "exact_mean_photon": (exact @ photons).tolist(),
                    "total_variation": (0.5 * np.abs(frequencies - exact).sum(axis=1)).tolist(),
                }
            )
    return result


def _fock_frequencies(samples: np.ndarray, cutoff: int) -> np.ndarray:
    """Sampled photon-number frequencies per mode [modes, cutoff]."""
    flat = samples.reshape(-1, samples.shape[-1]).astype(np.int64)
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
            ("convergence check", row["convergence_s"], "tab:green"),
        )
        for label, length, colour in parts:
            axis.barh(row["shard"], length, left=left, color=colour, label=label)
            left += length
    handles, labels = axis.get_legend_handles_labels()
    axis.legend(
        handles[:4], labels[:4], fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.12), ncol=4
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
    _plot_convergence(dataset, report["convergence"], plot_dir / "convergence.png")
    _plot_sampled_marginals(dataset, plot_dir / "sampling.png")
    _plot_correlation(dataset, report["sampling"], plot_dir / "correlation.png")


def _plot_convergence(dataset: Dataset, convergence: dict, path: Path) -> None:
    """Per re-run sample: how far each output moved at the higher cutoff, against 1 - norm."""
    if not convergence["outputs"]:
        _placeholder(path, "convergence check switched off (convergence.fraction: 0)")
        return
    import matplotlib.pyplot as plt

    check = dataset.convergence
    loss = np.maximum(1.0 - check["norm"].astype(np.float64), 1e-16)
    figure, axis = plt.subplots(figsize=(6, 4))
    for name in convergence["outputs"]:
        axis.scatter(loss, np.maximum(check[f"max_{name}"], 1e-16), s=12, label=name, alpha=0.7)
    axis.axhline(convergence["tolerance"], color="tab:red", linestyle="--", label="tolerance")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set(
        xlabel=f"1 - norm at cutoff {convergence['cutoff']}",
        ylabel=f"max |change| at cutoff {convergence['reference_cutoff']}",
        title="Truncation error of re-run samples against their lost probability",
    )
    axis.legend(fontsize=7)
    _save(figure, path)


def _plot_sampled_marginals(dataset: Dataset, path: Path) -> None:
    """Per mode: homodyne histogram over the exact density, sampled photon numbers over the exact
    probabilities."""
    import matplotlib.pyplot as plt

    summaries = dataset.summaries
    rows = ["homodyne"] if "homodyne" in dataset.outputs else []
    rows += ["fock_samples"] if "fock_samples" in dataset.outputs else []
    if not rows:
        _placeholder(path, "no homodyne or fock_samples outputs requested")
        return
    modes = int(dataset.attrs["modes"])
    figure, axes = plt.subplots(
        len(rows), modes, figsize=(3.2 * modes, 2.8 * len(rows)), squeeze=False
    )
    sampling = dataset.sampling
    for row, name in zip(axes, rows, strict=True):
        for mode, axis in enumerate(row):
            if name == "homodyne":
                density = summaries["homodyne_density"][mode]
                x = sampling["grid_start"] + sampling["grid_step"] * np.arange(len(density))
                values = dataset.outputs["homodyne"][..., mode].ravel()
                bins = int(np.clip(np.sqrt(len(values)), 10, 100))
                axis.hist(
                    values, bins=bins, density=True, color="tab:blue", alpha=0.5, label="sampled"
                )
                axis.plot(x, density, color="black", linewidth=1, label="exact")
                low, high = np.percentile(values, [0.05, 99.95])
                axis.set_xlim(low - 1, high + 1)
                phi = float(np.asarray(sampling["angles"])[mode])
                axis.set(xlabel=f"x_phi, mode {mode} (phi = {phi:.3g})", ylabel="density")
            else:
                exact = summaries["fock_marginals"][mode]
                frequencies = _fock_frequencies(dataset.outputs[name], len(exact))[mode]
                n = np.arange(len(exact))
                axis.bar(n, frequencies, color="tab:orange", alpha=0.6, label="sampled")
                axis.plot(n, exact, "k_", markersize=12, label="exact")
                axis.set(xlabel=f"photons, mode {mode}", ylabel="probability")
            axis.legend(fontsize=7)
    figure.suptitle("Sampled outcomes against the exact distributions of the same states")
    _save(figure, path)


def _plot_correlation(dataset: Dataset, sampling: dict | None, path: Path) -> None:
    """Joint histogram of the homodyne outcomes of modes 0 and 1, with both correlations."""
    import matplotlib.pyplot as plt

    if not sampling or "correlation_01" not in sampling.get("homodyne", {}):
        _placeholder(path, "needs homodyne outputs on at least two modes")
        return
    values = dataset.outputs["homodyne"].reshape(-1, dataset.outputs["homodyne"].shape[-1])
    correlation = sampling["homodyne"]["correlation_01"]
    figure, axis = plt.subplots(figsize=(4.6, 4))
    ranges = [np.percentile(values[:, m], [0.1, 99.9]) for m in (0, 1)]
    axis.hist2d(values[:, 0], values[:, 1], bins=60, range=ranges, cmap="viridis")
    axis.set(
        xlabel="homodyne outcome, mode 0",
        ylabel="homodyne outcome, mode 1",
        title=f"correlation: sampled {correlation['sampled']:.4f}, "
        f"exact {correlation['exact']:.4f}",
    )
    _save(figure, path)


def _placeholder(path: Path, text: str) -> None:
    """A plot that says why there is nothing to plot (the workflow always declares the file)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4, 1.5))
    axis.text(0.5, 0.5, text, ha="center", va="center")
    axis.set_axis_off()
    _save(figure, path)


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
        + f", cutoff {circuit['cutoff']} ({circuit['truncation']} truncation), "
        f"{circuit['dtype']}; engine `{report['engine']}` on `{report['backend']}` "
        f"({report['backend_reason']}), batch size {report['batch_size']}"
        + (
            f" (configured {report['configured_batch_size']}, shrunk to fit memory_budget_mb)"
            if report["batch_size"] != report["configured_batch_size"]
            else ""
        )
        + f", {report['n_shards']} shard jobs. Config hash `{report['config_hash'][:16]}`.",
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
    lines += ["", f"![norm]({rel / 'norm.png'})", ""]
    lines += _convergence_markdown(report["convergence"], rel)
    lines += ["## Outputs", ""]
    if report["outputs"]:
        lines += ["| output | mode | mean | std | min | max |", "|---|---|---|---|---|---|"]
        for name, stats in report["outputs"].items():
            for mode in range(len(stats["mean"])):
                lines.append(
                    f"| {name} | {mode} | {stats['mean'][mode]:.4f} | {stats['std'][mode]:.4f} "
                    f"| {stats['min'][mode]:.4f} | {stats['max'][mode]:.4f} |"
                )
    lines += ["", f"![outputs]({rel / 'outputs.png'})", ""]
    if report["sampling"]:
        lines += _sampling_markdown(report["sampling"], rel)
    return "\n".join(lines)


def _convergence_markdown(convergence: dict, rel: Path) -> list[str]:
    """The convergence section: the measured truncation error of each output."""
    lines = ["### Convergence check", ""]
    if not convergence["outputs"]:
        return lines + [
            "Switched off (`convergence.fraction: 0`): the truncation error of this "
            "dataset was not measured.",
            "",
        ]
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
    return lines + ["", f"![convergence]({rel / 'convergence.png'})", ""]


def _sampling_markdown(sampling: dict, rel: Path) -> list[str]:
    """The sampled-outcomes section: each sampled statistic beside its exact value."""
    angles = ", ".join(f"{a:.4g}" for a in sampling["angles"])
    lines = [
        "## Sampled outcomes",
        "",
        f"{sampling['shots']} joint outcomes per state (quadrature angles per mode: {angles}). "
        "Exact values are those of the same states (each renormalised inside the cutoff, as "
        "sampled); z is the difference in standard errors of the sampled mean.",
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
    lines += [
        "",
        f"![sampling]({rel / 'sampling.png'})",
        f"![correlation]({rel / 'correlation.png'})",
        "",
    ]
    return lines


def _fmt(value, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)
