"""Per-sample observables of a batch of kets [B, D, ..., D], for any array namespace.

SF's own state methods (`quad_expectation`, `mean_photon`, `reduced_dm`) build the full
B x D^(2M) density matrix first; working on the ket costs O(B x D^M) instead. Conventions are
cvgen.conventions': hbar = 2, x = a + a^dagger, p = -i(a - a^dagger), values of the truncated
state without renormalising (exactly what SF reports), `norm` the probability kept.
"""

from __future__ import annotations

import math

from cvgen.conventions import HBAR, real_dtype

__all__ = ["ket_observables"]


def ket_observables(xp, ket, outputs) -> dict:
    """The `outputs` (names from cvgen.conventions.COMPUTED_OUTPUTS) of every ket, as arrays."""
    shape = xp.shape(ket)
    modes = len(shape) - 1
    probs = xp.real(ket * xp.conj(ket))
    result = {"norm": xp.sum(probs, axis=list(range(1, modes + 1)))}
    if "quad_x" in outputs or "quad_p" in outputs:
        lowering = xp.stack([_lowering_expectation(xp, ket, m) for m in range(modes)], axis=1)
        scale = math.sqrt(2 * HBAR)
        result["quad_x"] = scale * xp.real(lowering)
        result["quad_p"] = scale * xp.imag(lowering)
    if "mean_photon" in outputs:
        result["mean_photon"] = xp.stack([_mean_photon(xp, probs, m) for m in range(modes)], 1)
    if "fock_probs" in outputs:
        result["fock_probs"] = xp.reshape(probs, [shape[0], -1])
    return {name: result[name] for name in outputs}


def _lowering_expectation(xp, ket, mode: int):
    """<psi|a_mode|psi> = sum_n conj(psi_n) sqrt(n+1) psi_(n+1), per batch element."""
    shape = xp.shape(ket)
    cutoff = shape[mode + 1]
    lead = (slice(None),) * (mode + 1)
    lower, upper = ket[lead + (slice(0, cutoff - 1),)], ket[lead + (slice(1, cutoff),)]
    broadcast = [1] * len(shape)
    broadcast[mode + 1] = cutoff - 1
    dtype = ket.dtype.name
    sqrt_n = xp.asarray([math.sqrt(n) for n in range(1, cutoff)], real_dtype(dtype))
    terms = xp.conj(lower) * upper * xp.cast(xp.reshape(sqrt_n, broadcast), dtype)
    return xp.sum(terms, axis=list(range(1, len(shape))))


def _mean_photon(xp, probs, mode: int):
    """Sum_n n P_mode(n) from the joint Fock probabilities, per batch element."""
    shape = xp.shape(probs)
    others = [axis for axis in range(1, len(shape)) if axis != mode + 1]
    marginal = xp.sum(probs, axis=others) if others else probs
    n = xp.arange(0, shape[mode + 1], probs.dtype.name)
    return xp.sum(marginal * n, axis=1)
