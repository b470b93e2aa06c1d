"""The dataset plan: every fact derived from a config, derived once and passed on as a value.

`build_plan(config)` validates the config (schema, defaults, cross-key checks) and derives the
circuit, the sampling spec, the shard ranges, the backend (with the cost model's reason), the
batch size jobs actually use (after the memory budget), and each job's memory, time limit and
threads. The Snakefile builds it once; prepare_params stores it in params.h5 with the circuit's
op list; jobs, aggregation, the report and the convergence check read it from there and never
re-derive a fact from the raw config.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from cvgen.circuits import (
    CircuitSpec,
    check_engine,
    choose_engine,
    circuit_from_config,
    circuit_from_dict,
    has_channels,
)
from cvgen.config import apply_schema, config_hash, read_config, shard_ranges, total_samples
from cvgen.conventions import SAMPLING_OUTPUTS, complex_bytes
from cvgen.engines.cost import choose_backend
from cvgen.errors import CvgenError
from cvgen.memory import fitted_batch_size, job_memory_mb
from cvgen.noise import NoisePlan, noise_plan
from cvgen.params import assign_distributions
from cvgen.resources import shard_runtime_minutes, shard_threads
from cvgen.sampling import SamplingSpec, sampling_spec
from cvgen.sizes import log2_basis_size
from cvgen.splits import split_fractions

__all__ = [
    "MAX_SAMPLES",
    "MAX_SHARDS",
    "ConvergenceSettings",
    "DatasetPlan",
    "build_plan",
    "load_config",
    "plan_from_json",
    "validate_config",
]


# Documented in the schema (shard_size, n_circuits, samples_per_circuit).
MAX_SHARDS = 10_000  # generation jobs: beyond, building the job graph takes minutes and GBs
MAX_SAMPLES = 2**40  # samples in a dataset: every count stays far inside int64 and float64


@dataclass(frozen=True)
class ConvergenceSettings:
    """The truncation check: which fraction of a shard is re-run, how much higher, tolerance."""

    fraction: float
    min_samples: int
    extra_cutoff: int
    tolerance: float


@dataclass(frozen=True)
class DatasetPlan:
    """What a dataset build does, derived once from its validated config."""

    config: dict  # the validated config, defaults filled (stored with every file)
    config_hash: str
    dataset: str
    seed: int
    engine: str  # the engine jobs run (engine: auto resolved)
    engine_reason: str
    backend: str  # numpy or tensorflow: the array namespace jobs run on
    backend_reason: str
    circuit: CircuitSpec  # with its op list once prepare_params compiled it
    outputs: tuple[str, ...]
    computed_outputs: tuple[str, ...]  # what the engine computes (not sampled)
    sampling: SamplingSpec | None
    n_circuits: int
    samples_per_circuit: int
    n_samples: int
    shards: tuple[tuple[int, int], ...]
    configured_batch_size: int
    batch_size: int  # what jobs use: configured, or smaller to fit memory_budget_mb
    memory_mb: int  # estimated peak of one generation job at batch_size
    runtime_minutes: int
    threads: int
    convergence: ConvergenceSettings
    norm_threshold: float
    on_truncation: str
    max_photons: int  # engine gaussian: the photon-number samples' ceiling
    split: dict[str, float] | None = None  # circuits' train/val/test fractions (cvgen.splits)
    # Circuits with channels or imperfect detectors (compiled engine): the path that runs and
    # why, trajectories, the detector model (cvgen.noise); None for pure circuits.
    noise: NoisePlan | None = None

    def shard(self, index: int) -> tuple[int, int]:
        """Sample range [start, stop) of shard `index`; a shard that does not exist is refused."""
        if not 0 <= index < len(self.shards):
            raise CvgenError(
                f"shard {index} does not exist: this dataset has shards 0..{len(self.shards) - 1}"
            )
        return self.shards[index]

    def with_circuit(self, circuit: CircuitSpec) -> DatasetPlan:
        return dataclasses.replace(self, circuit=circuit)

    def to_json(self) -> str:
        """The plan as JSON text (params.h5 stores it; `plan_from_json` reads it)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["circuit"] = self.circuit.to_dict()
        values["sampling"] = None if self.sampling is None else dataclasses.asdict(self.sampling)
        values["convergence"] = dataclasses.asdict(self.convergence)
        values["noise"] = None if self.noise is None else dataclasses.asdict(self.noise)
        return json.dumps(values, sort_keys=True)


def plan_from_json(text: str) -> DatasetPlan:
    """The plan `DatasetPlan.to_json` wrote."""
    values = json.loads(text)
    values["circuit"] = circuit_from_dict(values["circuit"])
    if values["sampling"] is not None:
        spec = values["sampling"]
        spec.update(outputs=tuple(spec["outputs"]), angles=tuple(spec["angles"]))
        values["sampling"] = SamplingSpec(**spec)
    values["convergence"] = ConvergenceSettings(**values["convergence"])
    if values.get("noise") is not None:
        values["noise"] = NoisePlan(**values["noise"])
    for key in ("outputs", "computed_outputs"):
        values[key] = tuple(values[key])
    values["shards"] = tuple(tuple(shard) for shard in values["shards"])
    return DatasetPlan(**values)


def build_plan(config: dict | None) -> DatasetPlan:
    """Validate `config` and derive its plan; the first problem is one CvgenError naming it."""
    config = apply_schema(config)
    _check_values(config)
    config["split"] = split_fractions(config["split"], config["n_circuits"])
    circuit = circuit_from_config(config)
    engine, engine_reason = choose_engine(config["engine"], circuit)
    if engine == "sf" and circuit.truncation == "total":
        raise CvgenError(
            "circuit.truncation total needs the compiled engine (SF truncates each mode): "
            "set engine: compiled or truncation: per_mode"
        )
    if circuit.ops is not None and engine != "gaussian":
        raise CvgenError(
            f"circuit.template gbs needs engine gaussian (or auto), not {engine}: its circuit "
            f"has too many modes for Fock-basis engines"
        )
    check_engine(circuit, engine)
    noise = _noise(config, engine, circuit)
    _check_outputs(config, engine, circuit)
    if engine != "gaussian":
        _check_state_size(config, circuit)
    spec = sampling_spec(config, circuit.modes)
    # Rules other than the defaults must each match a parameter, so a typo is an error; the
    # defaults (config.yaml's too) may match nothing: a circuit without parameters needs none.
    defaults = config["parameters"] == apply_schema({})["parameters"]
    assign_distributions(circuit.parameter_names, config["parameters"], all_used=not defaults)
    shards = tuple(shard_ranges(config))
    largest = max(stop - start for start, stop in shards)
    backend, reason = choose_backend(
        config["backend"], engine, circuit, largest, config["batch_size"]
    )
    noise = _noise_on_backend(noise, backend, circuit, config)
    batch_size = fitted_batch_size(config, circuit, backend, noise)
    memory_mb = job_memory_mb(config, batch_size, circuit, backend, noise)
    settings = config["convergence"]
    return DatasetPlan(
        config=config,
        config_hash=config_hash(config),
        dataset=config["dataset"],
        seed=config["seed"],
        engine=engine,
        engine_reason=engine_reason,
        backend=backend,
        backend_reason=reason,
        circuit=circuit,
        outputs=tuple(config["outputs"]),
        computed_outputs=tuple(n for n in config["outputs"] if n not in SAMPLING_OUTPUTS),
        sampling=spec,
        n_circuits=config["n_circuits"],
        samples_per_circuit=config["samples_per_circuit"],
        n_samples=total_samples(config),
        shards=shards,
        configured_batch_size=config["batch_size"],
        batch_size=batch_size,
        memory_mb=memory_mb,
        runtime_minutes=shard_runtime_minutes(config, circuit, batch_size),
        threads=shard_threads(config, memory_mb),
        convergence=ConvergenceSettings(**settings),
        norm_threshold=config["norm_threshold"],
        on_truncation=config["on_truncation"],
        max_photons=config["sampling"]["max_photons"],
        split=config["split"],
        noise=noise,
    )


# Per-mode truncation holds a density matrix of M modes as a doubled state of 2M + 1 axes
# (cvgen.engines.noisy). TensorFlow slices at most 8 axes and cannot broadcast both operands of
# a product in 7 (a cross-Kerr gate's phases on non-neighbouring wires of 3 modes fail), so TF
# runs it up to 2. Total truncation holds it as a matrix [S, S * B]: any number of modes.
TF_DENSITY_MODES = 2


def _noise_on_backend(
    noise: NoisePlan | None, backend: str, circuit: CircuitSpec, config: dict
) -> NoisePlan | None:
    """The noise plan once the backend is known: TensorFlow holds per-mode density matrices of
    at most TF_DENSITY_MODES modes; `auto` then takes trajectories, an explicit choice is
    refused."""
    if noise is None or noise.method != "density_matrix" or backend != "tensorflow":
        return noise
    if circuit.modes <= TF_DENSITY_MODES or circuit.truncation == "total":
        return noise
    if (config.get("noise") or {}).get("method") == "density_matrix":
        raise CvgenError(
            f"noise.method density_matrix on backend tensorflow holds at most "
            f"{TF_DENSITY_MODES} modes with per-mode truncation (a density matrix of "
            f"{circuit.modes} modes is held in {2 * circuit.modes + 1} axes, more than TF's "
            f"kernels handle): set backend: numpy, circuit.truncation: total or noise.method: "
            f"trajectories"
        )
    reason = (
        f"backend tensorflow holds per-mode density matrices of at most {TF_DENSITY_MODES} "
        f"modes: trajectories"
    )
    return dataclasses.replace(noise, method="trajectories", reason=reason)


def _noise(config: dict, engine: str, circuit: CircuitSpec) -> NoisePlan | None:
    """The noise settings of the plan's engine: the compiled engine runs channels and the
    detector model; other engines refuse what they cannot run, naming the fix."""
    channels = has_channels(circuit)
    if engine == "compiled":
        return noise_plan(config, circuit, channels, config["memory_budget_mb"])
    if channels and engine == "sf":
        raise CvgenError(
            "the circuit applies LossChannel or ThermalLossChannel, which engine sf cannot run "
            "(its outputs come from one pure ket per sample): use engine: compiled (density "
            "matrices or trajectories) or engine: auto"
        )
    detector = config["sampling"].get("detector") or {}
    if detector.get("efficiency", 1.0) != 1.0 or detector.get("dark_counts", 0.0) != 0.0:
        raise CvgenError(
            f"sampling.detector needs engine compiled, not {engine}: for engine gaussian put "
            f"the efficiency in the circuit (LossChannel before detection, or the gbs "
            f"template's transmissivity); reset sampling.detector to its defaults"
        )
    return None


def validate_config(config: dict) -> dict:
    """A copy of `config` validated (schema, defaults, every cross-key check of the plan)."""
    return build_plan(config).config


def _check_values(config: dict) -> None:
    """Cross-key checks the schema cannot express."""
    total = total_samples(config)
    if total > MAX_SAMPLES:
        raise CvgenError(
            f"n_circuits * samples_per_circuit is {total} samples, over the limit of "
            f"{MAX_SAMPLES} (2^40): lower n_circuits or samples_per_circuit"
        )
    if config["shard_size"] > total:
        raise CvgenError(
            f"shard_size {config['shard_size']} is larger than the dataset ({total} samples): "
            f"set shard_size <= n_circuits * samples_per_circuit"
        )
    jobs = -(-total // config["shard_size"])
    if jobs > MAX_SHARDS:
        raise CvgenError(
            f"shard_size {config['shard_size']} makes {jobs} generation jobs for {total} "
            f"samples, over the limit of {MAX_SHARDS} (building the job graph alone would take "
            f"minutes and gigabytes): set shard_size to at least {-(-total // MAX_SHARDS)}"
        )
    for index, rule in enumerate(config["parameters"]):
        if rule["distribution"] == "uniform" and rule["low"] > rule["high"]:
            raise CvgenError(
                f"parameters[{index}] (match {rule['match']!r}): low > high; swap them"
            )


def _check_outputs(config: dict, engine: str, circuit: CircuitSpec) -> None:
    """Outputs the engine cannot give: the Gaussian state's means and cov from Fock engines,
    fock_probs of more basis states than the Gaussian engine lists."""
    from cvgen.engines.gaussian import MAX_FOCK_PROBS

    outputs = config["outputs"]
    if engine != "gaussian":
        exact_only = [name for name in ("means", "cov") if name in outputs]
        if exact_only:
            raise CvgenError(
                f"output {exact_only[0]} is the Gaussian state's and needs engine gaussian, but "
                f"engine {engine} runs this circuit ({', '.join(circuit.op_names)}); remove it"
            )
        return
    if "fock_probs" in outputs and circuit.cutoff**circuit.modes > MAX_FOCK_PROBS:
        raise CvgenError(
            f"fock_probs of {circuit.modes} modes at cutoff {circuit.cutoff} lists "
            f"{circuit.cutoff}^{circuit.modes} probabilities per sample, over the Gaussian "
            f"engine's {MAX_FOCK_PROBS} (each is a hafnian): lower circuit.cutoff, or use "
            f"fock_samples or threshold_samples"
        )


def _check_state_size(config: dict, circuit: CircuitSpec) -> None:
    """Refuse a circuit whose one sample's state (at the cutoff, or at the truncation check's
    higher cutoff) cannot fit memory_budget_mb, before any size is computed exactly: the basis
    of a large circuit is a number with thousands of digits, and building it takes minutes."""
    budget = config["memory_budget_mb"]
    # log2 of the amplitudes the budget holds
    room = math.log2(budget * 2**20 / complex_bytes(circuit.dtype))
    check = config["convergence"]
    cutoffs = [("circuit.cutoff", circuit.cutoff)]
    if check["fraction"] > 0:
        cutoffs.append(("convergence.extra_cutoff", circuit.cutoff + check["extra_cutoff"]))
    for key, cutoff in cutoffs:
        states = log2_basis_size(circuit.modes, cutoff, circuit.truncation)
        if states > room:
            shown = f"2^{states:.0f}" if states > 40 else f"{round(2**states)}"
            raise CvgenError(
                f"{circuit.modes} modes at cutoff {cutoff} ({circuit.truncation} truncation) keep "
                f"{shown} basis states per sample, more than memory_budget_mb {budget} holds "
                f"at {circuit.dtype} even for one sample: lower {key} or the number of modes, or "
                f"raise memory_budget_mb"
            )


def load_config(path) -> dict:
    """A YAML config file, validated (see validate_config)."""
    return validate_config(read_config(path))
