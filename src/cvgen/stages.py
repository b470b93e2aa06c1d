"""The workflow's stages as plain functions; each reads only the files the stage before wrote.

prepare_params(config) -> params.h5 -> generate_shard(i) -> shards/i.h5 -> aggregate -> dataset.h5
-> build_report -> report.{json,md} + plots. Rules, command line and tests all call these.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from cvgen.circuits import circuit_from_config
from cvgen.config import config_hash, shard_ranges, total_samples, validate_config
from cvgen.convergence import check_shard, enforce_tolerance
from cvgen.errors import CvgenError
from cvgen.memory import fitted_batch_size
from cvgen.params import draw_dataset_parameters
from cvgen.provenance import provenance_attrs
from cvgen.sampling import SAMPLING_OUTPUTS, Sampler, combine_summaries, sampling_spec
from cvgen.shards import ParamsFile, Shard, read_params_file, write_params_file, write_shard

log = logging.getLogger(__name__)

GRID_TOLERANCE = 1e-3  # homodyne grid errors above this are worth a warning


def prepare_params(config: dict, output: str | Path) -> ParamsFile:
    """Draw every free-parameter value of a config and write params.h5 (config stored in full)."""
    config = validate_config(config)
    circuit = circuit_from_config(config)
    drawn = draw_dataset_parameters(config, circuit.parameter_names)
    params = ParamsFile(config, config_hash(config), circuit.blackbird_text, drawn)
    write_params_file(output, params, provenance_attrs())
    log.info(
        "drew %d per-circuit x %d circuits and %d per-sample x %d samples -> %s",
        len(drawn.circuit_names),
        config["n_circuits"],
        len(drawn.sample_names),
        total_samples(config),
        output,
    )
    return params


def generate_shard(params_path: str | Path, index: int, output: str | Path, threads: int = 1):
    """Simulate shard `index` of the dataset in batches in this one process; write its file."""
    from cvgen.engines import configure_tensorflow, make_engine

    process_start = _process_start()
    params = read_params_file(params_path)
    config = params.config
    ranges = shard_ranges(config)
    if not 0 <= index < len(ranges):
        raise CvgenError(
            f"shard {index} does not exist: this dataset has shards 0..{len(ranges) - 1}"
        )
    start, stop = ranges[index]
    clock = time.perf_counter()
    tf = configure_tensorflow(threads)
    import strawberryfields  # noqa: F401  (timed here: SF's import is a large part of start-up)

    import_s = time.perf_counter() - clock
    circuit = circuit_from_config(config, params.blackbird_text)
    batch_size = fitted_batch_size(config, circuit)
    engine = make_engine(
        config["engine"],
        circuit,
        batch_size,
        shared_names=params.drawn.circuit_names,
        outputs=[name for name in config["outputs"] if name not in SAMPLING_OUTPUTS],
    )
    spec = sampling_spec(config, circuit.modes)
    sampler = spec and Sampler(spec, circuit.modes, circuit.cutoff, circuit.dtype, config["seed"])
    startup_s = time.time() - process_start
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    log.info(
        "shard %d: samples [%d, %d), engine %s, batch %d, %d TF threads; start-up %.2f s "
        "(TF+SF import %.2f s)",
        *(index, start, stop, engine.name, batch_size, threads, startup_s, import_s),
    )
    outputs, summaries, first_batch_s, compute_s = _simulate(
        engine, sampler, params, (start, stop), batch_size, index
    )
    truncated = _check_truncation(outputs["norm"], start, config)
    if sampler:
        _check_grid(summaries, config)
    clock = time.perf_counter()
    check = check_shard(config, circuit, params.drawn, outputs, start, stop, batch_size)
    if check:
        enforce_tolerance(check, config, circuit, params.drawn)
    convergence_s = time.perf_counter() - clock
    first_count = min(batch_size, stop - start)
    attrs = {
        **provenance_attrs(),
        "config_hash": params.config_hash,
        "engine": engine.name,
        "batch_size": batch_size,
        "threads": threads,
        "seed": config["seed"],
        "process_start_unix": process_start,
        "import_s": import_s,
        "startup_s": startup_s,
        "first_batch_s": first_batch_s,
        "first_batch_samples": first_count,
        "steady_s": compute_s - first_batch_s,
        "steady_samples": (stop - start) - first_count,
        "compute_s": compute_s,
        "norm_below_threshold": truncated,
        "convergence_s": convergence_s,
        "finished_unix": time.time(),  # computing done; the write follows
    }
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
        *(index, output, (stop - start) / (attrs["finished_unix"] - process_start)),
    )
    return shard


def _simulate(engine, sampler, params: ParamsFile, rows: tuple[int, int], batch_size: int, index):
    """Run samples [start, stop) in batches (and draw their outcomes, with a sampler).

    Returns the outputs, the summaries of the sampled distributions, and the first-batch and
    total seconds.
    """
    start, stop = rows
    batches = []
    summaries: dict[str, np.ndarray] = {}
    first_batch_s = 0.0
    clock = time.perf_counter()
    for batch_start in range(start, stop, batch_size):
        batch_stop = min(batch_start + batch_size, stop)
        args = params.drawn.batch_args(batch_start, batch_stop)
        if sampler:
            kets, values = engine.evaluate(args, batch_stop - batch_start)
            samples, batch_summaries = sampler.sample(kets, batch_start)
            values.update(samples)
            summaries = combine_summaries(summaries, batch_summaries)
        else:
            values = engine.observables(args, batch_stop - batch_start)
        _check_finite(values, batch_start, batch_stop)
        batches.append(values)
        if batch_start == start:
            first_batch_s = time.perf_counter() - clock
        done = batch_stop - start
        rate = done / (time.perf_counter() - clock)
        log.info("shard %d: %d/%d samples, %.1f samples/s", index, done, stop - start, rate)
    outputs = {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}
    return outputs, summaries, first_batch_s, time.perf_counter() - clock


def _check_truncation(norm: np.ndarray, start: int, config: dict) -> int:
    """Count samples whose norm is below norm_threshold; warn, or fail with on_truncation: fail."""
    threshold = config["norm_threshold"]
    truncated = int(np.sum(norm < threshold))
    if truncated:
        worst = int(np.argmin(norm))
        message = (
            f"{truncated} samples keep less than norm_threshold {threshold} of their probability "
            f"inside the cutoff (lowest {norm[worst]:.6f}, sample {start + worst}); raise "
            f"circuit.cutoff or narrow the parameter distributions"
        )
        if config["on_truncation"] == "fail":
            raise CvgenError(message)
        log.warning("%s", message)
    return truncated


def _check_grid(summaries: dict[str, np.ndarray], config: dict) -> None:
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


def _check_finite(values: dict[str, np.ndarray], start: int, stop: int) -> None:
    for name, array in values.items():
        if not np.all(np.isfinite(array)):
            raise CvgenError(
                f"output {name!r} is NaN or Inf for samples in [{start}, {stop}): the cutoff is "
                f"likely too low for the parameters drawn; raise circuit.cutoff or narrow the "
                f"parameter distributions"
            )


def _process_start() -> float:
    """Unix time this process started, so start-up includes interpreter and imports."""
    import psutil

    return psutil.Process().create_time()
