"""The compiled engine on lossy circuits: exact density matrices, or quantum-jump trajectories.

Channels (LossChannel, ThermalLossChannel = amplifier o loss, cvgen.engines.channels) make the
output state mixed. Two exact paths, both built from the compiled engine's own steps and kernels
(cvgen.noise says which runs when):

- DensityEngine: rho of M modes held as the "ket" of a doubled circuit of 2M modes (ket wires
  0..M-1, bra wires M..2M-1), so rho(n, n') = psi(n) conj(psi(n')) for a pure state. Each gate U
  acts on its ket wires and conj(U) (its matrix conjugated once, where it is built) on its bra
  wires: the per-mode kernels (sectors, phases, product start) run unchanged and give U rho U^+.
  A channel on mode w acts on (w, w + M) by its Kraus operators' exact action, D shifted
  element-wise products (rho(n-k, n'-k) += c[n,k] c[n',k] rho(n, n')): no superoperator.
- TrajectoryEngine: kets, each sample repeated R times (sample-major). At a channel, each
  trajectory draws one Kraus operator k with probability p_k = ||A_k psi||^2 / sum_j p_j from a
  uniform keyed on (sample position, channel draw, purpose; cvgen.streams.TRAJECTORY_STREAM),
  and becomes A_k psi sqrt(sum_j p_j / p_k): E[|psi><psi|] is then exactly the truncated rho
  (gates are linear), whatever the batch or shard. A drawn A_k is a per-sample single-mode gate,
  applied by the truncation's own kernel (per-mode or total-photon).
- NoisyEngine: what a job runs: expectation outputs from one path, kets for the sampler from
  trajectories (one per shot).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from cvgen.circuits import CircuitSpec
from cvgen.conventions import COMPUTED_OUTPUTS, HBAR, real_dtype
from cvgen.engines.backend import NUMPY
from cvgen.engines.channels import KRAUS, kraus_matrix, shift
from cvgen.engines.compiled import ACTIONS, CompiledEngine, Step, fuse_diagonals
from cvgen.engines.per_mode import PerModeTruncation
from cvgen.noise import NoisePlan, stderr_name
from cvgen.program import Op, names_in
from cvgen.streams import TRAJECTORY_STREAM, row_uniforms

__all__ = [
    "DensityEngine",
    "NoisyEngine",
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
    each channel one step on (w, w + M)."""
    shared_names = set(shared_names)
    steps = []
    for op in expanded_channels(ops):
        names = _names(op)
        shared = names <= shared_names
        if op.name in KRAUS:
            (wire,) = op.wires
            doubled = Op(op.name, (wire, wire + modes), op.args)
            steps.append(Step(doubled, KRAUS[op.name][0], "channel", names, shared))
            continue
        build, action = ACTIONS[op.name]
        bra = Op(op.name, tuple(w + modes for w in op.wires), op.args)
        steps.append(Step(op, build, action, names, shared))
        steps.append(Step(bra, _Conjugated(build), action, names, shared))
    return fuse_diagonals(steps)


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


class DensityEngine(CompiledEngine):
    """Batched exact density matrices of a lossy circuit (per-mode truncation), computed as the
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
        if circuit.truncation != "per_mode":
            raise ValueError("density matrices need per-mode truncation")
        self.original = circuit
        doubled = dataclasses.replace(circuit, modes=2 * circuit.modes)
        if steps is None:
            steps = doubled_steps(circuit.ops, circuit.modes, shared_names)
        super().__init__(doubled, batch_size, shared_names, outputs, xp, steps=steps)

    def truncation_class(self, name: str):
        return DensityTruncation

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
        """Output density matrices [count, D^M, D^M] (numpy), one batch of one circuit."""
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
                    steps.append(Step(op, KRAUS[op.name][0], "single", names, False))
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
        """A channel step's matrix is each trajectory's drawn Kraus operator; others as usual."""
        if index in self.draw_names:
            return self._jump(state, index, values, self.draw_names[index])
        return super()._sample_matrix(state, index, values)

    def _jump(self, state, index: int, values: dict, draw: str):
        """Each trajectory's drawn Kraus operator at step `index`, scaled to keep the
        trajectory's weight."""
        xp, cutoff, dtype = self.xp, self.circuit.cutoff, self.circuit.dtype
        step = self.steps[index]
        real = real_dtype(dtype)
        table = self._matrix(step, values, self.batch_size)  # c [B, n, k]
        weights = xp.real(table * xp.conj(table))  # c^2
        marginal = self.truncation.marginal(state, step.wires[0], index - 1)  # [B, D]
        probs = xp.sum(marginal[:, :, None] * weights, axis=1)  # p_k [B, D]
        cumulative = xp.cumsum(xp.cast(probs, "float64"), axis=1)
        total = cumulative[:, -1:]
        target = xp.reshape(values[draw], [-1, 1]) * xp.cast(total, "float64")
        chosen = xp.minimum(xp.searchsorted(cumulative, target)[:, 0], cutoff - 1)
        picked = xp.take_along(probs, xp.reshape(xp.cast(chosen, "int64"), [-1, 1]), axis=-1)
        floor = float(np.finfo(real).tiny)
        scale = xp.sqrt(xp.cast(total, real) / xp.maximum(picked, floor))  # [B, 1]
        direction = KRAUS[step.op.name][1]
        matrix = kraus_matrix(xp, table, chosen, direction, cutoff, dtype)
        return matrix * xp.cast(xp.reshape(scale, [-1, 1, 1]), dtype)


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
