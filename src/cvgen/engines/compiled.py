"""The compiled engine: cvgen's op list run batch by batch on numpy or TensorFlow.

SF's TF backend builds every gate matrix per batch element in a Python loop and cannot be traced.
Here each op of the circuit's op list (cvgen.program) becomes a step that
  - builds its matrix with vectorised kernels (cvgen.engines.gates): per batch for per-sample
    parameters, once per circuit for parameters shared by the batch (cached);
  - is applied by the truncation strategy: per mode (cvgen.engines.per_mode) or total photon
    number (cvgen.engines.total_photon), both by structure, never as a dense matrix.
Observables are computed from the state in the same batch function. On TensorFlow that function
is traced once per engine (`trace_s` measures it); on numpy it runs as written.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np

from cvgen.circuits import CircuitSpec
from cvgen.conventions import COMPUTED_OUTPUTS, real_dtype
from cvgen.engines import gates
from cvgen.engines.backend import NUMPY
from cvgen.engines.base import padded
from cvgen.engines.per_mode import PerModeTruncation
from cvgen.engines.total_photon import TotalPhotonTruncation
from cvgen.program import Op, evaluate, names_in

__all__ = ["ACTIONS", "CompiledEngine", "Step", "compile_steps"]

log = logging.getLogger(__name__)

# Op -> (matrix builder in cvgen.engines.gates, how it acts: single, diagonal, two, passive (a
# two-mode gate conserving n1 + n2), diagonal2).
ACTIONS = {
    "Dgate": (gates.displacement, "single"),
    "Sgate": (gates.squeezing, "single"),
    "Vgate": (gates.cubic_phase, "single"),
    "Rgate": (gates.rotation_phases, "diagonal"),
    "Kgate": (gates.kerr_phases, "diagonal"),
    "BSgate": (gates.beamsplitter, "passive"),
    "MZgate": (gates.mach_zehnder, "passive"),
    "S2gate": (gates.two_mode_squeezing, "two"),
    "CKgate": (gates.cross_kerr_phases, "diagonal2"),
}
TRUNCATIONS = {"per_mode": PerModeTruncation, "total": TotalPhotonTruncation}


@dataclass(frozen=True)
class Step:
    """One gate of the compiled circuit, with the diagonal gates fused into it."""

    op: Op
    build: object  # a function of cvgen.engines.gates
    action: str
    names: frozenset[str]  # free parameters it depends on
    shared: bool  # depends on per-circuit parameters and constants only
    before: tuple[Step, ...] = ()  # diagonal gates on its wire applied just before it
    after: tuple[Step, ...] = ()  # ... and just after it

    @property
    def wires(self) -> tuple[int, ...]:
        return self.op.wires


def compile_steps(ops: tuple[Op, ...], shared_names: set[str]) -> list[Step]:
    """The engine's steps for an op list, one per op."""
    steps = []
    for op in ops:
        build, action = ACTIONS[op.name]
        names = frozenset().union(*(names_in(arg) for arg in op.args))
        steps.append(Step(op, build, action, names, names <= shared_names))
    return steps


def fuse_diagonals(steps: list[Step]) -> list[Step]:
    """Steps with each per-circuit single-mode diagonal gate (Rgate, Kgate) folded into the
    per-circuit single-mode gate next to it on its wire: diag(phases) M scales M's rows,
    M diag(phases) its columns, so the state is not swept once more for the phases alone."""
    fused: list[Step] = []
    pending: dict[int, list[Step]] = {}  # wire -> diagonal gates waiting for the next gate
    for step in steps:
        single = step.action in ("single", "diagonal") and step.shared
        if step.action == "diagonal" and single:
            (wire,) = step.wires
            previous = _last_on(fused, wire)
            if (
                previous is not None
                and fused[previous].action == "single"
                and fused[previous].shared
            ):
                fused[previous] = dataclasses.replace(
                    fused[previous], after=(*fused[previous].after, step)
                )
                continue
            pending.setdefault(wire, []).append(step)
            continue
        for wire in step.wires:
            waiting = pending.pop(wire, [])
            if waiting and step.action == "single" and step.shared:
                step = dataclasses.replace(step, before=(*waiting, *step.before))
            else:
                fused += waiting
        fused.append(step)
    return fused + [step for waiting in pending.values() for step in waiting]


def _last_on(steps: list[Step], wire: int) -> int | None:
    """Index of the last step acting on `wire`, if any."""
    return next((i for i in range(len(steps) - 1, -1, -1) if wire in steps[i].wires), None)


def leading_single_mode(steps: list[Step], modes: int) -> dict[int, list[int]]:
    """For every wire, the single-mode steps on it before any multi-mode gate touches it: they
    act on the vacuum of their own mode, so their result is a product state."""
    leading: dict[int, list[int]] = {wire: [] for wire in range(modes)}
    entangled: set[int] = set()
    for index, step in enumerate(steps):
        if len(step.wires) == 1 and step.wires[0] not in entangled:
            leading[step.wires[0]].append(index)
        else:
            entangled.update(step.wires)
    return leading


class CompiledEngine:
    """Runs a circuit's op list in batches of `batch_size` on the array namespace `xp`.

    `shared_names` are the parameters constant across a circuit (per_circuit): gates depending
    only on them are built once per circuit and reused for every batch.
    """

    name = "compiled"

    def __init__(
        self,
        circuit: CircuitSpec,
        batch_size: int,
        shared_names=(),
        outputs=COMPUTED_OUTPUTS,
        xp=NUMPY,
        steps: list[Step] | None = None,
    ):
        if circuit.ops is None:
            raise ValueError("the compiled engine needs the circuit's op list (compile_circuit)")
        self.circuit, self.batch_size, self.xp = circuit, batch_size, xp
        self.outputs = tuple(outputs)
        self.shared_names = tuple(shared_names)
        if steps is None:
            steps = fuse_diagonals(compile_steps(circuit.ops, set(shared_names)))
        self.steps = steps
        used = set().union(*(s.names for s in self.steps))
        self.sample_names = tuple(sorted(used - set(shared_names)))
        # Per-circuit values that per-sample gates also take (e.g. Dgate(input, phase)).
        per_sample_uses = set().union(*(s.names for s in self.steps if not s.shared))
        self._broadcast_names = [n for n in self.shared_names if n in per_sample_uses]
        truncation = self.truncation_class(circuit.truncation)
        self.truncation = truncation(
            self.steps, circuit.modes, circuit.cutoff, batch_size, circuit.dtype, xp
        )
        # Gates on the vacuum of their own mode start the state as a product (per-mode only).
        self._leading = (
            leading_single_mode(self.steps, circuit.modes)
            if hasattr(self.truncation, "product_state")
            else {}
        )
        self._absorbed = {index for indices in self._leading.values() for index in indices}
        self.trace_s = 0.0
        self._shared_key: bytes | None = None
        self._shared_tensors = None
        self._run_batch = None  # traced with the shapes of the first circuit's shared tensors
        log.debug(
            "compiled engine on %s: %d steps (%d built once per circuit), %d modes, %s "
            "truncation at cutoff %d, batch %d",
            *(xp.name, len(self.steps), sum(s.shared for s in self.steps), circuit.modes),
            *(circuit.truncation, circuit.cutoff, batch_size),
        )

    @property
    def backend(self) -> str:
        return self.xp.name

    def truncation_class(self, name: str):
        """The strategy holding the state (cvgen.engines.noisy's density path replaces it)."""
        return TRUNCATIONS[name]

    def at_cutoff(self, cutoff: int, batch_size: int | None = None, outputs=None) -> CompiledEngine:
        """The same circuit and steps at another cutoff (the convergence check's reference):
        nothing is recompiled; on TF only the batch function is traced again."""
        circuit = dataclasses.replace(self.circuit, cutoff=cutoff)
        return CompiledEngine(
            circuit,
            batch_size or self.batch_size,
            self.shared_names,
            self.outputs if outputs is None else outputs,
            self.xp,
            steps=self.steps,
        )

    def describe(self) -> dict:
        """What this engine runs, for logs, shards and the report."""
        return {
            "engine": self.name,
            "backend": self.backend,
            "truncation": self.circuit.truncation,
            "steps": len(self.steps),
            "shared_steps": sum(s.shared for s in self.steps),
            "basis_states": self.truncation.basis_size(),
            "trace_s": self.trace_s,
        }

    def kets(self, args: dict[str, np.ndarray], count: int):
        """Output kets [count, D, ..., D] for `count` samples, as the backend's arrays."""
        return self.evaluate(args, count, kets=True)[0]

    def observables(self, args: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        """The engine's outputs for `count` samples as numpy arrays."""
        return self.evaluate(args, count)[1]

    def evaluate(self, args: dict[str, np.ndarray], count: int, kets: bool = True):
        """Output kets (or None without `kets`) and the outputs as numpy arrays, from one run.

        A batch may straddle two circuits: it runs in groups sharing one circuit.
        """
        xp = self.xp
        shared = np.stack([args[n][:count] for n in self.shared_names] or [np.zeros(count)], 1)
        changes = np.flatnonzero(np.any(shared[1:] != shared[:-1], axis=1)) + 1
        bounds = [0, *changes.tolist(), count]
        states, results = [], []
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            state, outputs = self._run(args, start, stop, shared[start, : len(self.shared_names)])
            results.append({n: xp.numpy(v)[: stop - start] for n, v in outputs.items()})
            if kets:
                states.append(self.truncation.kets(state)[: stop - start])
        outputs = {n: np.concatenate([r[n] for r in results]) for n in self.outputs}
        return (xp.concat(states, axis=0) if kets else None), outputs

    def _run(self, args, start: int, stop: int, shared_values: np.ndarray):
        xp, real = self.xp, real_dtype(self.circuit.dtype)
        key = shared_values.tobytes()
        if key != self._shared_key:
            self._shared_tensors = self._shared(shared_values.astype(real))
            self._shared_key = key
        columns = [padded(args[n][start:stop], self.batch_size) for n in self.sample_names]
        values = np.stack(columns, axis=1) if columns else np.zeros((self.batch_size, 0))
        batch_values = xp.asarray(values, real)
        circuit_values = xp.asarray(shared_values, real)
        if self._run_batch is None:
            self._run_batch = self._trace(batch_values, circuit_values)
        return self._run_batch(batch_values, circuit_values, self._shared_tensors)

    def _trace(self, batch_values, circuit_values):
        """The batch function; on TF traced here, once, for these shapes (timed: trace_s)."""
        xp = self.xp
        signature = [
            xp.spec(xp.shape(batch_values), real_dtype(self.circuit.dtype)),
            xp.spec(xp.shape(circuit_values), real_dtype(self.circuit.dtype)),
            [[xp.spec(xp.shape(t), self.circuit.dtype) for t in ts] for ts in self._shared_tensors],
        ]
        function = xp.function(self._batch, signature if xp.name != "numpy" else None)
        if xp.name == "numpy":
            return function
        clock = time.perf_counter()
        function.get_concrete_function()
        self.trace_s = time.perf_counter() - clock
        return function

    def _shared(self, shared_values: np.ndarray):
        """Prepared tensors of the gates that depend only on per-circuit parameters.

        Their matrices are built with numpy whatever the backend, then handed over: on TF a
        traced function of these recurrences (thousands of tiny ops) took seconds to optimise
        on its first call, where numpy builds them in milliseconds, once per circuit.
        """
        values = {n: shared_values[j : j + 1] for j, n in enumerate(self.shared_names)}
        dtype = self.circuit.dtype
        return [
            self.truncation.prepare(
                index, self.xp.asarray(self._matrix(step, values, 1, NUMPY), dtype)
            )
            for index, step in enumerate(self.steps)
            if step.shared
        ]

    def _batch(self, sample_values, shared_values, shared_tensors):
        """One batch: vacuum, every gate, then the state and its observables."""
        xp, batch = self.xp, self.batch_size
        values = {n: sample_values[:, j] for j, n in enumerate(self.sample_names)}
        values.update(
            {n: xp.broadcast_to(shared_values[j], [batch]) for j, n in enumerate(self.shared_names)}
        )
        shared = iter(shared_tensors)
        tensors = [
            next(shared) if step.shared else None
            for step in self.steps  # per-sample ones are built where they are applied
        ]
        state = self._initial(values, tensors)
        for index, step in enumerate(self.steps):
            if index in self._absorbed:
                continue
            # Per-sample matrices are built here and held only while applied.
            prepared = tensors[index] if step.shared else self._prepared(state, index, values)
            state = self.truncation.apply(state, index, prepared)
        return state, self.truncation.observables(state, self.outputs)

    def _prepared(self, state, index: int, values: dict) -> list:
        """The prepared tensors of per-sample step `index` for the batch."""
        return self.truncation.prepare(index, self._sample_matrix(state, index, values))

    def _sample_matrix(self, state, index: int, values: dict):
        """The per-sample matrix of step `index` for the batch (the state reaching it is there
        for engines whose matrices depend on it: quantum-jump trajectories)."""
        return self._matrix(self.steps[index], values, self.batch_size)

    def _initial(self, values: dict, tensors: list):
        """The vacuum, or the product of each mode's leading single-mode gates on its vacuum:
        the first gate's first column, then the others applied to that column."""
        if not self._absorbed:
            return self.truncation.initial()
        xp, cutoff, dtype = self.xp, self.circuit.cutoff, self.circuit.dtype
        columns = []
        for indices in self._leading.values():
            column = xp.asarray(np.eye(1, cutoff), dtype)  # [1, D]: the vacuum
            for index in indices:
                step = self.steps[index]
                if step.shared:
                    (matrix,) = tensors[index]
                else:
                    matrix = self._matrix(step, values, self.batch_size)
                if step.action == "diagonal":
                    column = column * matrix
                elif index == indices[0]:
                    column = matrix[:, :, 0]
                else:
                    column = (matrix @ column[:, :, None])[:, :, 0]
            columns.append(column)
        return self.truncation.product_state(columns)

    def _matrix(self, step: Step, values: dict, size: int, xp=None):
        """The gate's matrix (or phases) with a leading axis of `size` parameter values, built
        in namespace `xp` (the engine's by default), with its fused diagonal gates."""
        xp, real = xp or self.xp, real_dtype(self.circuit.dtype)
        parameters = [
            xp.broadcast_to(xp.cast(evaluate(arg, values, xp), real), [size])
            for arg in step.op.args
        ]
        matrix = step.build(xp, *parameters, self.circuit.cutoff, self.circuit.dtype)
        for diagonal in step.before:  # M diag(phases): columns scaled
            matrix = matrix * self._matrix(diagonal, values, size, xp)[:, None, :]
        for diagonal in step.after:  # diag(phases) M: rows scaled
            matrix = self._matrix(diagonal, values, size, xp)[:, :, None] * matrix
        return matrix
