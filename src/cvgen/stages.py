"""The workflow's stages as plain functions; each reads only the files the stage before wrote.

prepare_params(config) -> params.h5 -> generate_shard(i) -> shards/i.h5 -> aggregate -> dataset.h5
-> build_report -> report.{json,md} + plots. Rules, command line and tests all call these.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from pathlib import Path

import numpy as np

from cvgen.circuits import compile_circuit
from cvgen.convergence import check_shard, enforce_tolerance, warn_or_fail
from cvgen.errors import CvgenError
from cvgen.params import draw_plan_parameters
from cvgen.plan import DatasetPlan, build_plan
from cvgen.provenance import provenance_attrs
from cvgen.records import ShardRun
from cvgen.sampling import Sampler, TrajectorySampler, combine_summaries
from cvgen.shards import ParamsFile, Shard, read_params_file, write_params_file, write_shard

log = logging.getLogger(__name__)

GRID_TOLERANCE = 1e-3  # homodyne grid errors above this are worth a warning
# A norm above 1 by more than rounding can explain means the state is numerically broken.
NORM_EXCESS = {"complex64": 1e-3, "complex128": 1e-6}


def prepare_params(config: dict, output: str | Path) -> ParamsFile:
    """Build the dataset plan, compile its circuit to the op list (SF parses and decomposes a
    Blackbird script here, once) and draw every free-parameter value: write params.h5."""
    plan = build_plan(config)
    if plan.engine in ("compiled", "gaussian"):
        plan = plan.with_circuit(compile_circuit(plan.circuit, plan.engine))
    drawn = draw_plan_parameters(plan)
    params = ParamsFile(plan, drawn)
    write_params_file(output, params, provenance_attrs())
    log.info(
        "drew %d per-circuit x %d circuits and %d per-sample x %d samples -> %s",
        *(len(drawn.circuit_names), plan.n_circuits, len(drawn.sample_names), plan.n_samples),
        output,
    )
    log.info(
        "plan: %d shards, engine %s on %s (%s), batch %d, about %d MB and %d min per job",
        *(len(plan.shards), plan.engine, plan.backend, plan.backend_reason, plan.batch_size),
        *(plan.memory_mb, plan.runtime_minutes),
    )
    return params


def generate_shard(params_path: str | Path, index: int, output: str | Path, threads: int = 1):
    """Simulate shard `index` of the dataset in batches in this one process; write its file."""
    from threadpoolctl import threadpool_limits

    from cvgen.engines import make_engine
    from cvgen.engines.backend import namespace

    process_start = _process_start()
    params = read_params_file(params_path)
    plan = params.plan
    start, stop = plan.shard(index)
    threadpool_limits(threads)  # numpy's BLAS: as many threads as the job was given
    import_s = _import_backend(plan, threads)
    engine = make_engine(
        plan.engine,
        plan.circuit,
        plan.batch_size,
        params.drawn.circuit_names,
        plan.computed_outputs,
        plan.backend,
        threads,
        plan.noise,
        plan.seed,
        plan.sampling.shots if plan.sampling else 0,
    )
    sampler = plan.sampling and make_sampler(plan, namespace(plan.backend, threads))
    startup_s = time.time() - process_start
    log.info(
        "shard %d: samples [%d, %d), %s (%s), batch %d, %d threads; start-up %.2f s "
        "(imports %.2f s)",
        *(index, start, stop, engine.describe(), plan.backend_reason, plan.batch_size),
        *(threads, startup_s, import_s),
    )
    outputs, summaries, first_batch_s, compute_s = _simulate(
        engine, sampler, params, (start, stop), index
    )
    truncated = check_truncation(outputs["norm"], start, plan)
    if sampler:
        check_grid(summaries)
        check_photon_ceiling(summaries, plan)
    clock = time.perf_counter()
    check = check_shard(plan, engine, params.drawn, outputs, start, stop)
    if check:
        enforce_tolerance(check, plan, engine, params.drawn)
    convergence_s = time.perf_counter() - clock
    first_count = min(plan.batch_size, stop - start)
    provenance = provenance_attrs()
    run = ShardRun(
        shard_index=index,
        start=start,
        stop=stop,
        engine=engine.name,
        backend=plan.backend,
        backend_reason=plan.backend_reason,
        batch_size=plan.batch_size,
        threads=threads,
        process_start_unix=process_start,
        import_s=import_s,
        startup_s=startup_s,
        trace_s=getattr(engine, "trace_s", 0.0),
        first_batch_s=first_batch_s,
        first_batch_samples=first_count,
        steady_s=compute_s - first_batch_s,
        steady_samples=(stop - start) - first_count,
        compute_s=compute_s,
        norm_below_threshold=truncated,
        convergence_s=convergence_s,
        finished_unix=time.time(),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        host=provenance["host"],
        slurm_job_id=provenance["slurm_job_id"],
    )
    attrs = {**provenance, "config_hash": plan.config_hash, "seed": plan.seed, **run.attrs()}
    rows = slice(start, stop)
    drawn = params.drawn
    shard = Shard(
        index,
        start,
        stop,
        drawn.sample_values[rows],
        drawn.circuit_index[rows],
        outputs,
        attrs,
        summaries,
        check.arrays() if check else {},
    )
    write_shard(output, shard)
    log.info(
        "shard %d: wrote %s; %.1f samples/s including start-up",
        *(index, output, (stop - start) / (run.finished_unix - process_start)),
    )
    return shard


def make_sampler(plan: DatasetPlan, xp):
    """The sampler of the plan's engine: exact normal draws and the photon-number chain for
    Gaussian states, the chain rule over Fock-basis kets otherwise."""
    circuit = plan.circuit
    if plan.engine == "gaussian":
        from cvgen.gaussian.outcomes import GaussianSampler

        return GaussianSampler(
            plan.sampling, circuit.modes, circuit.cutoff, circuit.dtype, plan.seed, plan.max_photons
        )
    noise = plan.noise
    detector = (noise.efficiency, noise.dark_counts) if noise else (1.0, 0.0)
    sampler = TrajectorySampler if noise and noise.channels else Sampler
    return sampler(
        plan.sampling, circuit.modes, circuit.cutoff, circuit.dtype, plan.seed, xp, detector
    )


def _import_backend(plan: DatasetPlan, threads: int) -> float:
    """Import what the job's backend needs (TF; SF for engine sf), timed: start-up's big part."""
    if plan.backend != "tensorflow":
        return 0.0
    from cvgen.engines.backend import tensorflow

    clock = time.perf_counter()
    tensorflow(threads)
    if plan.engine == "sf":
        import strawberryfields  # noqa: F401

    return time.perf_counter() - clock


def _simulate(engine, sampler, params: ParamsFile, rows: tuple[int, int], index: int):
    """Run samples [start, stop) in batches (and draw their outcomes, with a sampler).

    Returns the outputs, the summaries of the sampled distributions, and the first-batch and
    total seconds.
    """
    start, stop = rows
    batch_size = params.plan.batch_size
    batches = []
    summaries: dict[str, np.ndarray] = {}
    first_batch_s = 0.0
    clock = time.perf_counter()
    for batch_start in range(start, stop, batch_size):
        batch_stop = min(batch_start + batch_size, stop)
        args = params.drawn.batch_args(batch_start, batch_stop)
        rows = row_keys(engine, np.arange(batch_start, batch_stop))
        if sampler:
            kets, values = engine.evaluate(args, batch_stop - batch_start, **rows)
            samples, batch_summaries = sampler.sample(kets, batch_start)
            values.update(samples)
            summaries = combine_summaries(summaries, batch_summaries)
        else:
            values = engine.observables(args, batch_stop - batch_start, **rows)
        check_finite(values, batch_start, batch_stop, params.plan.circuit.dtype, args)
        batches.append(values)
        if batch_start == start:
            first_batch_s = time.perf_counter() - clock
        done = batch_stop - start
        rate = done / (time.perf_counter() - clock)
        log.info("shard %d: %d/%d samples, %.1f samples/s", index, done, stop - start, rate)
    outputs = {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}
    return outputs, summaries, first_batch_s, time.perf_counter() - clock


def row_keys(engine, rows: np.ndarray) -> dict:
    """The samples' dataset rows for engines whose draws are keyed on them (the noisy engine's
    trajectories), as keyword arguments of evaluate/observables; nothing for the others."""
    return {"rows": rows} if getattr(engine, "keyed_by_row", False) else {}


def check_truncation(norm: np.ndarray, start: int, plan: DatasetPlan) -> int:
    """Count samples whose norm is below norm_threshold; warn, or fail with on_truncation: fail."""
    threshold = plan.norm_threshold
    truncated = int(np.sum(norm < threshold))
    if truncated:
        worst = int(np.argmin(norm))
        message = (
            f"{truncated} samples keep less than norm_threshold {threshold} of their probability "
            f"inside the cutoff (lowest {norm[worst]:.6f}, sample {start + worst}); raise "
            f"circuit.cutoff or narrow the parameter distributions"
        )
        warn_or_fail(plan, message)
    return truncated


def check_grid(summaries: dict[str, np.ndarray]) -> None:
    """Warn when the homodyne grid misses probability or interpolates coarsely."""
    if "homodyne_mass_error" not in summaries:
        return
    missed = float(summaries["homodyne_mass_error"])
    coarse = float(summaries["homodyne_interpolation_error"])
    if missed > GRID_TOLERANCE:
        log.warning(
            "the homodyne grid [-R, R] misses up to %.2e of a marginal's probability; widen "
            "sampling.homodyne.grid_range",
            missed,
        )
    if coarse > GRID_TOLERANCE:
        log.warning(
            "linear interpolation between homodyne grid points is off by up to %.2e of a "
            "density's peak; raise sampling.homodyne.grid_points",
            coarse,
        )


def check_photon_ceiling(summaries: dict[str, np.ndarray], plan: DatasetPlan) -> None:
    """Warn (or fail, with on_truncation: fail) when the photon ceiling of the Gaussian engine's
    photon-number samples cuts off more than 1 - norm_threshold of a state's probability."""
    if "photon_ceiling_mass" not in summaries:
        return
    mass = float(summaries["photon_ceiling_mass"])
    if mass > 1 - plan.norm_threshold:
        warn_or_fail(
            plan,
            f"P(N > sampling.max_photons = {plan.max_photons}) is {mass:.3g} for some states, "
            f"more than 1 - norm_threshold ({1 - plan.norm_threshold:.3g}): photon-number samples "
            f"above the ceiling are not drawn (total-variation distance up to {mass:.3g}); raise "
            f"sampling.max_photons (the cost of a sample grows exponentially with its photons)",
        )


def check_finite(
    values: dict[str, np.ndarray],
    start: int,
    stop: int,
    dtype: str = "complex64",
    args: dict[str, np.ndarray] | None = None,
) -> None:
    """Refuse outputs that are NaN or Inf, or a norm above 1: NaN or Inf parameter values
    (`args`), or gate matrices whose recurrences lost precision (they overflow for large
    displacements or squeezing at high cutoffs, first in complex64: |alpha| = 5 at cutoff 200
    gives NaN there, as in SF)."""
    bad = sorted(name for name, column in (args or {}).items() if not np.all(np.isfinite(column)))
    if bad:
        raise CvgenError(
            f"parameter {bad[0]!r} is NaN or Inf for samples in [{start}, {stop}) in params.h5, "
            f"so their outputs are too: the file was changed after prepare_params drew it; "
            f"delete params.h5 and rerun snakemake (draws are seeded: the same values come back)"
        )
    fix = (
        "set circuit.dtype: complex128, lower circuit.cutoff or narrow the parameter distributions"
        if dtype == "complex64"
        else "lower circuit.cutoff or narrow the parameter distributions"
    )
    for name, array in values.items():
        if not np.all(np.isfinite(array)):
            raise CvgenError(
                f"output {name!r} is NaN or Inf for samples in [{start}, {stop}): the gate "
                f"matrices lost precision ({dtype}); {fix}"
            )
    norm = values.get("norm")
    if norm is not None and np.max(norm) > 1 + NORM_EXCESS[dtype]:
        raise CvgenError(
            f"norm {float(np.max(norm)):.6g} > 1 for sample {start + int(np.argmax(norm))}: the "
            f"gate matrices lost precision ({dtype}), so every output of that state is wrong; "
            f"{fix}"
        )


def _process_start() -> float:
    """Unix time this process started, so start-up includes interpreter and imports.

    From /proc (start time in clock ticks since boot, against the uptime now: 10 ms
    resolution); psutil's create_time adds boot time rounded to whole seconds, up to 1 s off.
    """
    try:
        with open("/proc/self/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
        return time.time() - (uptime - started)
    except (OSError, ValueError, IndexError):
        import psutil

        return psutil.Process().create_time()
