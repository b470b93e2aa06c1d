"""Engine benchmark: samples/s and peak memory of every strategy, measured side by side in one run.

Strategies, on the same QNN circuits and drawn parameters, each with one TF thread:
  sf_sequential   SF unbatched, sample by sample (batch_size None)
  sf_threads      a pool of 2 threads, each with its own SF program and engine, sample by sample
  sf_batched      SF's TF backend in batch mode
  compiled        cvgen's compiled engine
  dense_roofline  random dense gate tensors of the same count and shapes as the compiled
                  circuit's gates (per-sample ones per sample), contracted in one tf.function
Measurement sampling, on the same circuits (x on every mode, joint over the modes):
  sf_homodyne     SF batched with MeasureHomodyne on every mode: one outcome per state and run
  sf_fock         SF batched with MeasureFock on every mode: one outcome per state and run
  compiled_homodyne, compiled_fock
                  the compiled engine plus cvgen's sampler, with 1 and SAMPLING_SHOTS shots;
                  the worker also times the evolution and the sampling of the same batches
                  apart, for the cost of shots relative to one evolution
Each (circuit, strategy, shots) runs in a fresh worker process, batch sizes in increasing order,
so the process's peak resident memory after each batch size is that batch size's peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ENGINE_STRATEGIES = ("sf_sequential", "sf_threads", "sf_batched", "compiled", "dense_roofline")
SAMPLING_STRATEGIES = ("sf_homodyne", "sf_fock", "compiled_homodyne", "compiled_fock")
STRATEGIES = ENGINE_STRATEGIES + SAMPLING_STRATEGIES
CIRCUITS = ((2, 2, 10), (4, 2, 8), (3, 3, 10))  # (modes, layers, cutoff)
SAMPLING_CIRCUITS = ((2, 2, 10), (4, 2, 8))
BATCH_SIZES = {
    "sf_sequential": (1,),
    "sf_threads": (1,),
    "sf_batched": (8, 32, 64, 128),
    "compiled": (8, 32, 64, 128, 256, 512, 1024),
    "dense_roofline": (8, 32, 64, 128, 256, 512, 1024),
    "sf_homodyne": (2, 4, 8),  # ~90 MB per state and mode: larger batches need GBs
    "sf_fock": (2, 4, 8),  # as slow and memory-hungry as sf_homodyne from 4 modes on
    "compiled_homodyne": (16, 64, 256, 1024),
    "compiled_fock": (16, 64, 256, 1024),
}
SAMPLING_SHOTS = 16
THREADS = 2


def circuit_and_parameters(modes: int, layers: int, cutoff: int, samples: int):
    """The QNN circuit and drawn parameters every strategy runs on."""
    from cvgen.circuits import circuit_from_config
    from cvgen.config import validate_config
    from cvgen.params import draw_parameters

    config = validate_config(
        {
            "circuit": {"modes": modes, "layers": layers, "cutoff": cutoff},
            "samples_per_circuit": samples,
            "shard_size": samples,
        }
    )
    circuit = circuit_from_config(config)
    drawn = draw_parameters(circuit.parameter_names, config["parameters"], 1, 1, samples)
    return circuit, drawn


def runner(strategy: str, circuit, drawn, batch_size: int, shots: int = 1):
    """A function running `count` samples from `start` with the strategy."""
    from cvgen.engines import SFEngine, make_engine

    if strategy in ("sf_homodyne", "sf_fock"):
        return sf_measurement(strategy, circuit, drawn, batch_size)
    if strategy in ("compiled_homodyne", "compiled_fock"):
        return compiled_sampling(strategy, circuit, drawn, batch_size, shots)
    if strategy in ("sf_sequential", "sf_batched"):
        engine = SFEngine(circuit, batch_size)
        return lambda start, count: engine.observables(
            drawn.batch_args(start, start + count), count
        )
    if strategy == "sf_threads":
        engines = [SFEngine(circuit, 1) for _ in range(THREADS)]
        pool = ThreadPoolExecutor(THREADS)

        def threaded(start, count):
            chunks = np.array_split(np.arange(start, start + count), THREADS)
            jobs = [
                pool.submit(e.observables, drawn.batch_args(c[0], c[-1] + 1), len(c))
                for e, c in zip(engines, chunks, strict=True)
                if len(c)
            ]
            return [job.result() for job in jobs]

        return threaded
    engine = make_engine("compiled", circuit, batch_size, drawn.circuit_names)
    if strategy == "compiled":
        return lambda start, count: engine.observables(
            drawn.batch_args(start, start + count), count
        )
    return dense_roofline(engine, batch_size)


def sf_measurement(strategy: str, circuit, drawn, batch_size: int):
    """SF's batched TF backend with a measurement on every mode appended to the circuit."""
    import strawberryfields as sf
    import tensorflow as tf
    from strawberryfields import ops

    program = circuit.build_program()
    with program.context as q:
        for mode in range(circuit.modes):
            measurement = (
                ops.MeasureHomodyne(0.0) if strategy == "sf_homodyne" else ops.MeasureFock()
            )
            measurement | q[mode]
    options = {"cutoff_dim": circuit.cutoff, "dtype": getattr(tf, circuit.dtype)}
    engine = sf.Engine("tf", backend_options={**options, "batch_size": batch_size})

    def run(start, count):
        if engine.run_progs:  # SF's reset fails before the first run
            engine.reset()
        return engine.run(program, args=drawn.batch_args(start, start + count)).samples

    return run


def compiled_sampling(strategy: str, circuit, drawn, batch_size: int, shots: int):
    """The compiled engine's kets, then cvgen's sampler (x on every mode, or photon numbers)."""
    from cvgen.engines import make_engine
    from cvgen.sampling import Sampler, default_grid_range, make_spec

    engine = make_engine("compiled", circuit, batch_size, drawn.circuit_names, ("norm",))
    output = "homodyne" if strategy == "compiled_homodyne" else "fock_samples"
    angles = (0.0,) * circuit.modes
    spec = make_spec((output,), shots, angles, default_grid_range(circuit.cutoff), 1025)
    sampler = Sampler(spec, circuit.modes, circuit.cutoff, circuit.dtype, seed=1)

    def run(start, count):
        clock = time.perf_counter()
        kets, _ = engine.evaluate(drawn.batch_args(start, start + count), count)
        middle = time.perf_counter()
        outcomes = sampler.sample(kets, start)
        run.seconds["evolution"] += middle - clock
        run.seconds["sampling"] += time.perf_counter() - middle
        return outcomes

    run.seconds = {"evolution": 0.0, "sampling": 0.0}  # of the same batches, side by side
    return run


def dense_roofline(engine, batch_size: int):
    """The compiled circuit's gate count and shapes as random dense tensors, in one tf.function."""
    import tensorflow as tf

    from cvgen.compiled import _apply_dense

    circuit, dtype = engine.circuit, engine.dtype
    cutoff, modes = circuit.cutoff, circuit.modes
    rng = np.random.default_rng(0)
    tensors = []
    for step in engine.steps:
        width = 1 if step.action in ("single", "diagonal") else 2
        size = cutoff**width
        leading = 1 if step.shared else batch_size
        values = rng.normal(size=(leading, size, size)) + 1j * rng.normal(
            size=(leading, size, size)
        )
        tensors.append((tf.constant(values / size, dtype), min(step.wires), width, step.shared))
    state = tf.constant(rng.normal(size=[batch_size] + [cutoff] * modes) + 0j, dtype)

    @tf.function(autograph=False)
    def contract():
        result = state
        for matrix, mode, width, shared in tensors:
            result = _apply_dense(result, matrix, mode, width, shared)
        return tf.reduce_sum(tf.abs(result))

    return lambda start, count: contract().numpy()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_rows(command: list[str], env: dict[str, str] | None = None) -> list[dict]:
    """Run a worker process to completion; the JSON lines it printed, as dicts."""
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(
            f"benchmark worker {' '.join(command[2:])} failed (exit {done.returncode}):\n"
            + done.stderr[-3000:]
        )
    return [json.loads(line) for line in done.stdout.splitlines()]


def measure(run, batch_size: int, samples: int, min_seconds: float) -> float:
    """Steady-state samples/s: one warm-up batch, then batches for at least min_seconds."""
    run(0, batch_size)
    done, start, clock = 0, 0, time.perf_counter()
    while time.perf_counter() - clock < min_seconds or done == 0:
        start = (start + batch_size) % max(1, samples - batch_size)
        run(start, batch_size)
        done += batch_size
    return done / (time.perf_counter() - clock)


def worker(
    modes: int,
    layers: int,
    cutoff: int,
    strategy: str,
    min_seconds: float,
    max_batch: int,
    shots: int = 1,
) -> None:
    """Measure one strategy on one circuit at each of its batch sizes; print JSON lines.

    samples_per_s counts states (circuit evaluations); outcomes_per_s counts measurement
    outcomes (states x shots) for the sampling strategies.
    """
    from cvgen.engines import configure_tensorflow

    configure_tensorflow(1)
    sizes = [size for size in BATCH_SIZES[strategy] if size <= max_batch]
    if not sizes:
        return
    samples = max(4 * max(sizes), 256)
    circuit, drawn = circuit_and_parameters(modes, layers, cutoff, samples)
    for batch_size in sizes:
        run = runner(strategy, circuit, drawn, batch_size, shots)
        rate = measure(run, batch_size if batch_size > 1 else 4, samples, min_seconds)
        row = {"batch_size": batch_size, "samples_per_s": rate, "peak_rss_mb": peak_rss_mb()}
        if strategy in SAMPLING_STRATEGIES:
            row.update(shots=shots, outcomes_per_s=rate * shots)
        if hasattr(run, "seconds"):
            row["sampling_vs_evolution_time"] = run.seconds["sampling"] / run.seconds["evolution"]
        print(json.dumps(row), flush=True)


def run_all(
    output_dir: str | Path,
    min_seconds: float = 2.0,
    circuits=CIRCUITS,
    max_batch: int = 1024,
    sampling_circuits=SAMPLING_CIRCUITS,
) -> dict:
    """Run every strategy on every circuit in worker processes; write engines.{json,md,png}."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(c, s, 1) for c in circuits for s in ENGINE_STRATEGIES]
    for circuit in sampling_circuits:
        jobs += [(circuit, "sf_homodyne", 1), (circuit, "sf_fock", 1)]
        jobs += [
            (circuit, strategy, shots)
            for strategy in ("compiled_homodyne", "compiled_fock")
            for shots in (1, SAMPLING_SHOTS)
        ]
    results = []
    for (modes, layers, cutoff), strategy, shots in jobs:
        command = [
            *(sys.executable, "-m", "cvgen.benchmark", "--worker", strategy),
            *("--circuit", f"{modes},{layers},{cutoff}", "--shots", str(shots)),
            *("--min-seconds", str(min_seconds), "--max-batch", str(max_batch)),
        ]
        for row in worker_rows(command):
            row.update(modes=modes, layers=layers, cutoff=cutoff, strategy=strategy)
            results.append(row)
            print(_row_text(row), flush=True)
    summary = {"machine": _machine(), "results": results, "ratios": ratios(results)}
    (output_dir / "engines.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output_dir / "engines.md").write_text(render_markdown(summary))
    plot(results, output_dir / "engines.png")
    return summary


def _circuit(row: dict) -> tuple[int, int, int]:
    return row["modes"], row["layers"], row["cutoff"]


def _row_text(row: dict) -> str:
    shots = f" x {row['shots']} shots" if "shots" in row else ""
    return (
        f"{row['modes']} modes x {row['layers']} layers, cutoff {row['cutoff']}: "
        f"{row['strategy']:>17}{shots} batch {row['batch_size']:>5}: "
        f"{row['samples_per_s']:>10.1f} samples/s, peak {row['peak_rss_mb']:.0f} MB"
    )


def _rows(results: list[dict], circuit: tuple, strategy: str, shots: int | None = None):
    return [
        r
        for r in results
        if _circuit(r) == circuit
        and r["strategy"] == strategy
        and (shots is None or r.get("shots") == shots)
    ]


def best(
    results: list[dict],
    circuit: tuple,
    strategy: str,
    batch_size: int | None = None,
    shots: int | None = None,
):
    """The fastest measurement of a strategy on a circuit (at one batch size, shots if given)."""
    rows = [
        r
        for r in _rows(results, circuit, strategy, shots)
        if batch_size is None or r["batch_size"] == batch_size
    ]
    return max(rows, key=lambda r: r["samples_per_s"]) if rows else None


def memory_per_state_mb(results: list[dict], circuit: tuple, strategy: str, shots=None):
    """Growth of peak RSS per state in a batch, from the smallest to the largest batch size."""
    rows = sorted(_rows(results, circuit, strategy, shots), key=lambda r: r["batch_size"])
    if len(rows) < 2:
        return None
    first, last = rows[0], rows[-1]
    growth = (last["peak_rss_mb"] - first["peak_rss_mb"]) / (
        last["batch_size"] - first["batch_size"]
    )
    return max(growth, 1e-3)  # below the resolution of RSS: report the resolution


def sampling_ratios(results: list[dict], circuit: tuple) -> dict:
    """The sampling targets: memory per state against SF's, cost of shots against evolution."""
    entry = {}
    for kind in ("homodyne", "fock"):
        sf_memory = memory_per_state_mb(results, circuit, f"sf_{kind}")
        for shots in (1, SAMPLING_SHOTS):
            ours = memory_per_state_mb(results, circuit, f"compiled_{kind}", shots)
            if sf_memory and ours:
                entry[f"sf_{kind}_vs_compiled_{kind}_{shots}_shots_memory_per_state"] = (
                    sf_memory / ours
                )
            sf_best = best(results, circuit, f"sf_{kind}")
            our_best = best(results, circuit, f"compiled_{kind}", shots=shots)
            if sf_best and our_best:
                entry[f"compiled_{kind}_{shots}_shots_vs_sf_{kind}_outcomes_per_s"] = (
                    our_best["outcomes_per_s"] / sf_best["outcomes_per_s"]
                )
        sampled = best(results, circuit, f"compiled_{kind}", shots=SAMPLING_SHOTS)
        if sampled:  # at the fastest batch size
            entry[f"compiled_{kind}_{SAMPLING_SHOTS}_shots_time_vs_one_evolution"] = sampled[
                "sampling_vs_evolution_time"
            ]
    return entry


def ratios(results: list[dict]) -> dict:
    """The issue's targets as ratios measured in this run."""
    out = {}
    for circuit in {_circuit(r) for r in results}:
        key = "{}m{}l_c{}".format(*circuit)
        compiled, batched = best(results, circuit, "compiled"), best(results, circuit, "sf_batched")
        sequential = best(results, circuit, "sf_sequential")
        entry = {}
        if compiled and batched:
            entry["compiled_best_vs_sf_batched_best"] = (
                compiled["samples_per_s"] / batched["samples_per_s"]
            )
        if batched and sequential:
            entry["sf_batched_best_vs_sf_sequential"] = (
                batched["samples_per_s"] / sequential["samples_per_s"]
            )
        for batch_size in (64, 256):
            c, d = (
                best(results, circuit, "compiled", batch_size),
                best(results, circuit, "dense_roofline", batch_size),
            )
            if c and d:
                entry[f"compiled_vs_dense_roofline_batch_{batch_size}"] = (
                    c["samples_per_s"] / d["samples_per_s"]
                )
        entry.update(sampling_ratios(results, circuit))
        out[key] = entry
    return out


def _machine() -> str:
    import os
    import platform

    cores = os.cpu_count()
    return f"{platform.machine()}, {cores} cores, one TF thread per worker process"


def render_markdown(summary: dict) -> str:
    """Tables of samples/s per strategy and batch size, and the target ratios."""
    results = summary["results"]
    lines = [f"# Engine benchmark\n\nMachine: {summary['machine']}.\n"]
    for circuit in dict.fromkeys(_circuit(r) for r in results):
        lines += [
            f"## {circuit[0]} modes, {circuit[1]} layers, cutoff {circuit[2]}\n",
            "| strategy | shots | batch size | samples/s | outcomes/s | peak RSS MB |",
            "|---|---|---|---|---|---|",
        ]
        for r in results:
            if _circuit(r) == circuit:
                rate, peak = r["samples_per_s"], r["peak_rss_mb"]
                outcomes = f"{r['outcomes_per_s']:.1f}" if "outcomes_per_s" in r else "-"
                lines.append(
                    f"| {r['strategy']} | {r.get('shots', '-')} | {r['batch_size']} | {rate:.1f} "
                    f"| {outcomes} | {peak:.0f} |"
                )
        lines.append("")
    lines += [
        "samples/s counts states (circuit evaluations); outcomes/s counts joint measurement "
        "outcomes over all modes (states x shots). SF's measurements give one outcome per state "
        "and run.\n"
    ]
    lines += ["## Ratios (measured in this run)\n", "| circuit | ratio | value |", "|---|---|---|"]
    for circuit, entry in summary["ratios"].items():
        lines += [f"| {circuit} | {name} | {value:.2f}x |" for name, value in entry.items()]
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path) -> None:
    """samples/s against batch size, one panel per circuit, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    circuits = list(dict.fromkeys(_circuit(r) for r in results))
    figure, axes = plt.subplots(1, len(circuits), figsize=(5 * len(circuits), 4), squeeze=False)
    for axis, circuit in zip(axes[0], circuits, strict=True):
        for strategy in ENGINE_STRATEGIES:
            rows = [r for r in results if _circuit(r) == circuit and r["strategy"] == strategy]
            if rows:
                axis.plot(
                    [r["batch_size"] for r in rows],
                    [r["samples_per_s"] for r in rows],
                    "o-",
                    label=strategy,
                )
        axis.set(
            xscale="log",
            yscale="log",
            xlabel="batch size",
            ylabel="samples / s",
            title="{} modes, {} layers, cutoff {}".format(*circuit),
        )
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    """Command line: the whole benchmark, or (internally) one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/benchmarks", help="folder for engines.*")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--max-batch", type=int, default=1024, help="largest batch size")
    parser.add_argument("--worker", choices=STRATEGIES, help=argparse.SUPPRESS)
    parser.add_argument("--circuit", help=argparse.SUPPRESS)
    parser.add_argument("--shots", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        modes, layers, cutoff = map(int, args.circuit.split(","))
        worker(modes, layers, cutoff, args.worker, args.min_seconds, args.max_batch, args.shots)
    else:
        run_all(args.output, args.min_seconds, max_batch=args.max_batch)


if __name__ == "__main__":
    main()
