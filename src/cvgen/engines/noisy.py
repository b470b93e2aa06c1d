"""The compiled engine on lossy circuits: exact density matrices, or quantum-jump trajectories.

Channels (LossChannel, ThermalLossChannel = amplifier o loss, cvgen.engines.channels) make the
output state mixed. Two exact paths, both built from the compiled engine's own steps and kernels
(cvgen.noise says which runs when):

- DensityEngine: rho of M modes run as the "ket" of a doubled circuit of 2M modes (ket wires
  0..M-1, bra wires M..2M-1), so rho(n, n') = psi(n) conj(psi(n')) for a pure state. Each gate U
  acts on its ket wires and conj(U) (its matrix conjugated once, where it is built) on its bra
  wires, which gives U rho U^+. A channel on mode w acts on (w, w + M) by its Kraus operators'
  exact action, D shifted element-wise products (rho(n-k, n'-k) += c[n,k] c[n',k] rho(n, n')):
  no superoperator. Per-mode truncation holds rho as the doubled state [D]*2M + [B], and the
  per-mode kernels (sectors, phases, product start) run unchanged (DensityTruncation). Total
  truncation holds rho on the kept states (n_1 + .. + n_M < N) as a matrix [S, S * B], one
  index in rows and the other with the sample in columns: a gate on one index is the
  total-photon kernel applied with the columns as its batch (the matrix transposed to reach the
  other index), so every gate is exactly P U rho U^+ P and every channel P (sum_k A_k rho
  A_k^+) P, P the projector onto the kept states (TotalDensityTruncation).
- TrajectoryEngine: kets, each sample repeated R times (sample-major). At a channel, each
  trajectory draws one Kraus operator k with probability p_k = ||A_k psi||^2 / sum_j p_j from a
  uniform keyed on (sample position, channel draw, purpose; cvgen.streams.TRAJECTORY_STREAM),
  and becomes A_k psi sqrt(sum_j p_j / p_k): E[|psi><psi|] is then exactly the truncated rho
  (gates are linear), whatever the batch or shard. The drawn A_k (cvgen.engines.channels.Jump)
  is applied by the truncation: per-mode as a per-sample matrix, total-photon as one gather.
- NoisyEngine: what a job runs: expectation outputs from one path, kets for the sampler from
  trajectories (one per shot).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from cvgen.circuits import CircuitSpec
from cvgen.conventions import COMPUTED_OUTPUTS, HBAR, real_dtype
from cvgen.engines.backend import NUMPY
from cvgen.engines.channels import KRAUS, drawn_jump, shift
from cvgen.engines.compiled import ACTIONS, CompiledEngine, Step, fuse_diagonals
from cvgen.engines.per_mode import PerModeTruncation
from cvgen.engines.total_photon import (
    TotalPhotonTruncation,
    basis_states,
    box_positions,
    kept_state_outputs,
    lowering_tables,
    shift_sources,
    to_box,
)
from cvgen.noise import NoisePlan, stderr_name
from cvgen.program import Op, names_in
from cvgen.streams import TRAJECTORY_STREAM, row_uniforms

__all__ = [
    "DensityEngine",
    "NoisyEngine",
    "TotalDensityTruncation",
    "TrajectoryEngine",
    "density_observables",
    "expanded_channels",
]

EXPECTATION_DRAWS, SAMPLING_DRAWS = 0, 1  # keys separating the two paths' trajectories


def expanded_channels(ops: tuple[Op, ...]) -> tuple[Op, ...]:
    """The op list with every ThermalLossChannel(T, nbar) written as LossChannel(T / G) then
    AmplifierChannel(G), G = 1 + (1 - T) nbar (expression trees of the same parameters)."""
    expanded = []
    for op in ops:
        if op.name != "ThermalLossChannel":
            expanded.append(op)
            continue
        t, nbar = op.args
        gain = ["Add", 1.0, ["Mul", ["Add", 1.0, ["Mul", -1.0, t]], nbar]]
        expanded.append(Op("LossChannel", op.wires, (["Mul", t, ["Pow", gain, -1.0]],)))
        expanded.append(Op("AmplifierChannel", op.wires, (gain,)))
    return tuple(expanded)


class _Conjugated:
    """A gate builder whose matrix (or phases) is complex conjugated: conj(U) on bra wires."""

    def __init__(self, build):
        self.build = build
        self.__name__ = f"conj_{getattr(build, '__name__', 'gate')}"

    def __call__(self, xp, *args):
        return xp.conj(self.build(xp, *args))


def _names(op: Op) -> frozenset[str]:
    return frozenset().union(*(names_in(arg) for arg in op.args))


# ---------------------------------------------------------------------------------------------
# Density matrices


def doubled_steps(ops: tuple[Op, ...], modes: int, shared_names) -> list[Step]:
    """Steps of the doubled circuit: each gate on its ket wires and conjugated on wires + M,
    each channel one step on (w, w + M). Ket and bra steps commute, so the bra twins of the
    gates between two channels come after those gates: a truncation holding rho as a matrix
    then changes the index it acts on twice per channel, not at every gate."""
    shared_names = set(shared_names)
    steps, bra_steps = [], []
    for op in expanded_channels(ops):
        names = _names(op)
        shared = names <= shared_names
        if op.name in KRAUS:
            (wire,) = op.wires
            doubled = Op(op.name, (wire, wire + modes), op.args)
            steps += bra_steps
            bra_steps = []
            steps.append(Step(doubled, KRAUS[op.name][0], "channel", names, shared))
            continue
        build, action = ACTIONS[op.name]
        bra = Op(op.name, tuple(w + modes for w in op.wires), op.args)
        steps.append(Step(op, build, action, names, shared))
        bra_steps.append(Step(bra, _Conjugated(build), action, names, shared))
    return fuse_diagonals(steps + bra_steps)


class DensityTruncation(PerModeTruncation):
    """Per-mode truncation of the doubled circuit's state [D]*2M + [B], plus channel steps and
    observables of rho."""

    name = "density_matrix"

    def prepare(self, index: int, matrix) -> list:
        if self.steps[index].action == "channel":
            return [matrix]  # the Kraus table c [K, n, k]
        return super().prepare(index, matrix)

    def apply(self, state, index: int, tensors: list):
        step = self.steps[index]
        if step.action != "channel":
            return super().apply(state, index, tensors)
        return self._channel(state, step, tensors[0])

    def _channel(self, state, step: Step, table):
        """sum_k A_k rho A_k^+ on wires (w, w + M): D shifted element-wise products, on a view
        [before, ket, between, bra, after, B] of the state (6 axes whatever the modes: TF's
        strided slices take at most 8)."""
        xp, cutoff = self.xp, self.cutoff
        direction = KRAUS[step.op.name][1]
        ket, bra = step.wires
        shape = xp.shape(state)
        view = [cutoff**ket, cutoff, cutoff ** (bra - ket - 1), cutoff]
        view += [cutoff ** (self.modes - bra - 1), shape[-1]]
        state = xp.reshape(state, view)
        out = None
        for k in range(cutoff):
            source, _ = shift(direction, k, cutoff)
            column = xp.transpose(table[:, source, k], [1, 0])  # [D - k, K]
            ket_factor = xp.reshape(column, [1, cutoff - k, 1, 1, 1, xp.shape(column)[1]])
            bra_factor = xp.reshape(column, [1, 1, 1, cutoff - k, 1, xp.shape(column)[1]])
            piece = state[:, source, :, source] * ket_factor * bra_factor
            pad = [0, k] if direction < 0 else [k, 0]
            piece = xp.pad(piece, [[0, 0], pad, [0, 0], pad, [0, 0], [0, 0]]) if k else piece
            out = piece if out is None else out + piece
        return xp.reshape(out, shape)

    def observables(self, state, outputs) -> dict:
        return density_observables(self.xp, state, self.modes // 2, self.cutoff, outputs)

    def densities(self, state):
        """rho as [B, D^M, D^M]."""
        xp, size = self.xp, self.cutoff ** (self.modes // 2)
        return xp.transpose(xp.reshape(state, [size, size, -1]), [2, 0, 1])


class TotalDensityTruncation:
    """Total-photon truncation of rho: the doubled circuit's steps on the S kept states of M
    modes (n_1 + .. + n_M < N, cvgen.engines.total_photon), rho held compact as [S, S * B].

    Rows are one index of rho, columns the other index and the sample (sample fastest). Each
    run of consecutive gate steps on one index is a TotalPhotonTruncation of M modes over those
    steps, its columns as its batch (per-sample matrices act on all columns of their sample):
    it starts from the compact basis (rho transposed first when the run is on the other index),
    chains its layouts as for kets, and ends gathered back to the compact basis, so each gate is
    exactly P U P on its index. A channel gathers rho at the sources of each shift k on both
    indices (whichever leads), for the kept states that shift reaches only (ShiftTables).
    """

    name = "density_matrix"

    def __init__(self, steps, modes: int, cutoff: int, batch_size: int, dtype: str, xp):
        self.steps, self.cutoff, self.batch_size = steps, cutoff, batch_size
        self.dtype, self.xp = dtype, xp
        self.modes = modes // 2  # of rho; the doubled circuit has 2M wires
        self.basis = basis_states(self.modes, cutoff)
        self.shifts: dict[int, ShiftTables] = {}
        self.runs: dict[int, tuple[TotalPhotonTruncation, int]] = {}  # step -> (run, position)
        self.transposed_before: set[int] = set()  # first steps of runs on the other index
        runs, bra_leading = [], False
        for index, step in enumerate(steps):
            if step.action == "channel":
                direction = KRAUS[step.op.name][1]
                self.shifts[index] = _shift_tables(self.basis, step.wires[0], direction, cutoff)
                continue
            on_bra = step.wires[0] >= self.modes
            if on_bra != bra_leading:
                self.transposed_before.add(index)
                bra_leading = on_bra
            if not runs or runs[-1][-1] != index - 1 or index in self.transposed_before:
                runs.append([])
            runs[-1].append(index)
        for run in runs:
            truncation = TotalPhotonTruncation(
                [self._on_modes(steps[i]) for i in run],
                *(self.modes, cutoff, len(self.basis) * batch_size, dtype, xp),
            )
            self.runs.update({index: (truncation, j) for j, index in enumerate(run)})
        self.bra_leading = bra_leading  # after the last step
        size = len(self.basis)
        self.diagonal = np.arange(size) * (size + 1)  # flat positions of rho(n, n)
        self.lowering_index, self.lowering_weights = _lowering_terms(
            self.basis, cutoff, bra_leading
        )
        self.compact_of_box = box_positions(self.basis, cutoff)

    def _on_modes(self, step: Step) -> Step:
        """A ket or bra step with its wires as modes 0..M-1."""
        wires = tuple(w % self.modes for w in step.wires)
        return dataclasses.replace(step, op=dataclasses.replace(step.op, wires=wires))

    def basis_size(self) -> int:
        return len(self.basis) ** 2

    def initial(self):
        """|0><0| for every batch element."""
        xp, size = self.xp, len(self.basis)
        return xp.reshape(xp.unit(size * size, self.batch_size, self.dtype, axis=0), [size, -1])

    def prepare(self, index: int, matrix) -> list:
        """A gate's blocks (TotalPhotonTruncation.prepare); a channel's factors [K, N, S]: for
        shift k and its i-th target (ShiftTables' order), c[n_w of the source, k]."""
        xp = self.xp
        if index in self.runs:
            run, position = self.runs[index]
            return run.prepare(position, matrix)
        flat = xp.reshape(matrix, [-1, self.cutoff * self.cutoff])
        factor_index = self.shifts[index].factor_index
        factors = xp.take(flat, factor_index.reshape(-1), axis=1)
        return [xp.reshape(factors, [-1, *factor_index.shape])]

    def apply(self, state, index: int, tensors: list):
        if index in self.shifts:
            return self._channel(state, self.shifts[index], tensors[0])
        run, position = self.runs[index]
        if position == 0:
            state = self._run_start(state, index)
        state = run.apply(state, position, tensors)
        return run.compact(state) if position == len(run.steps) - 1 else state

    def _run_start(self, state, index: int):
        """What the run starting at step `index` gathers from: rho with the index it acts on
        leading, plus the zero row that padding slots read (no temporary outlives the call)."""
        if index in self.transposed_before:
            state = self._transposed(state)
        return self.xp.pad(state, [[0, 1], [0, 0]])

    def _transposed(self, state):
        """rho with its two indices swapped: [S, S * B] -> [S, S * B]."""
        xp, size = self.xp, len(self.basis)
        swapped = xp.transpose(xp.reshape(state, [size, size, -1]), [1, 0, 2])
        return xp.reshape(swapped, [size, -1])

    def _channel(self, state, shifts: ShiftTables, factors):
        """sum_k A_k rho A_k^+ on the kept states: out(i, j) = sum_k f_k(i) f_k(j)
        rho(s_k(i), s_k(j)), s_k(i) the state A_k maps to i, f_k(i) its factor (either index
        may lead). Summed in the shifts' target order from the largest k, each term a leading
        block the sum so far is padded to, then gathered back to the basis order."""
        xp, size = self.xp, len(self.basis)
        view = xp.reshape(state, [size, size, -1])
        out = None
        for k in reversed(range(self.cutoff)):
            count = shifts.counts[k]
            source = shifts.sources[k, :count]
            factor = xp.transpose(factors[:, k, :count], [1, 0])  # [count, K]
            weights = factor[:, None, :] * factor[None, :, :]
            piece = xp.take(xp.take(view, source, axis=0), source, axis=1) * weights
            if out is not None:
                grow = count - xp.shape(out)[0]
                piece = piece + xp.pad(out, [[0, grow], [0, grow], [0, 0]])
            out = piece
        out = xp.take(xp.take(out, shifts.position, axis=0), shifts.position, axis=1)
        return xp.reshape(out, [size, -1])

    def observables(self, state, outputs) -> dict:
        """The outputs of cvgen.engines.observables from rho's diagonal and its entries
        rho(n, n - e_m) (hbar = 2, the truncated state, not renormalised)."""
        xp, size = self.xp, len(self.basis)
        flat = xp.reshape(state, [size * size, -1])
        probs = xp.real(xp.take(flat, self.diagonal, axis=0))  # [S, B]

        def lowering():  # <a_m> [M, B]
            terms = xp.take(flat, self.lowering_index, axis=0)
            return xp.asarray(self.lowering_weights, self.dtype) @ terms

        spread = functools.partial(to_box, xp, positions=self.compact_of_box, axis=1)
        return kept_state_outputs(xp, self.basis, probs, lowering, spread, outputs)

    def densities(self, state):
        """rho in the per-mode box [B, N^M, N^M], zero outside the kept states."""
        xp = self.xp
        ket_leading = self._transposed(state) if self.bra_leading else state
        size = len(self.basis)
        rho = xp.transpose(xp.reshape(ket_leading, [size, size, -1]), [2, 0, 1])
        rows_spread = to_box(xp, rho, self.compact_of_box, axis=1)
        return to_box(xp, rows_spread, self.compact_of_box, axis=2)


@dataclass(frozen=True)
class ShiftTables:
    """A channel's gathers on the kept states. The targets are ordered by the largest shift k
    that reaches them, descending, so the targets of shift k are the first counts[k]: A_k's
    terms form the leading block of rho in that order, and nothing is computed where A_k maps
    no kept state (most of rho for large k)."""

    sources: np.ndarray  # [N, S]: for shift k, the kept state A_k maps to each target
    factor_index: np.ndarray  # [N, S]: flat index n_w * N + k of its c[n_w, k] (Kraus table)
    counts: tuple[int, ...]  # targets of each shift
    position: np.ndarray  # [S]: each kept state's place in the order


def _shift_tables(basis: np.ndarray, wire: int, direction: int, cutoff: int) -> ShiftTables:
    """Loss (direction -1) reaches target i from i + k e_w while total(i) + k < N, the amplifier
    from i - k e_w while k <= n_w(i) (shift_sources); the entries past counts[k] are unused."""
    every = shift_sources(basis, wire, direction, cutoff)  # [N, S], -1 where none
    reached = every >= 0  # for each target, the shifts 0..largest reach it
    order = np.argsort(-reached.sum(axis=0), kind="stable")
    counts = tuple(int(n) for n in reached.sum(axis=1))
    sources = np.zeros((cutoff, len(basis)), dtype=np.int64)
    factor_index = np.zeros((cutoff, len(basis)), dtype=np.int64)
    for k, count in enumerate(counts):
        sources[k, :count] = every[k, order[:count]]
        factor_index[k, :count] = basis[sources[k, :count], wire] * cutoff + k
    return ShiftTables(sources, factor_index, counts, np.argsort(order))


def _lowering_terms(basis: np.ndarray, cutoff: int, bra_leading: bool):
    """Flat positions in rho [S * S] of every rho(n, n - e_m) (n_m > 0) and the weights
    [M, terms] of sqrt(n_m) that sum them into <a_m> = Tr(a_m rho)."""
    size, modes = basis.shape
    lowered, sqrt_n = lowering_tables(basis, cutoff)
    mode, ket = np.nonzero(lowered < size)
    bra = lowered[mode, ket]
    index = bra * size + ket if bra_leading else ket * size + bra
    weights = np.zeros((modes, len(ket)))
    weights[mode, np.arange(len(ket))] = sqrt_n[mode, ket]
    return index, weights


def density_observables(xp, rho, modes: int, cutoff: int, outputs) -> dict:
    """The outputs of rho [D]*2M + [B] (ket axes first, batch last): the conventions of
    cvgen.engines.observables (hbar = 2, the truncated state, not renormalised)."""
    size = cutoff**modes
    flat = xp.reshape(rho, [size * size, -1])
    probs = xp.real(xp.take(flat, np.arange(size) * (size + 1), axis=0))  # [D^M, B]
    result = {"norm": xp.sum(probs, axis=0)}
    if "quad_x" in outputs or "quad_p" in outputs:
        lowering = xp.stack([_lowering(xp, rho, modes, cutoff, m) for m in range(modes)], 1)
        scale = math.sqrt(2 * HBAR)
        result["quad_x"] = scale * xp.real(lowering)
        result["quad_p"] = scale * xp.imag(lowering)
    if "mean_photon" in outputs:
        box = xp.reshape(probs, [cutoff] * modes + [-1])
        levels = xp.arange(0, cutoff, probs.dtype.name)
        means = []
        for m in range(modes):
            others = [a for a in range(modes) if a != m]
            marginal = xp.sum(box, axis=others) if others else box  # [D, B]
            means.append(xp.sum(marginal * xp.reshape(levels, [cutoff, 1]), axis=0))
        result["mean_photon"] = xp.stack(means, axis=1)
    if "fock_probs" in outputs:
        result["fock_probs"] = xp.transpose(probs, [1, 0])
    return {name: result[name] for name in outputs}


def _lowering(xp, rho, modes: int, cutoff: int, mode: int):
    """Tr(a_mode rho) = sum sqrt(n+1) rho(n+1, o; n, o) per batch element."""
    index = [slice(None)] * (2 * modes + 1)
    index[mode], index[mode + modes] = slice(1, cutoff), slice(0, cutoff - 1)
    shape = [1] * (2 * modes + 1)
    shape[mode] = cutoff - 1
    dtype = rho.dtype.name
    sqrt_n = xp.reshape(xp.asarray(np.sqrt(np.arange(1, cutoff)), dtype), shape)
    part = rho[tuple(index)] * sqrt_n
    side = cutoff ** (modes - 1) * (cutoff - 1)
    flat = xp.reshape(part, [side * side, -1])
    return xp.sum(xp.take(flat, np.arange(side) * (side + 1), axis=0), axis=0)


DENSITY_TRUNCATIONS = {"per_mode": DensityTruncation, "total": TotalDensityTruncation}


class DensityEngine(CompiledEngine):
    """Batched exact density matrices of a lossy circuit (either truncation), computed as the
    ket of the doubled circuit by the compiled engine."""

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
        self.original = circuit
        doubled = dataclasses.replace(circuit, modes=2 * circuit.modes)
        if steps is None:
            steps = doubled_steps(circuit.ops, circuit.modes, shared_names)
        super().__init__(doubled, batch_size, shared_names, outputs, xp, steps=steps)

    def truncation_class(self, name: str):
        return DENSITY_TRUNCATIONS[name]

    def at_cutoff(self, cutoff: int, batch_size: int | None = None, outputs=None):
        return DensityEngine(
            dataclasses.replace(self.original, cutoff=cutoff),
            batch_size or self.batch_size,
            self.shared_names,
            self.outputs if outputs is None else outputs,
            self.xp,
            steps=self.steps,
        )

    def densities(self, args: dict[str, np.ndarray], count: int) -> np.ndarray:
        """Output density matrices [count, D^M, D^M] (numpy; total truncation: in the per-mode
        box, zero outside the kept states), one batch of one circuit."""
        shared = np.array([args[n][0] for n in self.shared_names])
        state, _ = self._run(args, 0, count, shared)
        return self.xp.numpy(self.truncation.densities(state))[:count]

    def observables(self, args, count: int, rows=None) -> dict[str, np.ndarray]:
        return self.evaluate(args, count, kets=False)[1]


# ---------------------------------------------------------------------------------------------
# Trajectories


class TrajectoryEngine(CompiledEngine):
    """Kets of `repeats` quantum-jump trajectories per sample, sample-major (sample i's
    trajectories are rows i * repeats .. (i + 1) * repeats - 1), on either truncation."""

    name = "compiled"

    def __init__(
        self,
        circuit: CircuitSpec,
        batch_size: int,
        shared_names=(),
        outputs=COMPUTED_OUTPUTS,
        xp=NUMPY,
        seed: int = 0,
        repeats: int = 1,
        purpose: int = EXPECTATION_DRAWS,
        steps: list[Step] | None = None,
    ):
        self.seed, self.repeats, self.purpose = seed, repeats, purpose
        if steps is None:
            steps, draws = [], 0
            for op in expanded_channels(circuit.ops):
                names = _names(op)
                if op.name in KRAUS:  # per trajectory: its uniform is a per-sample value
                    names |= {f"~draw{draws}"}
                    steps.append(Step(op, KRAUS[op.name][0], "jump", names, False))
                    draws += 1
                    continue
                build, action = ACTIONS[op.name]
                steps.append(Step(op, build, action, names, names <= set(shared_names)))
            steps = fuse_diagonals(steps)
        self.draw_names = {
            index: next(n for n in step.names if n.startswith("~draw"))
            for index, step in enumerate(steps)
            if step.op.name in KRAUS
        }
        # Channels whose parameters are per circuit: one Kraus table for the whole batch.
        self.shared_tables = {
            index for index in self.draw_names if _names(steps[index].op) <= set(shared_names)
        }
        super().__init__(circuit, batch_size * repeats, shared_names, outputs, xp, steps=steps)
        self.sample_batch = batch_size
        # A channel ends its wire's product start: the start holds no drawn operator.
        for wire, indices in self._leading.items():
            cut = next((i for i, index in enumerate(indices) if index in self.draw_names), None)
            self._leading[wire] = indices if cut is None else indices[:cut]
        self._absorbed = {index for indices in self._leading.values() for index in indices}

    def at_cutoff(self, cutoff: int, batch_size: int | None = None, outputs=None):
        return TrajectoryEngine(
            dataclasses.replace(self.circuit, cutoff=cutoff),
            batch_size or self.sample_batch,
            self.shared_names,
            self.outputs if outputs is None else outputs,
            self.xp,
            self.seed,
            self.repeats,
            self.purpose,
            steps=self.steps,
        )

    def repeated(self, args: dict[str, np.ndarray], count: int, rows) -> dict[str, np.ndarray]:
        """Every parameter repeated per trajectory, and each channel's uniforms for the rows."""
        repeated = {name: np.repeat(values[:count], self.repeats) for name, values in args.items()}
        rows = np.arange(count) if rows is None else np.asarray(rows)
        for draw in sorted(self.draw_names.values()):
            uniforms = row_uniforms(
                self.seed, TRAJECTORY_STREAM, rows, self.repeats, self.purpose, int(draw[5:])
            )
            repeated[draw] = uniforms.reshape(-1)
        return repeated

    def trajectories(self, args, count: int, rows=None, kets: bool = True):
        """Kets [count * repeats, D, ..., D] (or None) and per-trajectory outputs."""
        return self.evaluate(self.repeated(args, count, rows), count * self.repeats, kets)

    def observables(self, args, count: int, rows=None) -> dict[str, np.ndarray]:
        """Means over each sample's trajectories, and their standard errors (`_stderr`)."""
        values = self.trajectories(args, count, rows, kets=False)[1]
        result = {}
        for name, array in values.items():
            per_sample = array.reshape(count, self.repeats, *array.shape[1:])
            result[name] = per_sample.mean(axis=1)
            spread = per_sample.std(axis=1, ddof=1) if self.repeats > 1 else 0 * result[name]
            result[stderr_name(name)] = spread / math.sqrt(self.repeats)
        return result

    def _sample_matrix(self, state, index: int, values: dict):
        """A channel step's "matrix" is each trajectory's drawn Kraus operator (a Jump); others
        as usual."""
        if index in self.draw_names:
            return self._jump(state, index, values, self.draw_names[index])
        return super()._sample_matrix(state, index, values)

    def _jump(self, state, index: int, values: dict, draw: str):
        """Each trajectory's drawn Kraus operator at step `index` (a Jump), scaled to keep the
        trajectory's weight."""
        xp, cutoff, dtype = self.xp, self.circuit.cutoff, self.circuit.dtype
        step = self.steps[index]
        real = real_dtype(dtype)
        if index in self.shared_tables:  # c [1, n, k]
            table = self._matrix(step, {n: v[:1] for n, v in values.items()}, 1)
        else:  # c [B, n, k]
            table = self._matrix(step, values, self.batch_size)
        weights = xp.real(table * xp.conj(table))  # c^2
        marginal = self.truncation.marginal(state, step.wires[0], index - 1)  # [B, D]
        probs = (marginal[:, None, :] @ weights)[:, 0, :]  # p_k [B, D]
        cumulative = xp.cumsum(xp.cast(probs, "float64"), axis=1)
        total = cumulative[:, -1:]
        target = xp.reshape(values[draw], [-1, 1]) * xp.cast(total, "float64")
        chosen = xp.minimum(xp.searchsorted(cumulative, target)[:, 0], cutoff - 1)
        picked = xp.take_along(probs, xp.reshape(xp.cast(chosen, "int64"), [-1, 1]), axis=-1)
        floor = float(np.finfo(real).tiny)
        scale = xp.sqrt(xp.cast(total, real) / xp.maximum(picked, floor))  # [B, 1]
        direction = KRAUS[step.op.name][1]
        return drawn_jump(xp, table, chosen, scale, direction, cutoff, dtype)


# ---------------------------------------------------------------------------------------------
# What a job runs


class NoisyEngine:
    """A lossy circuit's outputs: expectation outputs from the plan's path (density matrices, or
    the mean of `noise.trajectories` trajectories with standard errors), and kets of one
    trajectory per shot for the sampler. Draws are keyed on dataset rows (`rows`)."""

    name = "compiled"
    keyed_by_row = True  # evaluate/observables take the samples' dataset rows

    def __init__(
        self,
        circuit: CircuitSpec,
        batch_size: int,
        shared_names=(),
        outputs=COMPUTED_OUTPUTS,
        xp=NUMPY,
        noise: NoisePlan | None = None,
        seed: int = 0,
        shots: int = 0,
    ):
        self.circuit, self.batch_size, self.xp = circuit, batch_size, xp
        self.shared_names, self.outputs = tuple(shared_names), tuple(outputs)
        self.noise, self.seed, self.shots = noise, seed, shots
        self.trace_s = 0.0
        self.expectation = None
        if self.outputs and noise.method == "density_matrix":
            self.expectation = DensityEngine(circuit, batch_size, shared_names, outputs, xp)
        elif self.outputs:
            self.expectation = TrajectoryEngine(
                circuit, batch_size, shared_names, outputs, xp, seed, noise.trajectories
            )
        self.sampling = (
            TrajectoryEngine(circuit, batch_size, shared_names, (), xp, seed, shots, SAMPLING_DRAWS)
            if shots
            else None
        )

    @property
    def backend(self) -> str:
        return self.xp.name

    def evaluate(self, args, count: int, kets: bool = True, rows=None):
        """Kets of one trajectory per shot [count * shots, D, ..., D] (None without `kets` or
        shots) and the expectation outputs (with `_stderr` on the trajectory path)."""
        values = self.expectation.observables(args, count, rows) if self.expectation else {}
        states = None
        if kets and self.sampling is not None:
            states = self.sampling.trajectories(args, count, rows)[0]
        return states, values

    def observables(self, args, count: int, rows=None) -> dict[str, np.ndarray]:
        return self.evaluate(args, count, kets=False, rows=rows)[1]

    def at_cutoff(self, cutoff: int, batch_size: int | None = None, outputs=None):
        """The same circuit and path at another cutoff (the truncation check), no sampling."""
        return NoisyEngine(
            dataclasses.replace(self.circuit, cutoff=cutoff),
            batch_size or self.batch_size,
            self.shared_names,
            self.outputs if outputs is None else outputs,
            self.xp,
            self.noise,
            self.seed,
        )

    def describe(self) -> dict:
        inner = self.expectation or self.sampling
        described = inner.describe() if inner else {"engine": self.name}
        return {
            **described,
            "noise_path": self.noise.method,
            "noise_reason": self.noise.reason,
            "trajectories": self.noise.trajectories if self.noise.method == "trajectories" else 0,
            "shots_as_trajectories": self.shots,
        }
