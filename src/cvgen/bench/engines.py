"""Engine benchmark: samples/s and peak memory of every strategy, measured side by side in one run.

Strategies, on the same QNN circuits and drawn parameters (cvgen.bench.problems), each worker on
one thread (TF and numpy's BLAS alike, cvgen.bench.measure):
  sf_sequential   SF unbatched, sample by sample (batch_size None)
  sf_threads      a pool of 2 threads, each with its own SF engine, sample by sample
  sf_batched      SF's TF backend in batch mode
  compiled_numpy  cvgen's compiled engine on the numpy backend
  compiled_tf     cvgen's compiled engine on the TensorFlow backend
  dense_roofline  random dense gate tensors of the same count and shapes as the compiled
                  circuit's gates (per-sample ones per sample), contracted in one tf.function
The compiled_numpy worker also measures the structured roofline at each batch size: the
multiply-adds per sample the structure-aware kernels must do (structured_work) at the machine's
complex64 matrix-product rate, measured in that worker on the products those kernels make.
Measurement sampling, on the same circuits (x on every mode, joint over the modes):
  sf_homodyne     SF batched with MeasureHomodyne on every mode: one outcome per state and run
  sf_fock         SF batched with MeasureFock on every mode: one outcome per state and run
  compiled_homodyne, compiled_fock
                  the compiled engine's kets (TF backend) and cvgen's sampler, with 1 and
                  SAMPLING_SHOTS shots; the worker also times the evolution and the sampling of
                  the same batches apart, for the cost of shots relative to one evolution
Each (circuit, strategy, shots) runs in a fresh worker process, batch sizes in increasing order,
so the process's peak resident memory after each batch size is that batch size's peak.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cvgen.bench.measure import machine, measure, peak_rss_mb, single_thread, worker_rows
from cvgen.bench.problems import qnn_problem

COMPILED = {"compiled_numpy": "numpy", "compiled_tf": "tensorflow"}  # strategy -> backend
ENGINE_STRATEGIES = ("sf_sequential", "sf_threads", "sf_batched", *COMPILED, "dense_roofline")
SAMPLING_STRATEGIES = ("sf_homodyne", "sf_fock", "compiled_homodyne", "compiled_fock")
STRATEGIES = ENGINE_STRATEGIES + SAMPLING_STRATEGIES
CIRCUITS = ((2, 2, 10), (4, 2, 8), (3, 3, 10))  # (modes, layers, cutoff)
SAMPLING_CIRCUITS = ((2, 2, 10), (4, 2, 8))
COMPILED_BATCHES = (8, 32, 64, 128, 256, 512, 1024)
BATCH_SIZES = {
    "sf_sequential": (1,),
    "sf_threads": (1,),
    "sf_batched": (8, 32, 64, 128),
    "compiled_numpy": COMPILED_BATCHES,
    "compiled_tf": COMPILED_BATCHES,
    "dense_roofline": COMPILED_BATCHES,
    "sf_homodyne": (2, 4, 8),  # ~90 MB per state and mode: larger batches need GBs
    "sf_fock": (2, 4, 8),  # as slow and memory-hungry as sf_homodyne from 4 modes on
    "compiled_homodyne": (16, 64, 256, 1024),
    "compiled_fock": (16, 64, 256, 1024),
}
SAMPLING_SHOTS = 16
THREADS = 2


def runner(strategy: str, circuit, drawn, batch_size: int, shots: int = 1):
    """A function running `count` samples from `start` with the strategy."""
    from cvgen.engines import make_engine

    if strategy in ("sf_homodyne", "sf_fock"):
        return sf_measurement(strategy, circuit, drawn, batch_size)
    if strategy in ("compiled_homodyne", "compiled_fock"):
        return compiled_sampling(strategy, circuit, drawn, batch_size, shots)
    if strategy == "sf_threads":
        return sf_threads(circuit, drawn)
    if strategy == "dense_roofline":
        return dense_roofline(circuit, drawn, batch_size)
    if strategy in COMPILED:
        engine = make_engine(
            "compiled", circuit, batch_size, drawn.circuit_names, backend=COMPILED[strategy]
        )
    else:
        engine = make_engine("sf", circuit, batch_size)
    return lambda start, count: engine.observables(drawn.batch_args(start, start + count), count)


def sf_threads(circuit, drawn):
    """THREADS SF engines in a thread pool, each running its share of a batch sample by sample."""
    from cvgen.engines import make_engine

    engines = [make_engine("sf", circuit, 1) for _ in range(THREADS)]
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
    """The compiled engine's kets (TF backend, as the sampler takes), then cvgen's sampler (x on
    every mode, or photon numbers)."""
    from cvgen.engines import make_engine
    from cvgen.sampling import Sampler, default_grid_range, make_spec

    engine = make_engine(
        "compiled", circuit, batch_size, drawn.circuit_names, ("norm",), backend="tensorflow"
    )
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


def dense_roofline(circuit, drawn, batch_size: int):
    """The compiled circuit's gate count and shapes as random dense tensors, in one tf.function:
    single-mode and diagonal gates as [D, D], two-mode ones as [D^2, D^2] matrices."""
    from cvgen.engines import configure_tensorflow

    tf = configure_tensorflow(1)
    steps = circuit_steps(circuit, drawn)
    cutoff, modes, dtype = circuit.cutoff, circuit.modes, circuit.dtype
    rng = np.random.default_rng(0)
    tensors = []
    for step in steps:
        width = 1 if step.action in ("single", "diagonal") else 2
        size = cutoff**width
        shape = (1 if step.shared else batch_size, size, size)
        values = (rng.normal(size=shape) + 1j * rng.normal(size=shape)) / size
        tensors.append((tf.constant(values, dtype), min(step.wires), width))
    state = tf.constant(rng.normal(size=[batch_size] + [cutoff] * modes) + 0j, dtype)

    def apply(state, matrix, mode: int, width: int):
        """[K, D^w, D^w] on `width` neighbouring modes from `mode`, as one batched product (one
        plain product when the gate is shared and its modes are last)."""
        shape = state.shape
        size = cutoff**width
        if mode + width < modes:
            view = tf.reshape(state, [shape[0], cutoff**mode, size, -1])
            return tf.reshape(matrix[:, None] @ view, shape)
        if matrix.shape[0] == 1:
            return tf.reshape(tf.reshape(state, [-1, size]) @ tf.transpose(matrix[0]), shape)
        rows = tf.reshape(state, [shape[0], -1, size])
        return tf.reshape(rows @ tf.transpose(matrix, [0, 2, 1]), shape)

    @tf.function(autograph=False)
    def contract():
        result = state
        for matrix, mode, width in tensors:
            result = apply(result, matrix, mode, width)
        return tf.reduce_sum(tf.abs(result))

    return lambda start, count: contract().numpy()


def matmul_rate(modes: int, cutoff: int, batch_size: int, min_seconds: float) -> float:
    """This process's complex64 multiply-adds/s on the matrix products the structure-aware
    kernels make on a batch of shared gates: a single-mode gate [D, D] on the state as
    [D, B D^(M-1)] columns, and a passive gate's 2D-1 sector blocks [2D-1, D, D] on
    [2D-1, D, B D^(M-2)]. numpy, on however many threads this process allows (one here)."""
    rng = np.random.default_rng(0)

    def random(*shape):
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)

    sectors = 2 * cutoff - 1
    columns = batch_size * cutoff ** (modes - 1)
    single, state = random(cutoff, cutoff), random(cutoff, columns)
    blocks = random(sectors, cutoff, cutoff)
    pairs = random(sectors, cutoff, batch_size * cutoff ** max(0, modes - 2))
    work = cutoff * cutoff * columns + blocks.size * pairs.shape[-1]

    def products(start, count):
        return single @ state, blocks @ pairs

    return work * measure(products, 1, 1, min_seconds)


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
    outcomes (states x shots) for the sampling strategies. compiled_numpy rows also hold the
    structured roofline at their batch size.
    """
    single_thread()
    if strategy != "compiled_numpy":  # SF and the sampler import TF themselves
        from cvgen.engines import configure_tensorflow

        configure_tensorflow(1)
    sizes = [size for size in BATCH_SIZES[strategy] if size <= max_batch]
    if not sizes:
        return
    samples = max(4 * max(sizes), 256)
    circuit, drawn = qnn_problem(modes, layers, cutoff, samples)
    rows = []
    for batch_size in sizes:
        run = runner(strategy, circuit, drawn, batch_size, shots)
        rate = measure(run, batch_size if batch_size > 1 else 4, samples, min_seconds)
        row = {"batch_size": batch_size, "samples_per_s": rate, "peak_rss_mb": peak_rss_mb()}
        if strategy in SAMPLING_STRATEGIES:
            row.update(shots=shots, outcomes_per_s=rate * shots)
        if hasattr(run, "seconds"):
            row["sampling_vs_evolution_time"] = run.seconds["sampling"] / run.seconds["evolution"]
        rows.append(row)
    for row in rows:  # after every peak RSS is taken: the rate's operands would inflate them
        if strategy == "compiled_numpy":
            row.update(structured_roofline(circuit, drawn, row["batch_size"], min_seconds))
        print(json.dumps(row), flush=True)


def circuit_steps(circuit, drawn) -> list:
    """One step per gate of the circuit's op list, as written: the rooflines count the
    circuit's gates, not what the engine makes of them (it fuses diagonal gates into their
    neighbours and starts from a product state, which does less work)."""
    from cvgen.engines.compiled import compile_steps

    return compile_steps(circuit.ops, set(drawn.circuit_names))


def structured_roofline(circuit, drawn, batch_size: int, min_seconds: float) -> dict:
    """Multiply-adds per sample of the structure-aware kernels, the measured matrix-product rate,
    and the samples/s an engine doing only that work at that rate would reach."""
    from cvgen.engines.per_mode import structured_work

    work = structured_work(circuit_steps(circuit, drawn), circuit.modes, circuit.cutoff)
    rate = matmul_rate(circuit.modes, circuit.cutoff, batch_size, min_seconds)
    return {
        "multiply_adds_per_sample": work,
        "multiply_adds_per_s": rate,
        "structured_roofline_samples_per_s": rate / work,
    }


def run_all(
    output_dir: str | Path,
    min_seconds: float = 2.0,
    circuits=CIRCUITS,
    max_batch: int = 1024,
    sampling_circuits=SAMPLING_CIRCUITS,
    strategies=STRATEGIES,
) -> dict:
    """Run the strategies on every circuit in worker processes; write engines.{json,md,png}."""
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
        if strategy not in strategies:
            continue
        command = [
            *(sys.executable, "-m", "cvgen.bench.engines", "--worker", strategy),
            *("--circuit", f"{modes},{layers},{cutoff}", "--shots", str(shots)),
            *("--min-seconds", str(min_seconds), "--max-batch", str(max_batch)),
        ]
        for row in worker_rows(command):
            row.update(modes=modes, layers=layers, cutoff=cutoff, strategy=strategy)
            results.append(row)
            print(row_text(row), flush=True)
    summary = {"machine": machine(), "results": results, "ratios": ratios(results)}
    for circuit, entry in summary["ratios"].items():
        print(ratios_text(circuit, entry), flush=True)
    (output_dir / "engines.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output_dir / "engines.md").write_text(render_markdown(summary))
    plot(results, output_dir / "engines.png")
    return summary


def circuit_of(row: dict) -> tuple[int, int, int]:
    """(modes, layers, cutoff) of a result row."""
    return row["modes"], row["layers"], row["cutoff"]


def circuit_key(circuit: tuple[int, int, int]) -> str:
    """The ratios' key of a circuit, e.g. 4m2l_c8."""
    return "{}m{}l_c{}".format(*circuit)


def row_text(row: dict) -> str:
    """One result row as a progress line."""
    shots = f" x {row['shots']} shots" if "shots" in row else ""
    roofline = (
        f", structured roofline {row['structured_roofline_samples_per_s']:.1f} samples/s "
        f"({row['multiply_adds_per_s'] / 1e9:.2f} G multiply-adds/s)"
        if "structured_roofline_samples_per_s" in row
        else ""
    )
    return (
        f"{row['modes']} modes x {row['layers']} layers, cutoff {row['cutoff']}: "
        f"{row['strategy']:>17}{shots} batch {row['batch_size']:>5}: "
        f"{row['samples_per_s']:>10.1f} samples/s, peak {row['peak_rss_mb']:.0f} MB{roofline}"
    )


def ratios_text(circuit: str, entry: dict) -> str:
    """The ratios of one circuit, one per line."""
    return "\n".join(f"{circuit}: {name} = {value:.2f}" for name, value in entry.items())


def rows_of(results: list[dict], circuit: tuple, strategies, shots: int | None = None):
    """The rows of one circuit and any of `strategies` (and `shots`, if given)."""
    strategies = (strategies,) if isinstance(strategies, str) else tuple(strategies)
    return [
        r
        for r in results
        if circuit_of(r) == circuit
        and r["strategy"] in strategies
        and (shots is None or r.get("shots") == shots)
    ]


def best(
    results: list[dict],
    circuit: tuple,
    strategies,
    batch_size: int | None = None,
    shots: int | None = None,
    key: str = "samples_per_s",
):
    """The row with the most `key` of one or several strategies on a circuit (at one batch size,
    shots if given); None if there is none."""
    rows = [
        r
        for r in rows_of(results, circuit, strategies, shots)
        if (batch_size is None or r["batch_size"] == batch_size) and key in r
    ]
    return max(rows, key=lambda r: r[key]) if rows else None


def memory_per_state_mb(results: list[dict], circuit: tuple, strategy: str, shots=None):
    """Growth of peak RSS per state in a batch, from the smallest to the largest batch size."""
    rows = sorted(rows_of(results, circuit, strategy, shots), key=lambda r: r["batch_size"])
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
    """The issue's targets as ratios measured in this run; "compiled" is the faster backend."""
    out = {}
    for circuit in dict.fromkeys(circuit_of(r) for r in results):
        compiled = best(results, circuit, COMPILED)
        numpy_best, tf_best = (best(results, circuit, s) for s in COMPILED)
        batched = best(results, circuit, "sf_batched")
        sequential = best(results, circuit, "sf_sequential")
        roofline = best(results, circuit, "compiled_numpy", key="structured_roofline_samples_per_s")
        pairs = {
            "compiled_best_vs_sf_batched_best": (compiled, batched),
            "compiled_numpy_best_vs_compiled_tf_best": (numpy_best, tf_best),
            "sf_batched_best_vs_sf_sequential": (batched, sequential),
        }
        for batch_size in (64, 256):
            pairs[f"compiled_vs_dense_roofline_batch_{batch_size}"] = (
                best(results, circuit, COMPILED, batch_size),
                best(results, circuit, "dense_roofline", batch_size),
            )
        entry = {
            name: ours["samples_per_s"] / theirs["samples_per_s"]
            for name, (ours, theirs) in pairs.items()
            if ours and theirs
        }
        if compiled and roofline:
            entry["compiled_best_vs_structured_roofline"] = (
                compiled["samples_per_s"] / roofline["structured_roofline_samples_per_s"]
            )
        entry.update(sampling_ratios(results, circuit))
        out[circuit_key(circuit)] = entry
    return out


def render_markdown(summary: dict) -> str:
    """Tables of samples/s per strategy and batch size, the structured roofline, the ratios."""
    results = summary["results"]
    lines = [f"# Engine benchmark\n\nMachine: {summary['machine']}.\n"]
    for circuit in dict.fromkeys(circuit_of(r) for r in results):
        lines += [
            f"## {circuit[0]} modes, {circuit[1]} layers, cutoff {circuit[2]}\n",
            "| strategy | shots | batch size | samples/s | outcomes/s | peak RSS MB |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows_of(results, circuit, STRATEGIES):
            rate, peak = r["samples_per_s"], r["peak_rss_mb"]
            outcomes = f"{r['outcomes_per_s']:.1f}" if "outcomes_per_s" in r else "-"
            lines.append(
                f"| {r['strategy']} | {r.get('shots', '-')} | {r['batch_size']} | {rate:.1f} "
                f"| {outcomes} | {peak:.0f} |"
            )
        lines.append("")
        lines += structured_table(results, circuit)
    lines += [
        "samples/s counts states (circuit evaluations); outcomes/s counts joint measurement "
        "outcomes over all modes (states x shots). SF's measurements give one outcome per state "
        "and run. The structured roofline is the multiply-adds per sample of the structure-aware "
        "kernels (cvgen.engines.per_mode.structured_work) at the complex64 matrix-product rate "
        "measured in the compiled_numpy worker, on one thread.\n"
    ]
    lines += ["## Ratios (measured in this run)\n", "| circuit | ratio | value |", "|---|---|---|"]
    for circuit, entry in summary["ratios"].items():
        lines += [f"| {circuit} | {name} | {value:.2f}x |" for name, value in entry.items()]
    return "\n".join(lines) + "\n"


def structured_table(results: list[dict], circuit: tuple) -> list[str]:
    """Per batch size: the roofline and each compiled backend's fraction of it."""
    rows = [r for r in rows_of(results, circuit, "compiled_numpy") if "multiply_adds_per_s" in r]
    if not rows:
        return []
    lines = [
        f"Structured roofline: {rows[0]['multiply_adds_per_sample']:,} multiply-adds per sample.\n",
        "| batch size | G multiply-adds/s | roofline samples/s | numpy fraction | TF fraction |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        roofline = r["structured_roofline_samples_per_s"]
        tf_row = best(results, circuit, "compiled_tf", r["batch_size"])
        tf_fraction = f"{tf_row['samples_per_s'] / roofline:.2f}" if tf_row else "-"
        lines.append(
            f"| {r['batch_size']} | {r['multiply_adds_per_s'] / 1e9:.2f} | {roofline:.1f} "
            f"| {r['samples_per_s'] / roofline:.2f} | {tf_fraction} |"
        )
    return [*lines, ""]


def plot(results: list[dict], path: Path) -> None:
    """samples/s against batch size, one panel per circuit, one line per strategy, the
    structured roofline dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    circuits = list(dict.fromkeys(circuit_of(r) for r in results))
    figure, axes = plt.subplots(1, len(circuits), figsize=(5 * len(circuits), 4), squeeze=False)
    for axis, circuit in zip(axes[0], circuits, strict=True):
        for strategy in ENGINE_STRATEGIES:
            rows = rows_of(results, circuit, strategy)
            if rows:
                sizes = [r["batch_size"] for r in rows]
                axis.plot(sizes, [r["samples_per_s"] for r in rows], "o-", label=strategy)
        roofline = [
            r for r in rows_of(results, circuit, "compiled_numpy") if "multiply_adds_per_s" in r
        ]
        if roofline:
            axis.plot(
                [r["batch_size"] for r in roofline],
                [r["structured_roofline_samples_per_s"] for r in roofline],
                "k--",
                label="structured_roofline",
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
    """Command line: the whole benchmark (or some circuits and strategies), or one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/benchmarks", help="folder for engines.*")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--max-batch", type=int, default=1024, help="largest batch size")
    parser.add_argument(
        "--circuits",
        default=",".join("x".join(map(str, c)) for c in CIRCUITS),
        help="modes x layers x cutoff, comma separated (default %(default)s)",
    )
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma separated")
    parser.add_argument("--worker", choices=STRATEGIES, help=argparse.SUPPRESS)
    parser.add_argument("--circuit", help=argparse.SUPPRESS)
    parser.add_argument("--shots", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        modes, layers, cutoff = map(int, args.circuit.split(","))
        worker(modes, layers, cutoff, args.worker, args.min_seconds, args.max_batch, args.shots)
        return
    strategies = tuple(args.strategies.split(","))
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"unknown strategies {sorted(unknown)}; choose from {', '.join(STRATEGIES)}")
    circuits = tuple(tuple(map(int, c.split("x"))) for c in args.circuits.split(","))
    sampling = tuple(c for c in SAMPLING_CIRCUITS if c in circuits)
    run_all(args.output, args.min_seconds, circuits, args.max_batch, sampling, strategies)


if __name__ == "__main__":
    main()
