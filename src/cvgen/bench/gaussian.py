"""Gaussian engine benchmark: against the compiled Fock engine at equal accuracy, and homodyne
and heterodyne datasets on many modes.

    python benchmarks/gaussian.py [--min-seconds 2] [--output results/benchmarks]

1. A 4-mode Gaussian circuit (the QNN template without its Kgates: Dgate inputs per sample,
   two layers of interferometers, Sgates and Dgates per circuit). The Gaussian engine is exact;
   the compiled engine (numpy, complex128) runs at the smallest cutoff whose <x>, <p>, <n> are
   within --tolerance of the exact values on every sample of the batch. Samples/s of both, same
   process, one thread, and their ratio.
2. Random-interferometer GBS on 100 modes (squeezing 0.5): homodyne (16 shots) and heterodyne
   (16 shots) samples/s and peak memory of the engine and sampler (tracemalloc).

Writes gaussian.json and gaussian.md.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path

import numpy as np

from cvgen.bench.measure import machine, single_thread

__all__ = ["main"]

OBSERVABLES = ("quad_x", "quad_p", "mean_photon")


def gaussian_qnn(modes: int, layers: int, cutoff: int):
    """The QNN template's circuit without its Kgates, with the op lists of both engines."""
    from cvgen.circuits import CircuitSpec, compile_circuit, parameter_names, qnn_gates

    gates = tuple(g for g in qnn_gates(modes, layers) if g[0] != "Kgate")
    circuit = CircuitSpec(modes, cutoff, "complex128", parameter_names(gates), gates=gates)
    return compile_circuit(circuit), compile_circuit(circuit, "gaussian")


def qnn_args(names, batch: int, rng) -> dict[str, np.ndarray]:
    """Inputs per sample (std 0.3), every other parameter per circuit (std 0.1)."""
    return {
        name: rng.normal(0, 0.3, batch) if name.startswith("input_") else np.full(batch, 0.1)
        for name in names
    }


def samples_per_second(run, batch: int, min_seconds: float) -> float:
    run()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        run()
        done += batch
    return done / (time.perf_counter() - start)


def versus_fock(modes: int, batch: int, tolerance: float, min_seconds: float) -> dict:
    """Gaussian engine vs the compiled engine at the cutoff that meets `tolerance`."""
    import dataclasses

    from cvgen.engines import make_engine

    fock_circuit, gaussian_circuit = gaussian_qnn(modes, 2, 4)
    args = qnn_args(gaussian_circuit.parameter_names, batch, np.random.default_rng(1))
    shared = tuple(name for name in args if not name.startswith("input_"))
    exact_engine = make_engine("gaussian", gaussian_circuit, batch, outputs=OBSERVABLES)
    exact = exact_engine.observables(args, batch)
    for cutoff in range(4, 40):
        circuit = dataclasses.replace(fock_circuit, cutoff=cutoff)
        engine = make_engine(
            "compiled", circuit, batch, shared, outputs=OBSERVABLES, backend="numpy"
        )
        values = engine.observables(args, batch)
        error = max(float(np.max(np.abs(values[n] - exact[n]))) for n in OBSERVABLES)
        if error <= tolerance:
            break
    gaussian_rate = samples_per_second(
        lambda: exact_engine.observables(args, batch), batch, min_seconds
    )
    fock_rate = samples_per_second(lambda: engine.observables(args, batch), batch, min_seconds)
    return {
        "modes": modes,
        "batch": batch,
        "tolerance": tolerance,
        "fock_cutoff": cutoff,
        "fock_max_error": error,
        "gaussian_samples_per_s": gaussian_rate,
        "fock_samples_per_s": fock_rate,
        "ratio": gaussian_rate / fock_rate,
    }


def many_modes(modes: int, batch: int, shots: int, min_seconds: float) -> list[dict]:
    """Homodyne and heterodyne samples on random-interferometer GBS: rate and peak memory."""
    from cvgen.circuits import CircuitSpec
    from cvgen.engines import make_engine
    from cvgen.gaussian.outcomes import GaussianSampler
    from cvgen.gaussian.templates import gbs_ops
    from cvgen.sampling import make_spec

    settings = {"graph": None, "mean_photon": 1.0, "squeezing": 0.5, "transmissivity": 0.9}
    ops = gbs_ops(settings, modes, seed=3)
    names = tuple(dict.fromkeys(op.name for op in ops))
    circuit = CircuitSpec(modes, 4, "complex64", (), op_names=names, ops=ops)
    rows = []
    for output in ("homodyne", "heterodyne"):
        engine = make_engine("gaussian", circuit, batch, outputs=("quad_x",))
        spec = make_spec((output,), shots, (0.0,) * modes, 30.0, 1025)
        sampler = GaussianSampler(spec, modes, 4, "complex64", 3, 30)
        position = iter(range(0, 10**9, batch))

        def run(engine=engine, sampler=sampler, position=position):
            states, _ = engine.evaluate({}, batch)
            sampler.sample(states, next(position))

        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rate = samples_per_second(run, batch, min_seconds)
        rows.append(
            {
                "output": output,
                "modes": modes,
                "batch": batch,
                "shots": shots,
                "samples_per_s": rate,
                "outcomes_per_s": rate * shots * modes,
                "peak_mb_per_batch": peak,
            }
        )
    return rows


def render(result: dict) -> str:
    fock = result["versus_fock"]
    lines = [
        f"Gaussian engine benchmark ({result['machine']})",
        "",
        f"{fock['modes']}-mode Gaussian QNN circuit, batch {fock['batch']}: engine gaussian "
        f"(exact) {fock['gaussian_samples_per_s']:,.0f} samples/s; engine compiled (numpy, "
        f"complex128) at cutoff {fock['fock_cutoff']}, the smallest within "
        f"{fock['tolerance']:g} of exact (max error {fock['fock_max_error']:.1e}): "
        f"{fock['fock_samples_per_s']:,.0f} samples/s; ratio {fock['ratio']:.1f}x",
        "",
        "| output | modes | batch | shots | samples/s | outcomes/s | peak MB per batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["many_modes"]:
        lines.append(
            f"| {row['output']} | {row['modes']} | {row['batch']} | {row['shots']} "
            f"| {row['samples_per_s']:,.0f} | {row['outcomes_per_s']:,.0f} "
            f"| {row['peak_mb_per_batch']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--modes", type=int, default=100)
    parser.add_argument("--output", type=Path, default=Path("results/benchmarks"))
    options = parser.parse_args(argv)
    single_thread()
    result = {
        "machine": machine(),
        "versus_fock": versus_fock(4, 256, options.tolerance, options.min_seconds),
        "many_modes": many_modes(options.modes, 64, 16, options.min_seconds),
    }
    options.output.mkdir(parents=True, exist_ok=True)
    (options.output / "gaussian.json").write_text(json.dumps(result, indent=2))
    text = render(result)
    (options.output / "gaussian.md").write_text(text + "\n")
    print(text)
