r"""Exact photon-number statistics of a Gaussian state (hbar = 2, xxpp ordering).

A state of M modes is its covariance `cov` [2M, 2M] and means `means` [2M] of the quadratures
(x_1..x_M, p_1..p_M), vacuum covariance = identity (cvgen.conventions).

The probability generating function of the total photon number N is

    G(z) = E[z^N] = prod_i ((1 + nu_i) / 2)^(-1/2) (1 - tau_i z)^(-1/2)
                    * exp(-(1/2) sum_i m_i^2 (1 - z) / ((1 + nu_i)(1 - tau_i z))),

with nu_i the eigenvalues of cov (eigenvectors o_i), m_i = o_i . means the means in that
eigenbasis and tau_i = (nu_i - 1) / (nu_i + 1) in (-1, 1). Derivation: Tr(rho O) is the
integral of rho's Wigner function against O's Weyl symbol; the symbol of z^(a^dagger a) is
(2 / (1 + z)) exp(-2 s |beta|^2) with s = (1 - z) / (1 + z) (Cahill & Glauber, Phys. Rev. 177,
1882 (1969)), so with beta = (x + i p) / 2 and the Wigner function the normal N(means, cov),

    G(z) = (2 / (1 + z))^M det(I + s cov)^(-1/2) exp(-(s / 2) means^T (I + s cov)^(-1) means),

which is the product above in cov's eigenbasis (the multimode form of Dodonov, Man'ko &
Man'ko, Phys. Rev. A 50, 813 (1994)). Its logarithm is a power series with closed-form
coefficients, using (1 - tau) / (1 + nu) = 2 / (1 + nu)^2:

    log G(z) = c_0 + sum_{j >= 1} kappa_j z^j,
    c_0      = sum_i [ (1/2) log(2 / (1 + nu_i)) - m_i^2 / (2 (1 + nu_i)) ]    (= log P(N = 0)),
    kappa_j  = sum_i [ tau_i^j / (2 j) + m_i^2 tau_i^(j - 1) / (1 + nu_i)^2 ],

and P(N = n) = [z^n] exp(log G) by the recurrence n p_n = sum_{j=1..n} j kappa_j p_{n-j}
(from G' = (log G)' G), O(K^2) for K terms. It holds for any Gaussian state: pure or mixed
(thermal, lossy), displaced or not. A coherent state gives kappa_1 = |alpha|^2 and kappa_j = 0
beyond: the Poisson law; a thermal mode gives the geometric law.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "mean_photon_numbers",
    "click_probabilities",
    "mass_above",
    "mode_photon_distributions",
    "total_photon_distribution",
]


def generating_coefficients(cov: np.ndarray, means: np.ndarray, n_max: int):
    """c_0 and kappa_1..kappa_n_max of log G(z) (module docstring), from cov's eigenbasis."""
    nu, vectors = np.linalg.eigh(np.asarray(cov, dtype=float))
    m2 = (vectors.T @ np.asarray(means, dtype=float)) ** 2
    tau = (nu - 1.0) / (nu + 1.0)
    c0 = float(np.sum(0.5 * np.log(2.0 / (1.0 + nu)) - m2 / (2.0 * (1.0 + nu))))
    j = np.arange(1, n_max + 1)[:, None]
    powers = tau[None, :] ** (j - 1)
    kappa = np.sum(powers * tau / (2.0 * j) + m2 * powers / (1.0 + nu) ** 2, axis=1)
    return c0, kappa


def total_photon_distribution(cov: np.ndarray, means: np.ndarray, n_max: int) -> np.ndarray:
    """P(N = n) for n = 0..n_max of the total photon number N (exact; module docstring)."""
    c0, kappa = generating_coefficients(cov, means, n_max)
    probs = np.empty(n_max + 1)
    probs[0] = math.exp(c0)
    weighted = kappa * np.arange(1, n_max + 1)
    for n in range(1, n_max + 1):
        probs[n] = np.dot(weighted[:n], probs[n - 1 :: -1]) / n
    return probs


def mean_photon_numbers(means: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """<n_k> of every mode of states [..., 2M], [..., 2M, 2M]:
    (Var x_k + Var p_k + <x_k>^2 + <p_k>^2) / 4 - 1/2 (hbar = 2)."""
    modes = means.shape[-1] // 2
    x, p = means[..., :modes], means[..., modes:]
    variances = np.diagonal(cov, axis1=-2, axis2=-1)
    return (variances[..., :modes] + variances[..., modes:] + x**2 + p**2) / 4 - 0.5


def mode_block(cov: np.ndarray, means: np.ndarray, mode: int):
    """Mode `mode`'s 2x2 covariance and 2 means (its x and p in the xxpp ordering)."""
    modes = len(cov) // 2
    index = [mode, mode + modes]
    return np.asarray(cov)[np.ix_(index, index)], np.asarray(means)[index]


def mode_photon_distributions(cov: np.ndarray, means: np.ndarray, n_max: int) -> np.ndarray:
    """[M, n_max + 1]: each mode's photon-number marginal P(n_k = n), from its 2x2 block."""
    modes = len(cov) // 2
    return np.stack(
        [total_photon_distribution(*mode_block(cov, means, k), n_max) for k in range(modes)]
    )


def click_probabilities(cov: np.ndarray, means: np.ndarray) -> np.ndarray:
    """[M]: each mode's click probability 1 - P(n_k = 0), with the closed form
    P(n_k = 0) = det((V_k + I) / 2)^(-1/2) exp(-mu_k^T (V_k + I)^(-1) mu_k / 2) (G(0) above)."""
    modes = len(cov) // 2
    clicks = np.empty(modes)
    for k in range(modes):
        block, mu = mode_block(cov, means, k)
        shifted = block + np.eye(2)
        vacuum = np.exp(-0.5 * mu @ np.linalg.solve(shifted, mu)) / np.sqrt(
            np.linalg.det(shifted / 2.0)
        )
        clicks[k] = -np.expm1(np.log(vacuum))  # 1 - vacuum, exact for vacuum near 1
    return clicks


def mass_above(cov: np.ndarray, means: np.ndarray, ceiling: int) -> float:
    """P(N > ceiling) = 1 - sum_{n <= ceiling} P(N = n), summed exactly (math.fsum).

    The P(N = n) are accurate to a few ulps each relative to 1 (the recurrence's terms are
    bounded by the probabilities themselves for thermal-like states), so the result has an
    absolute error of ~1e-15 * (ceiling + 1): tails below ~1e-13 read as 0 (clipped), not as
    their exact value.
    """
    kept = math.fsum(total_photon_distribution(cov, means, ceiling))
    return max(0.0, 1.0 - kept)
