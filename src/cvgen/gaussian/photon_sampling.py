r"""Exact photon-number sampling of Gaussian states: the chain rule over modes with heterodyne
conditioning (Quesada et al., PRA 106, 042413 (2022); Bulmer et al., Sci. Adv. 8, eabl9236
(2022), arXiv:2108.01622), every sample and mode in one compiled kernel.

Method. Williamson's theorem writes cov = S diag(d, d) S^T (d >= 1), so the state is the pure
state of covariance T = S S^T with a classical random displacement of covariance
S diag(d - 1, d - 1) S^T: draw that displacement, then sample the pure state. For the pure state
(Bargmann function exp(z^T B z / 2 + gamma^T z), gamma = alpha - B conj(alpha),
cvgen.gaussian.loop_hafnian), draw heterodyne outcomes beta for every mode (quadratures
~ N(means, T + I)). For k = 1..M, given n_<k and beta_>k, modes 1..k are in the pure state with
couplings B[:k, :k] and loop weights gamma + B[:, >k] conj(beta_>k); projecting modes < k on
|n_<k> leaves mode k with the Bargmann function

    phi(z) = exp(B_kk z^2 / 2 + gamma_k z) L(z),  L(z) = lhaf_{n_<k}(B, gamma + z B[:, k]),

and p(n_k | n_<k, beta_>k) is proportional to n_k! |[z^n_k] phi|^2. L is a polynomial of degree
<= n_1 + .. + n_{k-1} (the sieve of cvgen.gaussian.loop_hafnian, its cost set by the photons so
far: a mode with no photons before it costs O(ceiling)); the exponential's coefficients follow a
three-term recurrence. Dropping beta_k and drawing n_k keeps (n_<=k, beta_>k) distributed as
photon counting on modes <= k and heterodyne on the rest, so n is exact. Probabilities are
normalised per mode (no underflow across modes). The power traces of the sieve depend only on
the photon pattern, so they are kept while a mode adds no photon.

Ceiling. n_k is drawn from p(n_k | n_<k, beta_>k, n_k <= ceiling - n_1 - .. - n_{k-1}), so no
sample has more than `ceiling` photons. Total variation from the exact law is at most
P(N > ceiling) (`mass_above_ceiling`, computed exactly): couple the exact chain X and this one
Y on the same displacement and heterodyne draws, and at each mode set Y_k = X_k when X_k is
within the room left, else draw Y_k from the truncated law (which then has exactly its law).
While X's running total stays within the ceiling the chains agree, so
TV <= P(X != Y) <= P(X's total exceeds the ceiling) = P(N > ceiling).

Randomness comes from the caller: per sample 4M standard normals (2M for the classical
displacement, 2M for the heterodyne outcomes, in the sampler's mode order) and M uniforms (the
inverse-CDF draw of each n_k), so samples depend only on those numbers, not on how they are
split into calls.
"""

from __future__ import annotations

import numba
import numpy as np

from cvgen.gaussian.loop_hafnian import (
    pair_rows,
    point_matrix,
    point_polynomial,
    point_traces,
    sieve_points,
)
from cvgen.gaussian.photon_statistics import mass_above
from cvgen.gaussian.symplectic import williamson

__all__ = ["PhotonNumberSampler", "sample_photons"]

TRACE_CACHE_ENTRIES = 1 << 22  # power traces kept per sample (64 MiB); above, recomputed per mode


class PhotonNumberSampler:
    """Exact photon-number (and threshold) samples of one Gaussian state, total photons capped
    at `ceiling`; everything that depends only on the state is computed here, once."""

    def __init__(self, cov: np.ndarray, means: np.ndarray, ceiling: int):
        cov = np.asarray(cov, dtype=float)
        means = np.asarray(means, dtype=float)
        modes = len(cov) // 2
        self.modes, self.ceiling = modes, int(ceiling)
        # Brightest modes last: the sieve's cost grows with the photons of the modes before.
        photons = (np.diag(cov)[:modes] + np.diag(cov)[modes:] + means[:modes] ** 2) / 4
        photons += means[modes:] ** 2 / 4
        self.order = np.argsort(photons, kind="stable")
        index = np.concatenate([self.order, self.order + modes])
        cov, means = cov[np.ix_(index, index)], means[index]
        d, S = williamson(cov)
        self.means = means
        self.pure_cov = S @ S.T
        self.noise = S @ np.sqrt(np.clip(d - np.eye(2 * modes), 0.0, None))
        self.heterodyne = np.linalg.cholesky(self.pure_cov + np.eye(2 * modes))
        self.B = bargmann_matrix(self.pure_cov)
        self.mass_above_ceiling = mass_above(cov, means, self.ceiling)

    def sample(self, normals: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Photon numbers [S, M] (mode order as given) from normals [S, 4M], uniforms [S, M]."""
        normals = np.ascontiguousarray(normals, dtype=float)
        uniforms = np.ascontiguousarray(uniforms, dtype=float)
        count = len(normals)
        if normals.shape != (count, 4 * self.modes) or uniforms.shape != (count, self.modes):
            raise ValueError(
                f"need normals [S, {4 * self.modes}] and uniforms [S, {self.modes}], got "
                f"{normals.shape} and {uniforms.shape}"
            )
        ordered = sample_photons(
            self.B, self.noise, self.heterodyne, self.means, normals, uniforms, self.ceiling
        )
        result = np.empty_like(ordered)
        result[:, self.order] = ordered
        return result

    def threshold(self, normals: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Click samples [S, M] (0/1): photon-number samples clipped to 1, the same law."""
        return np.minimum(self.sample(normals, uniforms), 1)


def bargmann_matrix(pure_cov: np.ndarray) -> np.ndarray:
    """B [M, M] of a pure state's Bargmann function exp(z^T B z / 2 + gamma^T z): with
    Q = cov(a, a^dagger) + I / 2, I - Q^(-1) = [[0, B], [B*, 0]] (the Husimi function's
    exponent, a = (x + i p) / 2 at hbar = 2)."""
    modes = len(pure_cov) // 2
    identity = np.eye(modes)
    L = 0.5 * np.block([[identity, 1j * identity], [identity, -1j * identity]])
    Q = L @ pure_cov @ L.conj().T + 0.5 * np.eye(2 * modes)
    return np.ascontiguousarray((np.eye(2 * modes) - np.linalg.inv(Q))[:modes, modes:])


@numba.njit(cache=True)
def sample_photons(B, noise, heterodyne, means, normals, uniforms, ceiling):
    """[S, M] photon numbers in the sampler's mode order: per sample the displacement and
    heterodyne draws, then the chain over modes (module docstring)."""
    count, modes = uniforms.shape
    out = np.zeros((count, modes), np.int64)
    roots = np.sqrt(np.arange(ceiling + 2).astype(np.float64))
    for s in range(count):
        pure = means + noise @ normals[s, : 2 * modes]
        outcome = pure + heterodyne @ normals[s, 2 * modes :]
        alpha = (pure[:modes] + 1j * pure[modes:]) / 2
        beta = (outcome[:modes] + 1j * outcome[modes:]) / 2
        gamma = alpha - B @ np.conj(alpha) + B @ np.conj(beta)
        sample_chain(B, gamma, beta, uniforms[s], ceiling, roots, out[s])
    return out


@numba.njit(cache=True)
def sample_chain(B, gamma, beta, uniforms, ceiling, roots, out):
    """One sample's photon numbers, mode by mode, into out (gamma is consumed)."""
    modes = len(out)
    total = 0
    stale = True  # the sieve plan is for an older photon pattern
    first = second = np.zeros(0, np.int64)
    n = 0
    deltas = np.zeros((0, 0), np.int64)
    weights = np.zeros(0)
    traces = np.zeros((0, 0), np.complex128)
    for k in range(modes):
        gamma -= B[:, k] * np.conj(beta[k])  # condition on the heterodyne of modes > k only
        room = ceiling - total
        if room == 0:
            continue
        poly = np.zeros(total + 1, np.complex128)
        if total == 0:
            poly[0] = 1.0
        else:
            if stale:
                rows = np.flatnonzero(out[:k])
                first, second, reps = pair_rows(rows, out[rows])
                n = reps.sum()
                deltas, weights = sieve_points(reps)
                cached = len(weights) * (n + 1) <= TRACE_CACHE_ENTRIES
                traces = np.zeros((len(weights) if cached else 0, n + 1), np.complex128)
                for point in range(len(traces)):
                    matrix, ends, weight = point_matrix(B, first, second, deltas[point])
                    if matrix.shape[0]:
                        traces[point] = point_traces(matrix, n)
                stale = False
            coupling = np.ascontiguousarray(B[:, k])
            for point in range(len(weights)):
                matrix, ends, weight = point_matrix(B, first, second, deltas[point])
                if matrix.shape[0] == 0:
                    continue
                power = traces[point] if len(traces) else point_traces(matrix, n)
                poly += weights[point] * point_polynomial(
                    matrix, ends, weight, power, gamma, coupling, n, total
                )
        out[k] = draw(poly, B[k, k], gamma[k], room, roots, uniforms[k])
        if out[k]:
            total += out[k]
            stale = True


@numba.njit(cache=True)
def draw(poly, squeeze, loop, room, roots, uniform):
    """n in 0..room with probability proportional to n! |[z^n] exp(squeeze z^2/2 + loop z) L(z)|^2
    (L's coefficients poly), by inverse CDF at `uniform`."""
    scaled = np.zeros(room + 1, np.complex128)  # sqrt(n!) [z^n] exp(squeeze z^2 / 2 + loop z)
    scaled[0] = 1.0
    if room:
        scaled[1] = loop
    for m in range(1, room):
        scaled[m + 1] = (loop * scaled[m] + squeeze * roots[m] * scaled[m - 1]) / roots[m + 1]
    probs = np.empty(room + 1)
    for m in range(room + 1):
        amplitude = 0j
        factor = 1.0  # sqrt(m! / (m - j)!)
        for j in range(min(m, len(poly) - 1) + 1):
            amplitude += poly[j] * factor * scaled[m - j]
            factor *= roots[m - j]
        probs[m] = amplitude.real**2 + amplitude.imag**2
    target = uniform * probs.sum()
    cumulative = 0.0
    for m in range(room + 1):
        cumulative += probs[m]
        if cumulative > target:
            return m
    return 0
