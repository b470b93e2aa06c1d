"""Samples/s at equal accuracy: each engine and truncation at the cutoff that meets a target error.

Comparing engines at one cutoff compares different accuracies: SF and the compiled engine keep a
box of cutoff^M states, total-photon truncation (cvgen's `truncation: total`, and piquasso's
Fock simulators) keeps the C(N + M - 1, M) states with fewer than N photons in all modes. Here,
on the QNN template with the config's default parameter distributions (cvgen.bench.problems),
each setting
  sf                 SF's TF backend in batch mode (per-mode truncation)
  compiled_per_mode  cvgen's compiled engine, per-mode truncation
  compiled_total     cvgen's compiled engine, total-photon truncation
  piquasso           piquasso 8.0.2's PureFockSimulator, NumPy connector, BatchPrepare
                     (total-photon truncation; optional, `pip install -e .[bench]`)
is run at rising cutoffs on seeded test samples (TEST_CIRCUITS weight draws, i.e. circuits, with
TEST_SAMPLES_PER_CIRCUIT input draws each: the truncation error differs by orders of magnitude
between weight draws) until the largest |<x> - reference| over samples and modes is at most the
target (default 1e-3), then timed at that cutoff like cvgen.bench.engines (on the first
circuit's samples): a fresh worker process, one thread, best samples/s over a few batch sizes
(and, for the compiled engine, over its numpy and TensorFlow backends).
The reference is the compiled engine in complex128 at a cutoff where raising it by
REFERENCE_STEP moves <x> by less than REFERENCE_TOLERANCE. <x> is the only output computed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from cvgen.bench.measure import machine, measure, peak_rss_mb, single_thread, worker_rows
from cvgen.bench.problems import qnn_problem
from cvgen.conventions import HBAR
from cvgen.errors import CvgenError

SETTINGS = ("sf", "compiled_per_mode", "compiled_total", "piquasso")
CIRCUITS = ((2, 2), (4, 2))  # (modes, layers)
TARGET = 1e-3  # max |<x> - reference| over the test samples and modes
TEST_CIRCUITS = 8
TEST_SAMPLES_PER_CIRCUIT = 4
BATCH_SIZES = {
    "sf": (8, 32, 64, 128),
    "compiled_per_mode": (16, 64, 256, 1024),
    "compiled_total": (16, 64, 256, 1024),
    "piquasso": (16, 64, 256, 1024),
}
FIRST_CUTOFF = 3
LAST_CUTOFF = 40
REFERENCE_START = 20
REFERENCE_STEP = 4
REFERENCE_TOLERANCE = 1e-6
PIQUASSO_VERSION = "8.0.2"
# The backends each setting is timed on: the compiled engine on both of its own.
BACKENDS = {
    "sf": ("tensorflow",),
    "compiled_per_mode": ("numpy", "tensorflow"),
    "compiled_total": ("numpy", "tensorflow"),
    "piquasso": ("numpy",),
}
LABELS = {
    "sf": ("SF batched (TF backend)", "per mode"),
    "compiled_per_mode": ("cvgen compiled", "per mode"),
    "compiled_total": ("cvgen compiled", "total photons"),
    "piquasso": (f"piquasso {PIQUASSO_VERSION} (NumPy, BatchPrepare)", "total photons"),
}


def piquasso_available() -> bool:
    """Whether piquasso (the `bench` extra) can be imported."""
    return importlib.util.find_spec("piquasso") is not None


def truncation(setting: str) -> str:
    """How the setting truncates Fock space: per_mode or total."""
    return "per_mode" if setting in ("sf", "compiled_per_mode") else "total"


def state_dimension(setting: str, modes: int, cutoff: int) -> int:
    """Number of Fock states the setting keeps at `cutoff`."""
    if truncation(setting) == "per_mode":
        return cutoff**modes
    return math.comb(cutoff + modes - 1, modes)


def problem(setting: str, modes: int, layers: int, cutoff: int, samples: int, circuits: int = 1):
    """The benchmark problem (circuit and drawn parameters) as the setting runs it at `cutoff`:
    complex64, the setting's truncation."""
    return qnn_problem(modes, layers, cutoff, samples, circuits, truncation(setting))


def runner(setting: str, circuit, drawn, batch_size: int, backend: str = "numpy"):
    """A function returning <x> [count, modes] of samples [start, start + count), the circuit at
    the setting's cutoff, truncation and dtype; `backend` is the compiled engine's."""
    if setting == "piquasso":
        return PiquassoRunner(circuit, drawn, circuit.cutoff, batch_size)
    from cvgen.engines import make_engine

    if setting == "sf":
        engine = make_engine("sf", circuit, batch_size, outputs=("quad_x",))
    else:
        outputs = ("quad_x",)
        engine = make_engine("compiled", circuit, batch_size, drawn.circuit_names, outputs, backend)
    return lambda start, count: engine.observables(drawn.batch_args(start, start + count), count)[
        "quad_x"
    ]


class PiquassoRunner:
    """The circuit on piquasso's PureFockSimulator with its NumPy connector, in batches.

    Gates with per-sample parameters (the QNN's input Dgates) must come first: they are each
    sample's BatchPrepare subprogram (Vacuum, then those gates); the rest is applied to the whole
    batch. piquasso's `cutoff` counts photons in all modes (total-photon truncation). <x> is
    computed from the state vector: `mean_position` in piquasso 8.0.2 omits the complex
    conjugate of the left amplitude, which is wrong for complex amplitudes.
    """

    def __init__(self, circuit, drawn, cutoff: int, batch_size: int):
        import piquasso as pq

        if circuit.gates is None:
            raise CvgenError("the piquasso benchmark runs template circuits only")
        self.pq, self.drawn, self.modes = pq, drawn, circuit.modes
        per_sample = set(drawn.sample_names)
        self.prefix = 0
        while self.prefix < len(circuit.gates) and per_sample & set(circuit.gates[self.prefix][1]):
            self.prefix += 1
        if any(per_sample & set(args) for _, args, _ in circuit.gates[self.prefix :]):
            raise CvgenError("piquasso runs per-sample parameters only in the leading gates")
        self.gates = circuit.gates
        self.simulator = pq.PureFockSimulator(
            d=circuit.modes, config=pq.Config(cutoff=cutoff), connector=pq.NumpyConnector()
        )
        self.lowering = lowering_tables(circuit.modes, cutoff)
        self._circuit = None

    def __call__(self, start: int, count: int) -> np.ndarray:
        pq = self.pq
        args = self.drawn.batch_args(start, start + count)
        circuits = self.drawn.circuit_index[start : start + count]
        if circuits.min() != circuits.max():
            raise CvgenError("a piquasso batch must hold samples of one circuit")
        if self._circuit != circuits[0]:
            values = {name: value[0] for name, value in args.items()}
            self._layers = [instruction(pq, g, values) for g in self.gates[self.prefix :]]
            self._circuit = circuits[0]
        inputs = []
        for i in range(count):
            values = {name: value[i] for name, value in args.items()}
            with pq.Program() as subprogram:
                pq.Q(all) | pq.Vacuum()
                for gate in self.gates[: self.prefix]:
                    pq.Q(*gate[2]) | instruction(pq, gate, values)
            inputs.append(subprogram)
        with pq.Program() as program:
            pq.Q(all) | pq.BatchPrepare(inputs)
            for (_, _, wires), layer in zip(self.gates[self.prefix :], self._layers, strict=True):
                pq.Q(*wires) | layer
        state_vector = self.simulator.execute(program).state.state_vector
        return mean_x(state_vector.reshape(len(state_vector), -1), self.lowering)


def instruction(pq, gate, values: dict):
    """The piquasso instruction of an SF gate (same conventions; see tests/test_accuracy.py)."""
    name, args, _ = gate
    a = [float(values[x]) if isinstance(x, str) else float(x) for x in args]
    if name == "Dgate":
        return pq.Displacement(r=a[0], phi=a[1] if len(a) > 1 else 0.0)
    if name == "Sgate":
        return pq.Squeezing(r=a[0], phi=a[1] if len(a) > 1 else 0.0)
    if name == "Rgate":
        return pq.Phaseshifter(phi=a[0])
    if name == "Kgate":
        return pq.Kerr(xi=a[0])
    if name == "BSgate":
        return pq.Beamsplitter(theta=a[0], phi=a[1] if len(a) > 1 else 0.0)
    raise CvgenError(f"op {name} has no piquasso translation in this benchmark")


def lowering_tables(modes: int, cutoff: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per mode m: basis positions k, positions of k with one more photon in m, sqrt(n_m + 1).

    The basis is piquasso's (states with fewer than `cutoff` photons, in its order).
    """
    from piquasso._math.fock import get_fock_space_basis

    basis = np.asarray(get_fock_space_basis(d=modes, cutoff=cutoff), dtype=np.int64)
    keys = basis @ (cutoff ** np.arange(modes, dtype=np.int64))
    order = np.argsort(keys)
    tables = []
    for mode in range(modes):
        rows = np.flatnonzero(basis.sum(axis=1) < cutoff - 1)
        raised_keys = keys[rows] + cutoff**mode
        raised = order[np.searchsorted(keys, raised_keys, sorter=order)]
        tables.append((rows, raised, np.sqrt(basis[rows, mode] + 1.0)))
    return tables


def mean_x(state_vector: np.ndarray, tables) -> np.ndarray:
    """<x> = sqrt(2 hbar) Re <a> per mode, of state vectors [dimension, batch] -> [batch, modes]."""
    scale = np.sqrt(2 * HBAR)
    lowered = [
        np.einsum("k,kb,kb->b", weight, np.conj(state_vector[rows]), state_vector[raised])
        for rows, raised, weight in tables
    ]
    return scale * np.real(np.stack(lowered, axis=1))


def x_at(setting: str, circuit, drawn) -> np.ndarray:
    """<x> [samples, modes] of every drawn sample at the circuit's cutoff, one batch per circuit."""
    per_circuit = int(np.sum(drawn.circuit_index == 0))
    run = runner(setting, circuit, drawn, per_circuit)
    starts = range(0, len(drawn.circuit_index), per_circuit)
    return np.concatenate([np.asarray(run(start, per_circuit), np.float64) for start in starts])


def reference(
    modes: int, layers: int, circuits: int, samples: int, truncation: str = "total"
) -> dict:
    """<x> of the test samples from the compiled engine in complex128, converged in the cutoff.

    Rises from REFERENCE_START in steps of REFERENCE_STEP until one step moves <x> by less than
    REFERENCE_TOLERANCE; the higher cutoff's values are the reference. Total-photon truncation
    by default: far fewer states than per-mode for the same accuracy.
    """

    def x(cutoff: int) -> np.ndarray:
        problem = qnn_problem(modes, layers, cutoff, samples, circuits, truncation, "complex128")
        return x_at(f"compiled_{truncation}", *problem)

    cutoff, lower = REFERENCE_START, x(REFERENCE_START)
    while True:
        upper = x(cutoff + REFERENCE_STEP)
        change = float(np.abs(upper - lower).max())
        if change < REFERENCE_TOLERANCE:
            break
        if cutoff + REFERENCE_STEP >= 2 * LAST_CUTOFF:
            raise CvgenError(f"the reference does not converge below cutoff {cutoff}")
        cutoff, lower = cutoff + REFERENCE_STEP, upper
    return {
        "truncation": truncation,
        "cutoff": cutoff + REFERENCE_STEP,
        "change_from_cutoff": cutoff,
        "max_change": change,
        "quad_x": upper.tolist(),
    }


def search(
    setting: str, modes: int, layers: int, reference_x, target: float, circuits: int
) -> dict:
    """The smallest cutoff at which the setting's <x> is within `target` of the reference."""
    samples = len(reference_x) // circuits
    table = []
    for cutoff in range(FIRST_CUTOFF, LAST_CUTOFF + 1):
        x = x_at(setting, *problem(setting, modes, layers, cutoff, samples, circuits))
        error = float(np.abs(x - reference_x).max())
        table.append({"cutoff": cutoff, "max_error": error})
        if error <= target:
            dimension = state_dimension(setting, modes, cutoff)
            return {"cutoff": cutoff, "dimension": dimension, "max_error": error, "table": table}
    raise CvgenError(f"{setting} does not reach {target:g} below cutoff {LAST_CUTOFF}")


def timings(
    setting: str, modes: int, layers: int, cutoff: int, min_seconds, max_batch, backend: str
) -> list:
    """samples/s and peak memory at each batch size (rising), like cvgen.bench.engines.worker."""
    sizes = [size for size in BATCH_SIZES[setting] if size <= max_batch]
    samples = max(4 * max(sizes), 256)
    circuit, drawn = problem(setting, modes, layers, cutoff, samples)
    rows = []
    for batch_size in sizes:
        run = runner(setting, circuit, drawn, batch_size, backend)
        rate = measure(run, batch_size, samples, min_seconds)
        row = {"batch_size": batch_size, "backend": backend, "samples_per_s": rate}
        rows.append({**row, "peak_rss_mb": peak_rss_mb()})
    return rows


def worker(task: str, setting: str, modes: int, layers: int, options: dict) -> None:
    """One task in this (fresh) process, on one thread; its result as JSON lines on stdout."""
    single_thread()
    if task == "reference":
        result = [reference(modes, layers, options["circuits"], options["samples"])]
    elif task == "search":
        reference_x = np.array(json.loads(Path(options["reference"]).read_text())["quad_x"])
        circuits = options["circuits"]
        result = [search(setting, modes, layers, reference_x, options["target"], circuits)]
    else:
        result = timings(
            *(setting, modes, layers, options["cutoff"], options["min_seconds"]),
            *(options["max_batch"], options["backend"]),
        )
    for row in result:
        print(json.dumps(row), flush=True)


def run_worker(task: str, setting: str, modes: int, layers: int, **options) -> list[dict]:
    """One worker task in a fresh process; the rows it printed."""
    command = [
        *(sys.executable, "-m", "cvgen.bench.accuracy", "--worker", task, "--setting", setting),
        *("--circuit", f"{modes},{layers}", "--options", json.dumps(options)),
    ]
    return worker_rows(command)


def skipped(setting: str) -> str | None:
    """Why a setting cannot run in this environment (None when it can)."""
    if setting == "piquasso" and not piquasso_available():
        return (
            f"piquasso is not installed: skipping it (pip install -e '.[bench]' for "
            f"piquasso=={PIQUASSO_VERSION})"
        )
    return None


def run_all(
    output_dir: str | Path,
    circuits=CIRCUITS,
    settings=SETTINGS,
    target: float = TARGET,
    test_circuits: int = TEST_CIRCUITS,
    samples_per_circuit: int = TEST_SAMPLES_PER_CIRCUIT,
    min_seconds: float = 2.0,
    max_batch: int = 1024,
) -> dict:
    """Reference, cutoff search and timing of every setting on every circuit, in worker
    processes; writes accuracy.{json,md}."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "machine": machine(),
        "target": target,
        "test_circuits": test_circuits,
        "test_samples_per_circuit": samples_per_circuit,
        "circuits": [],
        "skipped": {},
    }
    for setting in settings:
        reason = skipped(setting)
        if reason:
            print(reason, flush=True)
            summary["skipped"][setting] = reason
    for modes, layers in circuits:
        (ref,) = run_worker(
            "reference",
            "compiled",
            modes,
            layers,
            circuits=test_circuits,
            samples=samples_per_circuit,
        )
        print(
            f"{modes} modes x {layers} layers: reference compiled complex128, {ref['truncation']} "
            f"truncation at cutoff {ref['cutoff']}; from cutoff {ref['change_from_cutoff']} to "
            f"{ref['cutoff']} <x> moves by at most {ref['max_change']:.1e} (< "
            f"{REFERENCE_TOLERANCE:g})",
            flush=True,
        )
        entry = {"modes": modes, "layers": layers, "reference": ref, "settings": []}
        with tempfile.TemporaryDirectory() as scratch:
            reference_path = Path(scratch) / "reference.json"
            reference_path.write_text(json.dumps(ref))
            for setting in settings:
                if setting in summary["skipped"]:
                    continue
                (found,) = run_worker(
                    "search",
                    setting,
                    modes,
                    layers,
                    reference=str(reference_path),
                    target=target,
                    circuits=test_circuits,
                )
                rows = [
                    row
                    for backend in BACKENDS[setting]
                    for row in run_worker(
                        "time",
                        setting,
                        modes,
                        layers,
                        cutoff=found["cutoff"],
                        min_seconds=min_seconds,
                        max_batch=max_batch,
                        backend=backend,
                    )
                ]
                result = {"setting": setting, **found, "timings": rows, "best": fastest(rows)}
                entry["settings"].append(result)
                print(_result_text(modes, layers, result), flush=True)
        summary["circuits"].append(entry)
    (output_dir / "accuracy.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output_dir / "accuracy.md").write_text(render_markdown(summary))
    return summary


def fastest(rows: list[dict]) -> dict:
    """The timing row with the most samples/s."""
    return max(rows, key=lambda row: row["samples_per_s"])


def _result_text(modes: int, layers: int, result: dict) -> str:
    best = result["best"]
    return (
        f"{modes} modes x {layers} layers: {result['setting']:>17} cutoff {result['cutoff']:>2} "
        f"({result['dimension']} states), max |d<x>| {result['max_error']:.2e}: "
        f"{best['samples_per_s']:.1f} samples/s (batch {best['batch_size']}, {best['backend']})"
    )


def ratio(entry: dict, setting: str, other: str) -> float | None:
    """samples/s of `setting` over those of `other` on one circuit (None if either is absent)."""
    rates = {r["setting"]: r["best"]["samples_per_s"] for r in entry["settings"]}
    if setting in rates and other in rates:
        return rates[setting] / rates[other]
    return None


def _times(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}x" if value >= 1 else f"{value:.2f}x"


def render_markdown(summary: dict) -> str:
    """One table per circuit: cutoff, states, error, samples/s and ratios of every setting."""
    circuits, per_circuit = summary["test_circuits"], summary["test_samples_per_circuit"]
    lines = [
        "# Samples/s at equal accuracy\n",
        f"Machine: {summary['machine']}. Target: max |<x> - reference| <= {summary['target']:g} "
        f"over every mode of {circuits * per_circuit} seeded samples ({circuits} weight draws "
        f"with {per_circuit} input draws each; the config's default distributions).\n",
    ]
    lines += [f"- {reason}" for reason in summary["skipped"].values()]
    if summary["skipped"]:
        lines.append("")
    for entry in summary["circuits"]:
        ref = entry["reference"]
        lines += [
            f"## {entry['modes']} modes, {entry['layers']} layers\n",
            f"Reference: compiled engine, complex128, {ref['truncation']} truncation at cutoff "
            f"{ref['cutoff']} (<x> moves by {ref['max_change']:.1e} from cutoff "
            f"{ref['change_from_cutoff']}).\n",
            "| engine | truncation | cutoff | states | max abs d<x> | samples/s | batch "
            "| backend | peak RSS MB | vs SF | vs piquasso |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for result in entry["settings"]:
            engine, kind = LABELS[result["setting"]]
            best = result["best"]
            against = [ratio(entry, result["setting"], other) for other in ("sf", "piquasso")]
            shown = [_times(value) for value in against]
            lines.append(
                f"| {engine} | {kind} | {result['cutoff']} | {result['dimension']:,} "
                f"| {result['max_error']:.1e} | {best['samples_per_s']:,.0f} "
                f"| {best['batch_size']} | {best['backend']} | {best['peak_rss_mb']:.0f} "
                f"| {shown[0]} | {shown[1]} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Command line: the whole comparison, or (internally) one worker task."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/benchmarks", help="folder for accuracy.*")
    parser.add_argument("--target", type=float, default=TARGET, help="max |d<x>| to meet")
    parser.add_argument(
        "--test-circuits", type=int, default=TEST_CIRCUITS, help="weight draws tested"
    )
    parser.add_argument(
        "--samples-per-circuit",
        type=int,
        default=TEST_SAMPLES_PER_CIRCUIT,
        help="input draws tested per weight draw",
    )
    parser.add_argument("--min-seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--max-batch", type=int, default=1024, help="largest batch size")
    parser.add_argument(
        "--circuits",
        default=",".join(f"{m}x{layers}" for m, layers in CIRCUITS),
        help="modes x layers, comma separated (default %(default)s)",
    )
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma separated")
    parser.add_argument("--worker", choices=("reference", "search", "time"), help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--circuit", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        modes, layers = map(int, args.circuit.split(","))
        worker(args.worker, args.setting, modes, layers, json.loads(args.options))
        return
    settings = tuple(args.settings.split(","))
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}; choose from {', '.join(SETTINGS)}")
    circuits = tuple(tuple(map(int, c.split("x"))) for c in args.circuits.split(","))
    run_all(
        args.output,
        circuits,
        settings,
        args.target,
        args.test_circuits,
        args.samples_per_circuit,
        args.min_seconds,
        args.max_batch,
    )


if __name__ == "__main__":
    main()
