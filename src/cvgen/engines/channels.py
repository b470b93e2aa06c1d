"""Exact Fock-basis Kraus operators of the Fock engines' channels, vectorised like the gates.

Every channel the compiled engine runs is a composition of two single-mode channels whose Kraus
operators shift the photon number by a fixed k and scale each Fock state by a real factor:

  loss(T)          A_k |n> = c[n, k] |n - k>,  c[n, k]^2 = C(n, k) T^(n-k) (1-T)^k
  amplifier(G)     B_k |n> = c[n, k] |n + k>,  c[n, k]^2 = C(n+k, k) (1 - 1/G)^k G^-(n+1)
  ThermalLossChannel(T, nbar) = amplifier(G) o loss(T / G),  G = 1 + (1 - T) nbar

(the last maps <n> -> G (T/G) <n> + G - 1 = T <n> + (1 - T) nbar, as SF defines it). Each
builder returns the table c [K, n, k] (K = batch or 1; zero where the shift leaves the cutoff),
from which the density path applies sum_k A_k rho A_k^+ element-wise on shifted views
(rho(n-k, n'-k) += c[n,k] c[n',k] rho(n, n'), no superoperator) and the trajectory path draws one
k per trajectory. Inside the cutoff the loss channel is exactly trace preserving (it only lowers
photon numbers); the amplifier pushes probability above the cutoff, which `norm` then reports,
as for gates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cvgen.conventions import real_dtype

__all__ = [
    "KRAUS",
    "Jump",
    "amplifier_kraus",
    "drawn_jump",
    "jump_matrix",
    "loss_kraus",
    "shift",
]


def loss_kraus(xp, transmissivity, cutoff: int, dtype: str):
    """c[K, n, k] = sqrt(C(n, k) T^(n-k) (1-T)^k) for k <= n, else 0."""
    real = real_dtype(dtype)
    t = xp.cast(transmissivity, real)
    kept = _powers(xp, xp.sqrt(xp.maximum(t, 0.0)), cutoff)  # [K, D]: sqrt(T)^j
    lost = _powers(xp, xp.sqrt(xp.maximum(1.0 - t, 0.0)), cutoff)  # sqrt(1-T)^k
    n, k = np.meshgrid(np.arange(cutoff), np.arange(cutoff), indexing="ij")
    below = k <= n
    binomial = np.where(below, np.sqrt(_binomial(n, np.minimum(k, n))), 0.0)
    left = xp.take(kept, np.where(below, n - k, 0).reshape(-1), axis=1)
    right = xp.take(lost, k.reshape(-1), axis=1)
    table = xp.asarray(binomial.reshape(-1), real) * left * right
    return xp.cast(xp.reshape(table, [-1, cutoff, cutoff]), dtype)


def amplifier_kraus(xp, gain, cutoff: int, dtype: str):
    """c[K, n, k] = sqrt(C(n+k, k) (1 - 1/G)^k G^-(n+1)) for n + k < cutoff, else 0."""
    real = real_dtype(dtype)
    g = xp.cast(gain, real)
    added = _powers(xp, xp.sqrt(xp.maximum(1.0 - 1.0 / g, 0.0)), cutoff)  # sqrt(1-1/G)^k
    kept = _powers(xp, 1.0 / xp.sqrt(g), cutoff + 1)  # G^(-j/2)
    n, k = np.meshgrid(np.arange(cutoff), np.arange(cutoff), indexing="ij")
    inside = n + k < cutoff
    binomial = np.where(inside, np.sqrt(_binomial(n + k, k)), 0.0)
    left = xp.take(added, k.reshape(-1), axis=1)
    right = xp.take(kept, (n + 1).reshape(-1), axis=1)
    table = xp.asarray(binomial.reshape(-1), real) * left * right
    return xp.cast(xp.reshape(table, [-1, cutoff, cutoff]), dtype)


# Channel op -> (Kraus table builder, photon-number shift of A_k: -1 lowers by k, +1 raises).
KRAUS = {"LossChannel": (loss_kraus, -1), "AmplifierChannel": (amplifier_kraus, 1)}


def shift(direction: int, k: int, cutoff: int) -> tuple[slice, slice]:
    """(source, target) slices of the Fock axis for A_k: n -> n - k (loss) or n -> n + k."""
    if direction < 0:
        return slice(k, cutoff), slice(0, cutoff - k)
    return slice(0, cutoff - k), slice(k, cutoff)


@dataclass(frozen=True)
class Jump:
    """The Kraus operator each trajectory drew at one channel, as a shift and factors:
    A_b |n> = factors[b, n] |n + direction k_b> (the trajectory's rescaling included; zero where
    n + direction k_b leaves the cutoff). Each truncation applies it its own way: per-mode as a
    dense per-sample matrix (`jump_matrix`), total-photon as one gather."""

    shifts: object  # [B] int64: k_b
    factors: object  # [B, D]: by source level n
    direction: int


def drawn_jump(xp, table, chosen, scale, direction: int, cutoff: int, dtype: str) -> Jump:
    """The Jump of a Kraus table c [K, n, k] (K = B or 1) for the shifts `chosen` [B], each
    times its trajectory's `scale` [B]: factors[b, n] = scale_b c[n, k_b]."""
    batch = xp.shape(chosen)[0]
    chosen = xp.cast(chosen, "int64")
    if xp.shape(table)[0] != batch:
        table = xp.broadcast_to(table, [batch, cutoff, cutoff])
    index = xp.broadcast_to(xp.reshape(chosen, [-1, 1, 1]), [batch, cutoff, 1])
    values = xp.reshape(xp.take_along(table, index, axis=-1), [-1, cutoff])  # c[n, k_b]
    return Jump(chosen, values * xp.cast(xp.reshape(scale, [-1, 1]), dtype), direction)


def jump_matrix(xp, jump: Jump, cutoff: int, dtype: str):
    """The drawn operators [B, m, n] of a Jump as dense matrices: A[m, n] = factors[n] where
    m = n + direction k. One [B, D, D] array (and a boolean mask) per channel."""
    m, n = np.meshgrid(np.arange(cutoff), np.arange(cutoff), indexing="ij")
    difference = xp.asarray(jump.direction * (m - n), "int64")  # the shift from n to m
    mask = xp.reshape(difference, [1, cutoff, cutoff]) == xp.reshape(jump.shifts, [-1, 1, 1])
    columns = xp.reshape(jump.factors, [-1, 1, cutoff])
    return xp.where(mask, columns, xp.zeros([1, 1, 1], dtype))


def _powers(xp, base, count: int):
    """[K, count]: base^0, base^1, ... (products, so 0^0 = 1 and no log of 0)."""
    values = [base * 0 + 1]
    for _ in range(1, count):
        values.append(values[-1] * base)
    return xp.stack(values, axis=1)


def _binomial(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """C(n, k) elementwise as floats (exact integers below 2^53)."""
    return np.vectorize(lambda a, b: float(math.comb(int(a), int(b))))(n, k)
