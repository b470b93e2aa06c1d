"""Memory estimate of a generation job, and the batch size that fits a memory budget.

Every part of a job is inside the estimate: the batches of the main run (and their sampling),
the truncation check's re-run at a higher cutoff, and the shard's outputs.

Measured, not guessed: BASELINE_MB is the resident size of a job after importing TensorFlow and
Strawberry Fields and running a first batch; the size-dependent terms count the arrays a job
holds at once. The estimate sets the scheduler's `mem_mb` and caps the batch size.
"""

from __future__ import annotations

import dataclasses
import logging
import math

from cvgen import sampling
from cvgen.circuits import CircuitSpec, choose_engine, circuit_from_config
from cvgen.conventions import SAMPLING_OUTPUTS, complex_bytes
from cvgen.errors import CvgenError
from cvgen.sizes import amplitudes_per_sample, basis_size

log = logging.getLogger(__name__)

BASELINE_MB = 1050  # TF (+ SF) jobs, measured: 830-1003 MB peak RSS for the default dataset's
# numpy-backend jobs import neither TF nor SF: 57-61 MB peak RSS for the default dataset's.
NUMPY_BASELINE_MB = 120
# Batch-state-sized arrays alive at once, from the engine benchmark's peak RSS growth with batch
# size (4 modes, cutoff 8): compiled +220 MB at batch 1024 (33.5 MB state: ~6.5 copies: state,
# sector-gathered copies, |psi|^2); SF +280 MB at batch 128 (4.2 MB state: ~67 copies of
# per-element gate tensors and einsum temporaries). Plus two-mode gate tensors [B, D, D, D, D].
STATE_COPIES = {"sf": 64, "compiled": 8}
GATE_COPIES = 2
MARGIN = 1.25
# Total-photon truncation (cvgen.engines.total_photon) holds a compact state of its largest padded
# layout, measured (4 modes, N = 17, batch 8 -> 1024) at 7.4 copies with only `norm`, 16 with
# <x>, <p>, <n> (whose lowering tables gather one copy per mode): 8 + 2 per mode. Its box-sized
# N^M arrays come on top (4 modes, N = 12, batch 8 -> 512): fock_probs (gathered into the box,
# fetched, concatenated: 3.5 real copies measured) and, when sampling, the embedded kets (1.0).
TOTAL_STATE_COPIES, TOTAL_COPIES_PER_MODE = 8, 2
TOTAL_FOCK_PROBS_COPIES, TOTAL_KET_COPIES = 4, 1
# Engine gaussian: numpy, plus numba and llvmlite when it counts photons; covariance-sized
# arrays [B, 2M, 2M] alive at once (state, a gate's row and column products, outputs); its
# samplers hold a few float64 numbers per shot and mode (normals, uniforms, outcomes).
GAUSSIAN_BASELINE_MB = 200
GAUSSIAN_COPIES = 6
GAUSSIAN_SHOT_NUMBERS = 16


def engine_of(config: dict, circuit: CircuitSpec) -> str:
    """The engine that runs the config's circuit (`auto` resolved as the plan resolves it)."""
    return choose_engine(config["engine"], circuit)[0]


def output_row_bytes(outputs: list[str], modes: int, cutoff: int, dtype: str) -> int:
    """Bytes of one sample's computed (not sampled) outputs."""
    real_bytes = complex_bytes(dtype) // 2
    widths = {"quad_x": modes, "quad_p": modes, "mean_photon": modes, "norm": 1}
    widths.update(means=2 * modes, cov=4 * modes**2)
    if "fock_probs" in outputs:
        widths["fock_probs"] = cutoff**modes
    return real_bytes * sum(widths[name] for name in outputs if name in widths)


def job_memory_mb(
    config: dict,
    batch_size: int,
    circuit: CircuitSpec | None = None,
    backend: str = "tensorflow",
    noise=None,
) -> int:
    """Estimated peak resident memory of one generate_shard job at `batch_size`, in MB, on
    `backend` (numpy or tensorflow; engine sf always imports TF and SF); `noise` the plan's
    cvgen.noise.NoisePlan of a lossy circuit (its density matrices or trajectories)."""
    circuit = circuit or circuit_from_config(config)
    cutoff = circuit.cutoff
    rows = min(config["shard_size"], config["n_circuits"] * config["samples_per_circuit"])
    row = output_row_bytes(config["outputs"], circuit.modes, cutoff, circuit.dtype)
    spec = sampling.sampling_spec(config, circuit.modes)
    engine = engine_of(config, circuit)
    gaussian = engine == "gaussian"
    if noise is not None and engine == "compiled":
        return _noisy_memory_mb(config, batch_size, circuit, backend, noise, spec, rows)
    dynamic = _engine_bytes(config, circuit, batch_size, bool(spec))
    if spec:
        row += sampling.row_bytes(spec, circuit.modes, cutoff, circuit.dtype)
        dynamic += (
            batch_size * spec.shots * circuit.modes * GAUSSIAN_SHOT_NUMBERS * 8
            if gaussian
            else sampling.batch_bytes(spec, circuit.modes, cutoff, circuit.dtype, batch_size)
        )
    dynamic = max(dynamic, _convergence_bytes(config, circuit, batch_size))
    dynamic += 2 * rows * row  # a shard's outputs, and their copy when concatenated
    numpy = backend == "numpy" and engine == "compiled"
    baseline = NUMPY_BASELINE_MB if numpy else BASELINE_MB
    baseline = GAUSSIAN_BASELINE_MB if gaussian else baseline
    return math.ceil(MARGIN * (baseline + dynamic / 2**20))


def _noisy_memory_mb(config, batch_size, circuit, backend, noise, spec, rows) -> int:
    """A lossy circuit's job: the expectation path (density matrices of the doubled circuit,
    or `trajectories` kets per sample) and, for sampled outputs, one trajectory ket per shot
    and the sampler's arrays for them; they run one after the other, so the larger counts."""
    from cvgen.noise import DENSITY_STATE_COPIES, density_bytes_per_sample, stderr_name

    modes, cutoff, dtype = circuit.modes, circuit.cutoff, circuit.dtype
    computed = [n for n in config["outputs"] if n not in SAMPLING_OUTPUTS]
    row = output_row_bytes(computed, modes, cutoff, dtype)
    expectation = 0
    if computed and noise.method == "density_matrix":
        density = density_bytes_per_sample(modes, cutoff, circuit.truncation, dtype)
        expectation = DENSITY_STATE_COPIES * batch_size * density
        expectation += _density_side_bytes(circuit, computed, batch_size)
    elif computed:
        expectation = _engine_bytes(config, circuit, batch_size * noise.trajectories, False)
        row += output_row_bytes([stderr_name(n) for n in computed], modes, cutoff, dtype)
    sampled = 0
    if spec:
        shots = batch_size * spec.shots
        single = dataclasses.replace(spec, shots=1)
        sampled = _engine_bytes(config, circuit, shots, True)
        sampled += sampling.batch_bytes(single, modes, cutoff, dtype, shots)
        row += sampling.row_bytes(spec, modes, cutoff, dtype)
    dynamic = max(expectation, sampled, _convergence_bytes(config, circuit, batch_size, noise))
    dynamic += 2 * rows * row
    baseline = NUMPY_BASELINE_MB if backend == "numpy" else BASELINE_MB
    return math.ceil(MARGIN * (baseline + dynamic / 2**20))


def _density_side_bytes(circuit: CircuitSpec, outputs: list[str], batch_size: int) -> int:
    """The density path's batch arrays beside its density matrices: per-sample gates
    (GATE_COPIES of a two-mode gate [D]*4 per mode; on total truncation, of the largest gate's
    blocks, planned for S columns per sample) and, on total truncation, fock_probs spread over
    the per-mode box N^M."""
    modes, cutoff, amplitude = circuit.modes, circuit.cutoff, complex_bytes(circuit.dtype)
    if circuit.truncation != "total":
        return GATE_COPIES * batch_size * cutoff**4 * amplitude if modes > 1 else 0
    from cvgen.engines.total_photon import layout_sizes

    blocks = layout_sizes(modes, cutoff, basis_size(modes, cutoff, "total") * batch_size)[1]
    side = GATE_COPIES * batch_size * blocks * amplitude
    if "fock_probs" in outputs:
        side += TOTAL_FOCK_PROBS_COPIES * batch_size * cutoff**modes * amplitude // 2
    return side


def _engine_bytes(config: dict, circuit: CircuitSpec, batch_size: int, sampled: bool) -> int:
    """Batch-sized arrays of the engine: states and gate tensors of its truncation."""
    engine = engine_of(config, circuit)
    if engine == "gaussian":
        probabilities = circuit.cutoff**circuit.modes if "fock_probs" in config["outputs"] else 0
        return batch_size * 8 * (GAUSSIAN_COPIES * 4 * circuit.modes**2 + 2 * probabilities)
    if circuit.truncation == "total":
        return _total_truncation_bytes(config, circuit, batch_size, sampled)
    amplitude = complex_bytes(circuit.dtype)
    state = batch_size * circuit.cutoff**circuit.modes * amplitude
    gate = batch_size * circuit.cutoff**4 * amplitude if circuit.modes > 1 else 0
    return STATE_COPIES[engine] * state + GATE_COPIES * gate


def _convergence_bytes(config: dict, circuit: CircuitSpec, batch_size: int, noise=None) -> int:
    """The truncation check's re-run at cutoff + extra_cutoff, after the main run: the same
    engine at the higher cutoff, in batches capped at the main run's amplitudes
    (cvgen.convergence), never fewer than one sample."""
    from cvgen.noise import DENSITY_STATE_COPIES, path_amplitudes

    check = config["convergence"]
    if check["fraction"] == 0 or engine_of(config, circuit) == "gaussian":  # exact: no re-run
        return 0
    modes, cutoff = circuit.modes, circuit.cutoff
    higher = dataclasses.replace(circuit, cutoff=cutoff + check["extra_cutoff"])
    if noise is not None:
        budget = batch_size * path_amplitudes(noise, modes, cutoff, circuit.truncation)
        per_sample = path_amplitudes(noise, modes, higher.cutoff, circuit.truncation)
        batch = max(1, budget // per_sample)
        if noise.method == "density_matrix":
            density = DENSITY_STATE_COPIES * batch * per_sample * complex_bytes(circuit.dtype)
            return density + _density_side_bytes(higher, config["outputs"], batch)
        return _engine_bytes(config, higher, batch * noise.trajectories, sampled=False)
    budget = batch_size * amplitudes_per_sample(modes, cutoff)
    batch = max(1, budget // amplitudes_per_sample(modes, higher.cutoff))
    return _engine_bytes(config, higher, batch, sampled=False)


def _total_truncation_bytes(
    config: dict, circuit: CircuitSpec, batch_size: int, sampled: bool
) -> int:
    """Batch-sized arrays of the total-photon engine: its compact state and gate blocks, and
    the N^M box arrays of fock_probs and of the kets handed to the sampler."""
    from cvgen.engines.total_photon import layout_sizes

    amplitude = complex_bytes(circuit.dtype)
    modes, cutoff = circuit.modes, circuit.cutoff
    layout, blocks = layout_sizes(modes, cutoff, batch_size)
    copies = TOTAL_STATE_COPIES + TOTAL_COPIES_PER_MODE * modes
    dynamic = batch_size * amplitude * (copies * layout + GATE_COPIES * blocks)
    box = batch_size * cutoff**modes
    if "fock_probs" in config["outputs"]:
        dynamic += TOTAL_FOCK_PROBS_COPIES * box * amplitude // 2
    if sampled:
        dynamic += TOTAL_KET_COPIES * box * amplitude
    return dynamic


def fitted_batch_size(
    config: dict, circuit: CircuitSpec | None = None, backend: str = "tensorflow", noise=None
) -> int:
    """The configured batch size, or the largest smaller one whose job fits memory_budget_mb."""
    circuit = circuit or circuit_from_config(config)
    budget, batch = config["memory_budget_mb"], config["batch_size"]

    def memory(size: int) -> int:
        return job_memory_mb(config, size, circuit, backend, noise)

    while batch > 1 and memory(batch) > budget:
        batch //= 2
    if memory(batch) > budget:
        check = config["convergence"]
        unchecked = {**config, "convergence": {**check, "fraction": 0}}
        rerun_mb = _convergence_bytes(config, circuit, 1, noise) / 2**20
        if job_memory_mb(unchecked, 1, circuit, backend, noise) <= budget:
            higher = circuit.cutoff + check["extra_cutoff"]
            raise CvgenError(
                f"the truncation check's re-run at cutoff {higher} (convergence.extra_cutoff "
                f"{check['extra_cutoff']}) needs about {math.ceil(rerun_mb)} MB for one sample, "
                f"over memory_budget_mb {budget}: lower convergence.extra_cutoff, or raise "
                f"memory_budget_mb"
            )
        states = basis_size(circuit.modes, circuit.cutoff, circuit.truncation)
        raise CvgenError(
            f"a generation job needs about {memory(1)} MB even at batch "
            f"size 1 ({circuit.modes} modes at cutoff {circuit.cutoff}, {circuit.truncation} "
            f"truncation: {states} basis states; shard_size "
            f"{config['shard_size']}), "
            f"over memory_budget_mb {budget}: lower circuit.cutoff, the outputs or shard_size, "
            f"or raise memory_budget_mb"
        )
    if batch != config["batch_size"]:
        log.info(
            "batch size %d would need about %d MB, over memory_budget_mb %d: using batch size "
            "%d (about %d MB)",
            *(config["batch_size"], memory(config["batch_size"]), budget, batch, memory(batch)),
        )
    return batch
