"""Which backend runs the compiled engine: a cost model of one job, measured on both.

A job's time on a backend is its fixed cost, plus its samples' multiply-adds at the backend's
rate, plus a per-step cost of every batch (op dispatch):

  seconds = FIXED_S + steps * FIRST_CALL_S_PER_STEP + samples * work / RATE
            + batches * steps * STEP_S

Measured with one thread on the development machine (2-core x86 VM, AVX-512), QNN circuits of
2-4 modes, batch 64-256, counting work as dense multiply-adds (cvgen.sizes.gate_work):
  numpy       imports in ~0.05 s, nothing to trace; 4-25e9 multiply-adds/s (the structured
              kernels do less work than the count says); ~20 us per step and batch
  tensorflow  ~2.2 s import, then the first call traces and optimises the batch function
              (~0.015 s per step: 0.35 s at 14 steps, 0.9 s at 44); 2-11e9 multiply-adds/s;
              ~80 us per step and batch
so on a CPU numpy wins every state size measured here, and `auto` picks it; TensorFlow is for
GPUs (set `backend: tensorflow`: the model cannot see a GPU without importing TF).
"""

from __future__ import annotations

import math

from cvgen.circuits import CircuitSpec
from cvgen.sizes import gate_wire_counts, gate_work

__all__ = ["choose_backend", "job_seconds"]

FIXED_S = {"numpy": 0.05, "tensorflow": 2.2}
FIRST_CALL_S_PER_STEP = {"numpy": 0.0, "tensorflow": 0.015}
RATE = {"numpy": 1.5e10, "tensorflow": 8e9}
STEP_S = {"numpy": 2e-5, "tensorflow": 8e-5}


def job_seconds(backend: str, work: float, steps: int, samples: int, batch_size: int) -> float:
    """Estimated seconds of one job of `samples` samples on `backend` (see the module doc);
    `work` is multiply-adds per sample, `steps` the circuit's gates."""
    batches = math.ceil(samples / batch_size)
    return (
        FIXED_S[backend]
        + steps * FIRST_CALL_S_PER_STEP[backend]
        + samples * work / RATE[backend]
        + batches * steps * STEP_S[backend]
    )


def choose_backend(
    requested: str, engine: str, circuit: CircuitSpec, samples: int, batch_size: int
) -> tuple[str, str]:
    """The backend a job of `samples` samples runs on, and why (recorded in shards and report)."""
    if engine == "sf":
        return "tensorflow", "engine sf runs on Strawberry Fields' TF backend"
    if engine == "gaussian":
        return "numpy", "engine gaussian runs on numpy (photon counting compiled with numba)"
    if requested != "auto":
        return requested, f"backend: {requested} in the config"
    work, steps = gate_work(circuit), len(gate_wire_counts(circuit))
    estimates = {b: job_seconds(b, work, steps, samples, batch_size) for b in RATE}
    chosen = min(estimates, key=estimates.get)
    other = next(b for b in estimates if b != chosen)
    return chosen, (
        f"auto: estimated {estimates[chosen]:.2g} s on {chosen} against {estimates[other]:.2g} s "
        f"on {other} for the largest shard ({samples} samples)"
    )
