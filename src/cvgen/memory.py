"""Memory estimate of a generation job, and the batch size that fits a memory budget.

Measured, not guessed: BASELINE_MB is the resident size of a job after importing TensorFlow and
Strawberry Fields and running a first batch; the size-dependent terms count the arrays a job
holds at once. The estimate sets the scheduler's `mem_mb` and caps the batch size.
"""

from __future__ import annotations

import logging
import math

from cvgen import sampling
from cvgen.circuits import CircuitSpec, circuit_from_config
from cvgen.errors import CvgenError

log = logging.getLogger(__name__)

BASELINE_MB = 1050  # measured: 830-1003 MB peak RSS for the default dataset's jobs
# Batch-state-sized arrays alive at once, from the engine benchmark's peak RSS growth with batch
# size (4 modes, cutoff 8): compiled +220 MB at batch 1024 (33.5 MB state: ~6.5 copies: state,
# sector-gathered copies, |psi|^2); SF +280 MB at batch 128 (4.2 MB state: ~67 copies of
# per-element gate tensors and einsum temporaries). Plus two-mode gate tensors [B, D, D, D, D].
STATE_COPIES = {"sf": 64, "compiled": 8}
GATE_COPIES = 2
MARGIN = 1.25


def output_row_bytes(outputs: list[str], modes: int, cutoff: int, dtype: str) -> int:
    """Bytes of one sample's computed (not sampled) outputs."""
    real_bytes = 4 if dtype == "complex64" else 8
    widths = {"quad_x": modes, "quad_p": modes, "mean_photon": modes, "norm": 1}
    widths["fock_probs"] = cutoff**modes
    return real_bytes * sum(widths[name] for name in outputs if name in widths)


def job_memory_mb(config: dict, batch_size: int, circuit: CircuitSpec | None = None) -> int:
    """Estimated peak resident memory of one generate_shard job at `batch_size`, in MB."""
    circuit = circuit or circuit_from_config(config)
    complex_bytes = 8 if circuit.dtype == "complex64" else 16
    cutoff = circuit.cutoff
    state = batch_size * cutoff**circuit.modes * complex_bytes
    gate = batch_size * cutoff**4 * complex_bytes if circuit.modes > 1 else 0
    rows = min(config["shard_size"], config["n_circuits"] * config["samples_per_circuit"])
    row = output_row_bytes(config["outputs"], circuit.modes, cutoff, circuit.dtype)
    dynamic = STATE_COPIES[config["engine"]] * state + GATE_COPIES * gate
    spec = sampling.sampling_spec(config, circuit.modes)
    if spec:
        row += sampling.row_bytes(spec, circuit.modes, cutoff, circuit.dtype)
        dynamic += sampling.batch_bytes(spec, circuit.modes, cutoff, circuit.dtype, batch_size)
    dynamic += 2 * rows * row  # a shard's outputs, and their copy when concatenated
    return math.ceil(MARGIN * (BASELINE_MB + dynamic / 2**20))


def fitted_batch_size(config: dict, circuit: CircuitSpec | None = None) -> int:
    """The configured batch size, or the largest smaller one whose job fits memory_budget_mb."""
    circuit = circuit or circuit_from_config(config)
    budget, batch = config["memory_budget_mb"], config["batch_size"]
    while batch > 1 and job_memory_mb(config, batch, circuit) > budget:
        batch //= 2
    if job_memory_mb(config, batch, circuit) > budget:
        raise CvgenError(
            f"a generation job needs about {job_memory_mb(config, 1, circuit)} MB even at batch "
            f"size 1 ({circuit.modes} modes at cutoff {circuit.cutoff}: "
            f"{circuit.cutoff**circuit.modes} basis states; shard_size {config['shard_size']}), "
            f"over memory_budget_mb {budget}: lower circuit.cutoff, the outputs or shard_size, "
            f"or raise memory_budget_mb"
        )
    if batch != config["batch_size"]:
        log.info(
            "batch size %d would need about %d MB, over memory_budget_mb %d: using batch size "
            "%d (about %d MB)",
            config["batch_size"],
            job_memory_mb(config, config["batch_size"], circuit),
            budget,
            batch,
            job_memory_mb(config, batch, circuit),
        )
    return batch


def shard_memory_mb(config: dict) -> int:
    """Memory to request for one generate_shard job: the estimate at the batch size it will use."""
    circuit = circuit_from_config(config)
    return job_memory_mb(config, fitted_batch_size(config, circuit), circuit)
