"""What a generation job asks a scheduler for: wall time and threads (memory: cvgen.memory).

A cluster kills a job at its time limit, and bills or places it by the CPUs and memory it asks
for, so the requests are derived from the shard rather than guessed per rule:

- runtime: start-up plus the shard's samples times a per-sample cost, counted in multiply-adds
  of the gates on the state (and of the sampling), at rates a little below the slowest measured
  on the development machine, times a margin, with a floor; `resources.runtime_minutes`
  overrides it. Each retry (`attempt`) gets that much more time again.
- threads: the TensorFlow threads (Slurm CPUs) of a job. Clusters hand out memory with CPUs
  (`resources.mem_mb_per_thread` each), so a job whose memory estimate needs several CPUs' worth
  gets those CPUs as threads, up to `resources.max_threads`. Such jobs hold large states, the
  case where TF's intra-op threads pay off; small jobs keep one thread and the workflow runs
  more of them side by side.
"""

from __future__ import annotations

import dataclasses
import math

from cvgen.circuits import CircuitSpec, circuit_from_config
from cvgen.config import shard_ranges
from cvgen.memory import engine_of, fitted_batch_size, job_memory_mb
from cvgen.sizes import gate_wire_counts, gate_work

# Start-up of a job on a cluster node: 3.4 s here (interpreter, TF + SF import, program build,
# tracing of the first batch), but imports from a shared filesystem can take a minute.
STARTUP_S = 120.0
# Multiply-adds per second, below the slowest measured per job (one TF thread, development
# machine): the compiled engine did 3.8e9-1.3e10 on the engine benchmark's circuits, SF's
# batched backend is bound by a per-op cost of about 0.2 ms per sample instead.
ENGINE_RATE = {"compiled": 2e9, "sf": 1e9}
SF_OP_S = 3e-4  # per op and sample (measured 0.15-0.2 ms on the benchmark circuits)
BATCH_OVERHEAD_S = {"compiled": 2e-3, "sf": 0.05}  # per batch call (measured ~1 ms and ~30 ms)
# Homodyne sampling: shots x modes x (grid x cutoff + cutoff^modes) operations per sample ran
# at 9e9-2e10 per second (2-3 modes, 16-64 shots, 1025-2049 grid points).
SAMPLING_RATE = 5e9
GAUSSIAN_RATE = 1e8  # numpy row updates of small covariances: dispatch-bound
# One mode's step of the photon-number chain at the ceiling's scale: a loose bound of the
# measured chain (samples far below the ceiling cost orders of magnitude less).
PHOTON_SHOT_S = 1e-6
MARGIN = 3.0  # the time limit over the estimate: slower nodes, busy filesystems
MIN_RUNTIME_MIN = 10


def seconds_per_sample(
    config: dict, circuit: CircuitSpec, batch_size: int, sampling: bool = True
) -> float:
    """Estimated compute seconds per sample of a generation job (engine, and sampling)."""
    engine = engine_of(config, circuit)
    if engine == "gaussian":
        return gaussian_seconds_per_sample(config, circuit)
    seconds = gate_work(circuit) / ENGINE_RATE[engine] + BATCH_OVERHEAD_S[engine] / batch_size
    if engine == "sf":
        seconds += SF_OP_S * len(gate_wire_counts(circuit))
    if sampling and "homodyne" in config["outputs"]:
        per_shot = circuit.modes * (
            config["sampling"]["homodyne"]["grid_points"] * circuit.cutoff
            + circuit.cutoff**circuit.modes
        )
        seconds += config["sampling"]["shots"] * per_shot / SAMPLING_RATE
    return seconds


def gaussian_seconds_per_sample(config: dict, circuit: CircuitSpec) -> float:
    """Engine gaussian: each op updates 2 of 2M rows and columns of the covariance, and each
    photon-number shot costs a chain-rule pass whose cost grows with its photons (bounded by
    sampling.max_photons); quadrature shots are a few multiply-adds per mode."""
    ops = len(circuit.ops or ()) or circuit.modes**2
    seconds = ops * 16 * circuit.modes / GAUSSIAN_RATE
    outputs, shots = config["outputs"], config["sampling"]["shots"]
    if "fock_samples" in outputs or "threshold_samples" in outputs:
        photons = config["sampling"]["max_photons"]
        seconds += shots * PHOTON_SHOT_S * circuit.modes * 2 ** (photons / 4)
    return seconds


def estimated_shard_seconds(
    config: dict, circuit: CircuitSpec | None = None, batch_size: int | None = None
) -> float:
    """Estimated wall time of the largest generate_shard job, in seconds, without a margin."""
    circuit = circuit or circuit_from_config(config)
    batch_size = batch_size or fitted_batch_size(config, circuit)
    samples = max(stop - start for start, stop in shard_ranges(config))
    seconds = STARTUP_S + samples * seconds_per_sample(config, circuit, batch_size)
    check = config["convergence"]
    if check["fraction"] > 0 and engine_of(config, circuit) != "gaussian":  # re-run, higher cutoff
        rerun = min(samples, max(check["min_samples"], math.ceil(check["fraction"] * samples)))
        higher = dataclasses.replace(circuit, cutoff=circuit.cutoff + check["extra_cutoff"])
        seconds += rerun * seconds_per_sample(config, higher, batch_size, sampling=False)
    return seconds


def shard_runtime_minutes(
    config: dict, circuit: CircuitSpec | None = None, batch_size: int | None = None
) -> int:
    """Time limit of one generate_shard job: resources.runtime_minutes, else the estimate x3."""
    override = config["resources"]["runtime_minutes"]
    if override is not None:
        return override
    minutes = MARGIN * estimated_shard_seconds(config, circuit, batch_size) / 60
    return max(MIN_RUNTIME_MIN, math.ceil(minutes))


def shard_threads(config: dict, memory_mb: int | None = None) -> int:
    """TensorFlow threads (Slurm CPUs) of one generate_shard job: one per mem_mb_per_thread of
    its memory estimate, between 1 and resources.max_threads."""
    if memory_mb is None:
        circuit = circuit_from_config(config)
        memory_mb = job_memory_mb(config, fitted_batch_size(config, circuit), circuit)
    resources = config["resources"]
    threads = math.ceil(memory_mb / resources["mem_mb_per_thread"])
    return max(1, min(resources["max_threads"], threads))
