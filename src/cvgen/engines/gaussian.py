"""The exact Gaussian engine: means and covariances of every sample, batched, no truncation.

A circuit of Gaussian ops (cvgen.program.GAUSSIAN_OPS) keeps Gaussian states Gaussian, so a
sample's state is its means [2M] and covariance [2M, 2M] (xxpp, hbar = 2; cvgen.gaussian.
symplectic states the conventions): memory 4M^2 numbers per sample instead of D^M amplitudes,
and every output exact. Ops apply to the rows and columns of the modes they act on, for the
whole batch at once; an op whose arguments are constants is built once, in __init__. Samples
whose parameter values are equal (a GBS circuit without free parameters: all of them) are
simulated once per batch.

Outputs: quad_x, quad_p (the means), mean_photon ((Var x + Var p + <x>^2 + <p>^2)/4 - 1/2),
means, cov, norm (1: nothing is truncated) and fock_probs at the circuit's cutoff (from
thewalrus's hafnian-based probabilities; small circuits only, the plan refuses large ones).
"""

from __future__ import annotations

import numpy as np

from cvgen.circuits import CircuitSpec
from cvgen.conventions import COMPUTED_OUTPUTS, real_dtype
from cvgen.gaussian import symplectic
from cvgen.gaussian.photon_statistics import mean_photon_numbers
from cvgen.gaussian.states import GaussianStates
from cvgen.program import evaluate, names_in

__all__ = ["MAX_FOCK_PROBS", "GaussianEngine", "fock_probabilities", "gaussian_values"]

# Most basis states fock_probs may list for the Gaussian engine: each is a (loop) hafnian,
# ~3 ms apiece with thewalrus (its batched routine fails on NumPy 2), so a state of 1024 takes
# ~3 s; larger circuits sample photon numbers instead (fock_samples).
MAX_FOCK_PROBS = 1024

# Op name -> (kind, function of the op's arguments). Kinds: "gate" returns S, "shift" a means
# shift, "prepare" (means, cov) of the modes it resets, "channel" (X, Y).
OPS = {
    "Dgate": ("shift", symplectic.displacement),
    "Xgate": ("shift", symplectic.position_shift),
    "Zgate": ("shift", symplectic.momentum_shift),
    "Sgate": ("gate", symplectic.squeezing),
    "Rgate": ("gate", symplectic.rotation),
    "Pgate": ("gate", symplectic.quadratic_phase),
    "Fouriergate": ("gate", symplectic.rotation),  # SF stores its angle pi/2
    "BSgate": ("gate", symplectic.beamsplitter),
    "MZgate": ("gate", symplectic.mach_zehnder),
    "S2gate": ("gate", symplectic.two_mode_squeezing),
    "CXgate": ("gate", symplectic.controlled_x),
    "CZgate": ("gate", symplectic.controlled_phase),
    "Interferometer": ("gate", symplectic.passive),
    "GaussianTransform": ("gate", symplectic.gaussian_transform),
    "Vacuum": ("prepare", lambda: symplectic.thermal(0.0)),
    "Coherent": ("prepare", symplectic.coherent),
    "Squeezed": ("prepare", symplectic.squeezed),
    "DisplacedSqueezed": ("prepare", symplectic.displaced_squeezed),
    "Thermal": ("prepare", symplectic.thermal),
    "LossChannel": ("channel", symplectic.loss),
    "ThermalLossChannel": ("channel", symplectic.thermal_loss),
    "PassiveChannel": ("channel", symplectic.passive_channel),
}


class GaussianEngine:
    """Runs an op list of Gaussian ops on batches of samples (engine `gaussian`)."""

    name = "gaussian"

    def __init__(
        self,
        circuit: CircuitSpec,
        batch_size: int,
        shared_names=(),
        outputs=COMPUTED_OUTPUTS,
    ):
        if circuit.ops is None:
            raise ValueError("the Gaussian engine needs the circuit's op list (compile_circuit)")
        self.circuit = circuit
        self.modes = circuit.modes
        self.batch_size = batch_size
        self.outputs = tuple(outputs)
        self.trace_s = 0.0
        self._steps = [self._step(op) for op in circuit.ops]
        self._names = sorted(set().union(*(n for *_, n in self._steps)) if self._steps else ())

    @property
    def backend(self) -> str:
        return "numpy"

    def _step(self, op):
        """(kind, function, modes, argument trees, constant value or None, parameter names)."""
        kind, function = OPS[op.name]
        names = frozenset().union(*(names_in(arg) for arg in op.args))
        constant = None if names else function(*(evaluate(a, {}, np) for a in op.args))
        return kind, function, op.wires, op.args, constant, names

    def states(self, args: dict[str, np.ndarray], count: int) -> tuple[np.ndarray, np.ndarray]:
        """Means [count, 2M] and covariances [count, 2M, 2M] (float64) of the samples."""
        means, cov, inverse = self._distinct_states(args, count)
        return means[inverse], cov[inverse]

    def _distinct_states(self, args: dict[str, np.ndarray], count: int):
        """The states of the batch's distinct parameter rows, and each sample's row [count]."""
        if self._names:
            table = np.stack([np.asarray(args[n][:count], np.float64) for n in self._names], 1)
            rows, inverse = np.unique(table, axis=0, return_inverse=True)
            values = {name: rows[:, i] for i, name in enumerate(self._names)}
        else:
            rows, inverse, values = np.zeros((1, 0)), np.zeros(count, dtype=int), {}
        means, cov = self._run(values, len(rows))
        return means, cov, inverse.reshape(-1)

    def _run(self, values: dict[str, np.ndarray], batch: int):
        modes = self.modes
        means = np.zeros((batch, 2 * modes))
        cov = np.broadcast_to(np.eye(2 * modes), (batch, 2 * modes, 2 * modes)).copy()
        for kind, function, wires, trees, constant, _ in self._steps:
            if constant is None:
                result = function(*(evaluate(tree, values, np) for tree in trees))
            else:
                result = constant
            index = np.array(list(wires) + [w + modes for w in wires])
            if kind == "shift":
                means[:, index] += result
            elif kind == "prepare":
                prepared_means, prepared_cov = result
                means[:, index] = prepared_means
                cov[:, index, :] = 0.0
                cov[:, :, index] = 0.0
                cov[:, index[:, None], index[None, :]] = prepared_cov
            else:  # a gate S is the channel (S, 0): means -> X means, cov -> X cov X^T + Y
                x, y = (result, None) if kind == "gate" else result
                means[:, index] = np.einsum("...ij,...j->...i", x, means[:, index])
                cov[:, index, :] = x @ cov[:, index, :]
                cov[:, :, index] = cov[:, :, index] @ np.swapaxes(x, -1, -2)
                if y is not None:
                    cov[:, index[:, None], index[None, :]] += y
        return means, cov

    def evaluate(self, args: dict[str, np.ndarray], count: int, kets: bool = True):
        """The states (GaussianStates) for the sampler, and the engine's outputs."""
        means, cov, inverse = self._distinct_states(args, count)
        groups = tuple(np.flatnonzero(inverse == state) for state in range(len(means)))
        states = GaussianStates(means[inverse], cov[inverse], groups)
        values = gaussian_values(states, self.outputs, self.circuit.cutoff, self.circuit.dtype)
        return (states if kets else None), values

    def observables(self, args: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        return self.evaluate(args, count, kets=False)[1]

    def at_cutoff(self, cutoff: int, batch_size: int | None = None, outputs=None):
        """Nothing depends on a cutoff but fock_probs' range: the same engine."""
        return self

    def describe(self) -> dict:
        return {
            "engine": self.name,
            "backend": self.backend,
            "truncation": "none (exact Gaussian states)",
            "ops": len(self._steps),
        }


def gaussian_values(
    states: GaussianStates, outputs, cutoff: int, dtype: str
) -> dict[str, np.ndarray]:
    """The `outputs` of a batch of Gaussian states, in the circuit's real dtype."""
    means, cov = states.means, states.cov
    modes = means.shape[1] // 2
    values = {
        "quad_x": means[:, :modes],
        "quad_p": means[:, modes:],
        "mean_photon": mean_photon_numbers(means, cov),
        "means": means,
        "cov": cov,
        "norm": np.ones(len(means)),
    }
    if "fock_probs" in outputs:
        values["fock_probs"] = fock_probabilities(states, cutoff)
    return {name: values[name].astype(real_dtype(dtype)) for name in outputs}


def fock_probabilities(states: GaussianStates, cutoff: int) -> np.ndarray:
    """P(n_1..n_M) for every n_i < cutoff, row-major [B, cutoff^M], computed once per distinct
    state from thewalrus's density_matrix_element (hafnians of the state's A matrix)."""
    from thewalrus.quantum import density_matrix_element

    modes = states.means.shape[1] // 2
    patterns = [list(n) for n in np.ndindex(*(cutoff,) * modes)]
    probabilities = np.empty((len(states.means), len(patterns)))
    for rows in states.groups:
        m, c = states.means[rows[0]], states.cov[rows[0]]
        probabilities[rows] = [density_matrix_element(m, c, n, n, hbar=2).real for n in patterns]
    return probabilities
