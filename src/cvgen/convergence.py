"""How wrong is the cutoff? Re-run a few samples at a higher cutoff and measure how far they move.

Fock-space truncation is silent: a norm of 0.98 can hide errors of 0.05 in <x>. Every shard
re-runs a seeded subsample of its samples at `cutoff + extra_cutoff` and records, per sample and
output, the largest and the mean absolute deviation over the output's components. The reference
is itself truncated, so a deviation estimates the error of the dataset's cutoff by the part of it
that raising the cutoff by `extra_cutoff` removes (nearly all of it when errors fall quickly with
the cutoff).

`suggest_cutoff` runs the same comparison at rising cutoffs to find the smallest one that meets
a tolerance (`cvgen suggest-cutoff`).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from cvgen.engines.base import Engine
from cvgen.errors import CvgenError
from cvgen.noise import path_amplitudes
from cvgen.params import DrawnParameters
from cvgen.plan import DatasetPlan
from cvgen.sizes import amplitudes_per_sample
from cvgen.streams import CONVERGENCE_STREAM, stream

log = logging.getLogger(__name__)

CHECKABLE_OUTPUTS = ("quad_x", "quad_p", "mean_photon", "fock_probs")
DEFAULT_CHECKED = ("quad_x", "quad_p", "mean_photon")
SEARCH_STEPS = 12  # cutoffs a failing shard tries above the dataset's to suggest one
SEARCH_BUDGET = 2**24  # amplitudes per batch when searching for a cutoff (~130 MB at complex64)
# A re-run sample measures the truncation error only if its state keeps at least this much of
# its probability at the higher cutoff: below it both runs lost the state, and their outputs
# (of the truncated state, not renormalised) agree because both are near zero, not because
# the cutoff suffices.
MEASURABLE_NORM = 0.5


@dataclasses.dataclass(frozen=True)
class ConvergenceCheck:
    """One shard's check: which samples, at which cutoffs, and how far each output moved."""

    rows: np.ndarray  # dataset indices of the re-run samples
    norm: np.ndarray  # their norm at the dataset's cutoff
    reference_norm: np.ndarray  # their norm at the higher cutoff
    cutoff: int
    reference_cutoff: int
    max_deviation: dict[str, np.ndarray]  # per re-run sample: max |output - reference|
    mean_deviation: dict[str, np.ndarray]  # per re-run sample: mean over the output's components

    def worst(self) -> tuple[str, float]:
        """The output that moved most, and by how much."""
        name = max(self.max_deviation, key=lambda n: float(self.max_deviation[n].max()))
        return name, float(self.max_deviation[name].max())

    def unmeasured(self) -> int:
        """Re-run samples whose state is lost even at the higher cutoff (see MEASURABLE_NORM)."""
        return int(np.sum(~(self.reference_norm >= MEASURABLE_NORM)))

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for an HDF5 group: rows, norm, reference_norm, max_ and mean_{output}."""
        flat = {"rows": self.rows, "norm": self.norm, "reference_norm": self.reference_norm}
        flat.update({f"max_{name}": v for name, v in self.max_deviation.items()})
        flat.update({f"mean_{name}": v for name, v in self.mean_deviation.items()})
        return flat


def checked_outputs(outputs: list[str]) -> tuple[str, ...]:
    """The outputs a check compares: the dataset's own checkable ones, else <x>, <p> and <n>."""
    return tuple(name for name in outputs if name in CHECKABLE_OUTPUTS) or DEFAULT_CHECKED


def checked_rows(plan: DatasetPlan, start: int, stop: int) -> np.ndarray:
    """The seeded subsample of samples [start, stop) a shard re-runs (empty when switched off,
    and for engine gaussian, which is exact: no cutoff, nothing truncated)."""
    settings = plan.convergence
    size = stop - start
    if settings.fraction == 0 or plan.engine == "gaussian":
        return np.zeros(0, dtype=np.int64)
    count = min(size, max(settings.min_samples, math.ceil(settings.fraction * size)))
    rng = stream(plan.seed, CONVERGENCE_STREAM, start)
    return start + np.sort(rng.choice(size, count, replace=False)).astype(np.int64)


def outputs_at_cutoff(
    engine: Engine,
    cutoff: int,
    drawn: DrawnParameters,
    rows: np.ndarray,
    names: tuple[str, ...],
    budget: int,
) -> dict[str, np.ndarray]:
    """`names` (and norm) of samples `rows`, simulated by `engine`'s circuit at `cutoff` in
    batches of at most `budget` amplitudes (so a higher cutoff takes no more memory than the
    main run). The engine's compiled steps are reused: only the state size changes."""
    batch = int(min(len(rows), max(1, budget // sample_amplitudes(engine, cutoff))))
    other = engine.at_cutoff(cutoff, batch, outputs=(*names, "norm"))
    keyed = getattr(other, "keyed_by_row", False)  # trajectories: the same draws as the run
    parts = [
        other.observables(
            drawn.args_at(rows[i : i + batch]),
            len(rows[i : i + batch]),
            **({"rows": rows[i : i + batch]} if keyed else {}),
        )
        for i in range(0, len(rows), batch)
    ]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def sample_amplitudes(engine: Engine, cutoff: int) -> int:
    """Amplitudes one sample holds in `engine` at `cutoff`: its kets, or a lossy circuit's
    density matrix or trajectories (cvgen.noise.path_amplitudes)."""
    noise = getattr(engine, "noise", None)
    circuit = engine.circuit
    if noise is not None and noise.channels:
        return path_amplitudes(noise, circuit.modes, cutoff, circuit.truncation)
    return amplitudes_per_sample(circuit.modes, cutoff)


def deviations(
    values: dict[str, np.ndarray], reference: dict[str, np.ndarray], names, modes: int, cutoff: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per sample, the max and mean absolute deviation of each output from the reference.

    Fock probabilities are compared on the basis states both cutoffs share.
    """
    largest, mean = {}, {}
    for name in names:
        ours, theirs = np.asarray(values[name], np.float64), np.asarray(reference[name], np.float64)
        if name == "fock_probs":
            upper = round(theirs.shape[1] ** (1 / modes))
            box = theirs.reshape(len(theirs), *[upper] * modes)
            theirs = box[(slice(None), *[slice(0, cutoff)] * modes)].reshape(len(theirs), -1)
        difference = np.abs(ours - theirs).reshape(len(ours), -1)
        largest[name], mean[name] = difference.max(axis=1), difference.mean(axis=1)
    return largest, mean


def check_shard(
    plan: DatasetPlan,
    engine: Engine,
    drawn: DrawnParameters,
    outputs: dict[str, np.ndarray],
    start: int,
    stop: int,
) -> ConvergenceCheck | None:
    """Re-run the shard's seeded subsample at the higher cutoff and compare (None when off).

    Outputs the dataset already holds are compared as written; others (when the dataset keeps
    none of <x>, <p>, <n>, fock_probs) are computed at the dataset's cutoff too.
    """
    rows = checked_rows(plan, start, stop)
    if not len(rows):
        return None
    circuit = plan.circuit
    names = checked_outputs(plan.outputs)
    budget = plan.batch_size * sample_amplitudes(engine, circuit.cutoff)
    if all(name in outputs for name in names):
        values = {name: outputs[name][rows - start] for name in (*names, "norm")}
    else:
        values = outputs_at_cutoff(engine, circuit.cutoff, drawn, rows, names, budget)
    reference_cutoff = circuit.cutoff + plan.convergence.extra_cutoff
    reference = outputs_at_cutoff(engine, reference_cutoff, drawn, rows, names, budget)
    largest, mean = deviations(values, reference, names, circuit.modes, circuit.cutoff)
    return ConvergenceCheck(
        rows,
        np.asarray(values["norm"]),
        np.asarray(reference["norm"]),
        circuit.cutoff,
        reference_cutoff,
        largest,
        mean,
    )


def warn_or_fail(plan: DatasetPlan, message: str) -> None:
    """A truncation finding: one CvgenError with on_truncation: fail, else a warning."""
    if plan.on_truncation == "fail":
        raise CvgenError(message)
    log.warning("%s", message)


def enforce_tolerance(
    check: ConvergenceCheck, plan: DatasetPlan, engine: Engine, drawn: DrawnParameters
) -> None:
    """Warn, or fail with on_truncation: fail, when an output moved more than the tolerance.

    A failure searches for a cutoff that meets the tolerance on the shard's worst samples; a
    warning (repeated by every shard) leaves that search to `cvgen suggest-cutoff`.
    """
    tolerance = plan.convergence.tolerance
    lost = check.unmeasured()
    if lost:
        message = (
            f"convergence: not measurable: {lost} of {len(check.rows)} re-run samples keep less "
            f"than {MEASURABLE_NORM} of their probability even at cutoff {check.reference_cutoff} "
            f"(lowest norm {float(np.min(check.reference_norm)):.3g}), so the check cannot "
            f"measure their truncation error: the parameters drawn take the states out of the "
            f"Fock space; narrow the parameter distributions or raise circuit.cutoff"
        )
        warn_or_fail(plan, message)
        return
    name, worst = check.worst()
    if worst <= tolerance:
        log.info(
            "convergence: outputs move by at most %.2e (%s) from cutoff %d to %d on %d samples",
            *(worst, name, check.cutoff, check.reference_cutoff, len(check.rows)),
        )
        return
    sample = int(check.rows[np.argmax(check.max_deviation[name])])
    message = (
        f"convergence: {name} moves by up to {worst:.3g} (sample {sample}; mean "
        f"{float(check.mean_deviation[name].mean()):.3g}) from cutoff {check.cutoff} to "
        f"{check.reference_cutoff}, over convergence.tolerance {tolerance}"
    )
    if plan.on_truncation != "fail":
        log.warning(
            "%s; `cvgen suggest-cutoff --config CONFIG` finds a cutoff that meets it", message
        )
        return
    hardest = check.rows[np.argsort(-check.max_deviation[name])[:4]]
    found = suggest_cutoff(
        engine,
        drawn,
        hardest,
        tolerance,
        plan.convergence.extra_cutoff,
        range(check.cutoff + 1, check.cutoff + SEARCH_STEPS + 1),
    )
    suggestion = (
        f"raise circuit.cutoff to {found['cutoff']} (it meets the tolerance on this shard's "
        f"worst samples)"
        if found["cutoff"]
        else f"raise circuit.cutoff above {check.cutoff + SEARCH_STEPS}"
    )
    raise CvgenError(f"{message}: {suggestion}, or narrow the parameter distributions")


def suggest_cutoff(
    engine: Engine,
    drawn: DrawnParameters,
    rows: np.ndarray,
    tolerance: float,
    extra_cutoff: int,
    cutoffs,
) -> dict:
    """The smallest cutoff among `cutoffs` (rising) whose outputs move by at most `tolerance`
    when it is raised by `extra_cutoff`, on samples `rows` of `engine`'s circuit; with the
    table of every tried one."""
    names = DEFAULT_CHECKED
    modes = engine.circuit.modes
    cache: dict[int, dict[str, np.ndarray]] = {}

    def at(cutoff: int) -> dict[str, np.ndarray]:
        if cutoff not in cache:
            cache[cutoff] = outputs_at_cutoff(engine, cutoff, drawn, rows, names, SEARCH_BUDGET)
        return cache[cutoff]

    table = []
    for cutoff in cutoffs:
        largest, _ = deviations(at(cutoff), at(cutoff + extra_cutoff), names, modes, cutoff)
        worst = max(float(v.max()) for v in largest.values())
        table.append(
            {
                "cutoff": cutoff,
                "max_deviation": worst,
                "min_norm": float(at(cutoff)["norm"].min()),
                **{name: float(v.max()) for name, v in largest.items()},
            }
        )
        log.info(
            "cutoff %d: outputs move by up to %.2e against cutoff %d",
            *(cutoff, worst, cutoff + extra_cutoff),
        )
        if worst <= tolerance:
            return {"cutoff": cutoff, "table": table}
    return {"cutoff": None, "table": table}


def suggest_for_config(
    plan: DatasetPlan, tolerance: float | None, samples: int, first_cutoff: int, last_cutoff: int
) -> dict:
    """`suggest_cutoff` for a dataset plan, on `samples` seeded samples of its dataset (the
    plan's engine, backend, truncation and extra_cutoff; its tolerance unless one is given)."""
    from cvgen.circuits import compile_circuit
    from cvgen.engines import make_engine
    from cvgen.params import draw_plan_parameters

    if plan.engine == "gaussian":
        raise CvgenError(
            "engine gaussian simulates this circuit exactly, with no cutoff: nothing to suggest"
        )
    if first_cutoff < 2 or last_cutoff < first_cutoff:
        raise CvgenError(
            f"cutoffs {first_cutoff}..{last_cutoff} are no range; give 2 <= --from <= --to"
        )
    circuit = compile_circuit(plan.circuit) if plan.engine == "compiled" else plan.circuit
    drawn = draw_plan_parameters(plan)
    engine = make_engine(
        plan.engine, circuit, 1, drawn.circuit_names, DEFAULT_CHECKED, plan.backend
    )
    rng = stream(plan.seed, CONVERGENCE_STREAM)
    rows = np.sort(rng.choice(plan.n_samples, min(samples, plan.n_samples), replace=False))
    tolerance = plan.convergence.tolerance if tolerance is None else tolerance
    extra = plan.convergence.extra_cutoff
    found = suggest_cutoff(
        engine, drawn, rows, tolerance, extra, range(first_cutoff, last_cutoff + 1)
    )
    return {**found, "tolerance": tolerance, "extra_cutoff": extra, "samples": len(rows)}


def render_suggestion(found: dict) -> str:
    """The table of tried cutoffs and the verdict, for the terminal."""
    names = DEFAULT_CHECKED
    lines = [
        f"max |change| of each output when the cutoff is raised by {found['extra_cutoff']}, on "
        f"{found['samples']} seeded samples (tolerance {found['tolerance']:g})",
        " ".join(f"{h:>12}" for h in ("cutoff", *names, "min norm")),
    ]
    for row in found["table"]:
        values = [f"{row[name]:12.3e}" for name in names]
        lines.append(f"{row['cutoff']:>12} {' '.join(values)} {row['min_norm']:12.6f}")
    if found["cutoff"]:
        lines.append(f"suggested cutoff: {found['cutoff']}")
    return "\n".join(lines)
