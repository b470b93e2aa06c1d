"""Loss benchmark: the QNN with loss after every layer, cvgen's density-matrix and trajectory paths
against SF's TF backend in mixed mode, samples/s and peak memory per sample, side by side.

The circuit is the QNN template with `circuit.loss.per_layer: T` (LossChannel(T) on every mode
after each layer), on the same drawn parameters as the engine benchmark (cvgen.bench.problems).
Strategies, each worker on one thread (TF and numpy's BLAS alike, cvgen.bench.measure):
  sf_mixed      SF's TF backend batched (`batch_size` B); the LossChannels make SF run density
                matrices. The same outputs are computed from its rho (as numpy) by cvgen's
                density_observables, as the SF engine computes them from its kets.
  density       cvgen's exact density matrices (cvgen.engines.noisy.DensityEngine, numpy),
                per-mode truncation and total truncation at a comparable number of states
  trajectories  cvgen's quantum-jump trajectories (TrajectoryEngine, numpy), R per sample
                (TRAJECTORIES), outputs the means over them with standard errors; per-mode
                truncation and total truncation at a comparable number of states
  lossless      the compiled engine on the same circuit without its LossChannels: one evolution,
                what the cost of R independent trajectories is compared with
All run through `make_engine`, as a job does. Each (circuit, strategy, truncation, R) runs in a
fresh worker process, batch sizes in increasing order, so the peak resident memory after each
batch size is that batch size's; memory per sample is its growth per extra sample from the
smallest to the largest batch size. A batch size whose measurement would take longer than
--cap-seconds (extrapolated from the previous one) is skipped and reported as such.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import time
from pathlib import Path

from cvgen.bench.measure import machine, measure, peak_rss_mb, single_thread
from cvgen.bench.problems import SEED, qnn_problem

__all__ = ["comparable_total_cutoff", "lossy_problem", "main", "run_all", "worker"]

CIRCUITS = ((2, 2, 10), (4, 2, 8))  # (modes, layers, cutoff)
TRANSMISSIVITY = 0.9
TRAJECTORIES = (1, 16, 64)  # 64: noise.trajectories' default, the expectation outputs' setting
STRATEGIES = ("sf_mixed", "density", "trajectories", "lossless")
OUTPUTS = ("quad_x", "quad_p", "mean_photon", "fock_probs", "norm")  # COMPUTED_OUTPUTS
BATCH_SIZES = {
    "sf_mixed": (2, 4, 16, 64, 128),
    "density": (1, 2, 4, 16, 64, 256),
    "trajectories": (1, 4, 16, 64, 256, 1024),  # samples; each holds R kets
    "lossless": (1, 4, 16, 64, 256, 1024),
}
# Batch sizes are capped so that their states stay within this many bytes: SF's rho (it holds
# several copies), cvgen's density matrices and kets times their state copies.
SF_STATE_BYTES = 300 * 2**20  # 4 modes, cutoff 8: batch 2 only (SF peaks near 11 GB)
STATE_BYTES = 2 * 2**30
KET_COPIES = 8  # as cvgen.memory's STATE_COPIES["compiled"]
DENSITY_COPIES = 6  # as cvgen.noise.DENSITY_STATE_COPIES
TARGET_SPEEDUP, TARGET_MEMORY = 100.0, 10.0  # issue 15: trajectory path against SF


def comparable_total_cutoff(modes: int, cutoff: int) -> int:
    """The total-photon cutoff N whose C(N + M - 1, M) states are closest to D^M."""
    states = cutoff**modes
    candidates = range(cutoff, 4 * cutoff)
    return min(candidates, key=lambda n: abs(math.comb(n + modes - 1, modes) - states))


def lossy_problem(
    modes: int,
    layers: int,
    cutoff: int,
    samples: int,
    truncation: str = "per_mode",
    transmissivity: float = TRANSMISSIVITY,
):
    """(lossy circuit, lossless circuit, drawn parameters): the benchmark QNN with and without
    LossChannel(T) on every mode after each layer, on the same parameter values."""
    from cvgen.circuits import compile_circuit, qnn_gates

    lossless, drawn = qnn_problem(modes, layers, cutoff, samples, truncation=truncation)
    gates = tuple(qnn_gates(modes, layers, per_layer=transmissivity))
    lossy = dataclasses.replace(
        lossless,
        gates=gates,
        op_names=tuple(dict.fromkeys(name for name, _, _ in gates)),
        ops=None,
    )
    return compile_circuit(lossy), lossless, drawn


def batch_sizes(
    strategy: str, modes: int, cutoff: int, truncation: str, repeats: int, max_batch: int
) -> list[int]:
    """The strategy's batch sizes (samples) whose states fit the byte caps above."""
    from cvgen.sizes import basis_size

    states = basis_size(modes, cutoff, truncation)
    if strategy == "sf_mixed":
        per_sample, cap = 8 * states**2, SF_STATE_BYTES
    elif strategy == "density":
        per_sample, cap = DENSITY_COPIES * 8 * states**2, STATE_BYTES
    else:
        per_sample, cap = KET_COPIES * 8 * states * repeats, STATE_BYTES
    sizes = [b for b in BATCH_SIZES[strategy] if b <= max_batch and b * per_sample <= cap]
    return sizes or [min(BATCH_SIZES[strategy])]


def runner(strategy: str, lossy, lossless, drawn, batch_size: int, repeats: int):
    """A function running `count` samples from `start` with the strategy."""
    import numpy as np

    from cvgen.engines import make_engine
    from cvgen.noise import NoisePlan

    shared = drawn.circuit_names
    if strategy == "sf_mixed":
        return sf_mixed(lossy, drawn, batch_size)
    if strategy == "lossless":
        engine = make_engine("compiled", lossless, batch_size, shared, OUTPUTS)
        return lambda start, count: engine.observables(
            drawn.batch_args(start, start + count), count
        )
    method = "density_matrix" if strategy == "density" else "trajectories"
    plan = NoisePlan(True, method, "benchmark", repeats, 1.0, 0.0)
    engine = make_engine("compiled", lossy, batch_size, shared, OUTPUTS, noise=plan, seed=SEED)

    def run(start, count):
        args = drawn.batch_args(start, start + count)
        return engine.observables(args, count, np.arange(start, start + count))

    return run


def sf_mixed(circuit, drawn, batch_size: int):
    """SF's batched TF backend on the lossy program (mixed mode), the outputs from its rho."""
    import numpy as np
    import strawberryfields as sf

    from cvgen.engines.backend import NUMPY, tensorflow
    from cvgen.engines.noisy import density_observables

    tf = tensorflow(1).tf
    program = circuit.build_program()
    options = {"cutoff_dim": circuit.cutoff, "dtype": getattr(tf, circuit.dtype)}
    engine = sf.Engine("tf", backend_options={**options, "batch_size": batch_size})
    modes, cutoff = circuit.modes, circuit.cutoff
    # SF's rho [B, k0, b0, k1, b1, ...] -> [k0, k1, ..., b0, b1, ..., B] (density_observables')
    order = [*range(1, 2 * modes + 1, 2), *range(2, 2 * modes + 1, 2), 0]

    def run(start, count):
        if engine.run_progs:  # SF's reset fails before the first run
            engine.reset()
        state = engine.run(program, args=drawn.batch_args(start, start + count)).state
        # on numpy: TF's strided slices take at most 8 dimensions, rho of 4 modes has 9
        rho = np.transpose(state.dm().numpy(), order)
        return density_observables(NUMPY, rho, modes, cutoff, OUTPUTS)

    return run


def worker(
    modes: int,
    layers: int,
    cutoff: int,
    strategy: str,
    truncation: str,
    repeats: int,
    min_seconds: float,
    max_batch: int,
    cap_seconds: float,
) -> None:
    """Measure one strategy at each of its batch sizes; print one JSON line per batch size as it
    is measured (a worker stopped by its time limit keeps the rows it printed)."""
    from cvgen.sizes import basis_size

    single_thread()
    if strategy == "sf_mixed":
        from cvgen.engines import configure_tensorflow

        configure_tensorflow(1)
    sizes = batch_sizes(strategy, modes, cutoff, truncation, repeats, max_batch)
    samples = max(4 * max(sizes), 256)
    lossy, lossless, drawn = lossy_problem(modes, layers, cutoff, samples, truncation)
    base = peak_rss_mb()
    previous = None  # (batch size, seconds its measurement took)
    for batch_size in sizes:
        if previous and previous[1] * batch_size / previous[0] > cap_seconds:
            skipped = {"batch_size": batch_size, "skipped": f"over --cap-seconds {cap_seconds}"}
            print(json.dumps(skipped), flush=True)
            break
        run = runner(strategy, lossy, lossless, drawn, batch_size, repeats)
        clock = time.perf_counter()
        rate = measure(run, batch_size, samples, min_seconds)
        previous = (batch_size, time.perf_counter() - clock)
        row = {
            "batch_size": batch_size,
            "samples_per_s": rate,
            "peak_rss_mb": peak_rss_mb(),
            "base_rss_mb": base,
            "states": basis_size(modes, cutoff, truncation),
            "measure_s": previous[1],
        }
        print(json.dumps(row), flush=True)


def worker_rows(command: list[str], timeout_s: float) -> list[dict]:
    """Run a worker process for at most timeout_s; the JSON lines it printed, as dicts (those
    printed before the limit, plus a "timed out" row, if it ran out of time)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as stopped:
        out = stopped.stdout or ""
        out = out.decode() if isinstance(out, bytes) else out
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return rows + [{"skipped": f"worker stopped after {timeout_s:.0f} s"}]
    if done.returncode:
        raise RuntimeError(
            f"benchmark worker {' '.join(command[2:])} failed (exit {done.returncode}):\n"
            + done.stderr[-3000:]
        )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def jobs(circuits, strategies, trajectories) -> list[tuple]:
    """(circuit, strategy, truncation, cutoff, repeats) of every worker, in run order."""
    out = []
    for modes, layers, cutoff in circuits:
        total = comparable_total_cutoff(modes, cutoff)
        for strategy in strategies:
            if strategy == "sf_mixed":
                out.append(((modes, layers, cutoff), strategy, "per_mode", cutoff, 0))
                continue
            for truncation, n in (("per_mode", cutoff), ("total", total)):
                for repeats in trajectories if strategy == "trajectories" else (0,):
                    out.append(((modes, layers, cutoff), strategy, truncation, n, repeats))
    return out


def run_all(
    output_dir: str | Path,
    min_seconds: float = 2.0,
    circuits=CIRCUITS,
    strategies=STRATEGIES,
    trajectories=TRAJECTORIES,
    max_batch: int = 1024,
    cap_seconds: float = 90.0,
) -> dict:
    """Run every worker; print and write noise.{json,md}; return the summary."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results, skipped = [], []
    for (modes, layers, cutoff), strategy, truncation, n, repeats in jobs(
        circuits, strategies, trajectories
    ):
        command = [
            *(sys.executable, "-m", "cvgen.bench.noise", "--worker", strategy),
            *("--circuit", f"{modes},{layers},{n}", "--truncation", truncation),
            *("--repeats", str(repeats), "--min-seconds", str(min_seconds)),
            *("--max-batch", str(max_batch), "--cap-seconds", str(cap_seconds)),
        ]
        labels = {
            "modes": modes,
            "layers": layers,
            "circuit_cutoff": cutoff,
            "cutoff": n,
            "strategy": strategy,
            "truncation": truncation,
            "trajectories": repeats,
        }
        for row in worker_rows(command, 6 * cap_seconds + 120):
            row.update(labels)
            if "skipped" in row:
                skipped.append(row)
                print(
                    f"{label(row)}: skipped batch {row.get('batch_size', '-')}: {row['skipped']}",
                    flush=True,
                )
                continue
            results.append(row)
            print(row_text(row), flush=True)
    summary = {
        "machine": machine(),
        "transmissivity_per_layer": TRANSMISSIVITY,
        "outputs": list(OUTPUTS),
        "results": results,
        "skipped": skipped,
        "table": table(results),
        "ratios": ratios(results),
    }
    for key, entry in summary["ratios"].items():
        print("\n".join(f"{key}: {name} = {value:.3g}" for name, value in entry.items()))
    print(render_markdown(summary), flush=True)
    (output_dir / "noise.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output_dir / "noise.md").write_text(render_markdown(summary))
    return summary


def label(row: dict) -> str:
    """The path a row measures, e.g. `trajectories x64, total N=16`."""
    name = row["strategy"]
    if name == "trajectories":
        name += f" x{row['trajectories']}"
    if row["truncation"] == "total":
        name += f", total N={row['cutoff']}"
    return name


def circuit_key(row: dict) -> str:
    """The circuit of a row, e.g. 4m2l_c8 (its per-mode cutoff)."""
    return f"{row['modes']}m{row['layers']}l_c{row['circuit_cutoff']}"


def row_text(row: dict) -> str:
    """One result row as a progress line."""
    return (
        f"{circuit_key(row)} {label(row):>32} batch {row['batch_size']:>5}: "
        f"{row['samples_per_s']:>10.2f} samples/s, peak {row['peak_rss_mb']:.0f} MB "
        f"({row['measure_s']:.1f} s)"
    )


def memory_per_sample_mb(rows: list[dict]) -> tuple[float | None, str]:
    """Growth of peak RSS per extra sample, smallest to largest batch size (or, with one batch
    size, its growth over the worker's RSS before the first batch, per sample)."""
    rows = sorted(rows, key=lambda r: r["batch_size"])
    if not rows:
        return None, "-"
    first, last = rows[0], rows[-1]
    if len(rows) == 1:
        return max(last["peak_rss_mb"] - last["base_rss_mb"], 1e-3) / last["batch_size"], (
            f"b{last['batch_size']} over start"
        )
    growth = (last["peak_rss_mb"] - first["peak_rss_mb"]) / (
        last["batch_size"] - first["batch_size"]
    )
    # below the resolution of RSS: report the resolution
    return max(growth, 1e-3), f"b{first['batch_size']}-{last['batch_size']}"


def table(results: list[dict]) -> list[dict]:
    """One entry per (circuit, path): best samples/s (its batch size), memory per sample."""
    groups: dict[tuple, list[dict]] = {}
    for row in results:
        groups.setdefault((circuit_key(row), label(row)), []).append(row)
    entries = []
    for (circuit, name), rows in groups.items():
        best = max(rows, key=lambda r: r["samples_per_s"])
        memory, span = memory_per_sample_mb(rows)
        entries.append(
            {
                "circuit": circuit,
                "path": name,
                "strategy": best["strategy"],
                "truncation": best["truncation"],
                "trajectories": best["trajectories"],
                "states": best["states"],
                "samples_per_s": best["samples_per_s"],
                "batch_size": best["batch_size"],
                "peak_rss_mb": best["peak_rss_mb"],
                "memory_per_sample_mb": memory,
                "memory_span": span,
            }
        )
    return entries


def ratios(results: list[dict]) -> dict:
    """The issue's targets as ratios measured in this run, per circuit."""
    entries = table(results)
    out = {}
    for circuit in dict.fromkeys(e["circuit"] for e in entries):
        mine = {e["path"]: e for e in entries if e["circuit"] == circuit}
        entry = {}
        sf = mine.get("sf_mixed")
        for name, e in mine.items():
            if e["strategy"] not in ("density", "trajectories"):
                continue
            tag = name.replace(" ", "").replace(",", "_").replace("=", "")
            if sf:
                entry[f"{tag}_vs_sf_mixed_samples_per_s"] = e["samples_per_s"] / sf["samples_per_s"]
                if sf["memory_per_sample_mb"] and e["memory_per_sample_mb"]:
                    entry[f"sf_mixed_vs_{tag}_memory_per_sample"] = (
                        sf["memory_per_sample_mb"] / e["memory_per_sample_mb"]
                    )
            lossless = next(
                (
                    o
                    for o in entries
                    if o["circuit"] == circuit
                    and o["strategy"] == "lossless"
                    and o["truncation"] == e["truncation"]
                ),
                None,
            )
            if lossless:  # the cost of this path against one evolution, per sample
                entry[f"{tag}_time_vs_lossless"] = lossless["samples_per_s"] / e["samples_per_s"]
        out[circuit] = entry
    return out


def number(value: float) -> str:
    """A rate or ratio for the tables: thousands separated, 3 significant digits below 100."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def render_markdown(summary: dict) -> str:
    """The table (best batch size of each path), the ratios against the targets, every row."""
    lines = [
        "# Loss benchmark\n",
        f"QNN, LossChannel({summary['transmissivity_per_layer']}) on every mode after each layer, "
        f"complex64, outputs {', '.join(summary['outputs'])}. Machine: {summary['machine']}.\n",
        "| circuit | path | states | samples/s (batch) | memory per sample | its peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for e in summary["table"]:
        memory = e["memory_per_sample_mb"]
        memory = f"{memory:.3g} MB ({e['memory_span']})" if memory else "-"
        lines.append(
            f"| {e['circuit']} | {e['path']} | {e['states']:,} | {number(e['samples_per_s'])} "
            f"(b{e['batch_size']}) | {memory} | {e['peak_rss_mb']:.0f} MB |"
        )
    lines += [
        "",
        "Memory per sample: growth of the worker's peak RSS per extra sample between its "
        "smallest and largest batch size. trajectories xR: R independent trajectories per "
        "sample, outputs their means and standard errors (64 is noise.trajectories' default).\n",
        "## Ratios (measured in this run)\n",
        "| circuit | ratio | value | target |",
        "|---|---|---|---|",
    ]
    for circuit, entry in summary["ratios"].items():
        for name, value in entry.items():
            target = ""
            if name.startswith("trajectories") and name.endswith("vs_sf_mixed_samples_per_s"):
                met = "met" if value >= TARGET_SPEEDUP else "missed"
                target = f">= {TARGET_SPEEDUP:.0f}x: {met}"
            elif name.startswith("sf_mixed_vs_trajectories"):
                met = "met" if value >= TARGET_MEMORY else "missed"
                target = f">= {TARGET_MEMORY:.0f}x: {met}"
            elif name.startswith("density") and name.endswith("vs_sf_mixed_samples_per_s"):
                target = f"> 1x: {'met' if value > 1 else 'missed'}"
            lines.append(f"| {circuit} | {name} | {number(value)}x | {target} |")
    if summary["skipped"]:
        lines += ["", "Not measured:", ""]
        lines += [
            f"- {circuit_key(r)} {label(r)} batch {r.get('batch_size', '-')}: {r['skipped']}"
            for r in summary["skipped"]
        ]
    lines += ["", "## Every measurement\n", "| circuit | path | batch | samples/s | peak RSS MB |"]
    lines.append("|---|---|---|---|---|")
    lines += [
        f"| {circuit_key(r)} | {label(r)} | {r['batch_size']} | {number(r['samples_per_s'])} "
        f"| {r['peak_rss_mb']:.0f} |"
        for r in summary["results"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Command line: the whole benchmark (or some circuits and strategies), or one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/benchmarks", help="folder for noise.*")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--max-batch", type=int, default=1024, help="largest batch size")
    parser.add_argument(
        "--cap-seconds",
        type=float,
        default=90.0,
        help="skip a batch size whose measurement would take longer (default %(default)s)",
    )
    parser.add_argument(
        "--circuits",
        default=",".join("x".join(map(str, c)) for c in CIRCUITS),
        help="modes x layers x cutoff, comma separated (default %(default)s)",
    )
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma separated")
    parser.add_argument(
        "--trajectories",
        default=",".join(map(str, TRAJECTORIES)),
        help="trajectories per sample, comma separated (default %(default)s)",
    )
    parser.add_argument("--worker", choices=STRATEGIES, help=argparse.SUPPRESS)
    parser.add_argument("--circuit", help=argparse.SUPPRESS)
    parser.add_argument("--truncation", default="per_mode", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        modes, layers, cutoff = map(int, args.circuit.split(","))
        worker(
            modes,
            layers,
            cutoff,
            args.worker,
            args.truncation,
            args.repeats,
            args.min_seconds,
            args.max_batch,
            args.cap_seconds,
        )
        return
    strategies = tuple(args.strategies.split(","))
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"unknown strategies {sorted(unknown)}; choose from {', '.join(STRATEGIES)}")
    circuits = tuple(tuple(map(int, c.split("x"))) for c in args.circuits.split(","))
    trajectories = tuple(int(r) for r in args.trajectories.split(","))
    run_all(
        args.output,
        args.min_seconds,
        circuits,
        strategies,
        trajectories,
        args.max_batch,
        args.cap_seconds,
    )


if __name__ == "__main__":
    main()
