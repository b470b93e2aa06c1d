"""Memory estimate of a generation job, so schedulers get an honest `mem_mb`.

Measured, not guessed: BASELINE_MB is the resident size of a job after importing TensorFlow and
Strawberry Fields and running a tiny batch; the size-dependent terms count the arrays a job holds.
"""

from __future__ import annotations

import math

from cvgen.circuits import circuit_from_config

BASELINE_MB = 1050  # measured: 830-1003 MB peak RSS for the default dataset's jobs
# Copies of the batch state alive at once in SF's TF backend (state, gate outputs, einsum
# temporaries, observables), and of two-mode gate tensors [B, D, D, D, D].
STATE_COPIES = 8
GATE_COPIES = 2
MARGIN = 1.25


def output_row_bytes(outputs: list[str], modes: int, cutoff: int, dtype: str) -> int:
    """Bytes of one sample's outputs."""
    real_bytes = 4 if dtype == "complex64" else 8
    widths = {"quad_x": modes, "quad_p": modes, "mean_photon": modes, "norm": 1}
    widths["fock_probs"] = cutoff**modes
    return real_bytes * sum(widths[name] for name in outputs)


def shard_memory_mb(config: dict) -> int:
    """Estimated peak resident memory of one generate_shard job, in MB."""
    circuit = circuit_from_config(config)
    complex_bytes = 8 if circuit.dtype == "complex64" else 16
    batch, cutoff = config["batch_size"], circuit.cutoff
    state = batch * cutoff**circuit.modes * complex_bytes
    gate = batch * cutoff**4 * complex_bytes if circuit.modes > 1 else 0
    rows = min(config["shard_size"], config["n_circuits"] * config["samples_per_circuit"])
    outputs = 2 * rows * output_row_bytes(config["outputs"], circuit.modes, cutoff, circuit.dtype)
    dynamic = (STATE_COPIES * state + GATE_COPIES * gate + outputs) / 2**20
    return math.ceil(MARGIN * (BASELINE_MB + dynamic))
