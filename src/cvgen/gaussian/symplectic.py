"""Gaussian ops as symplectic maps on means and covariances, batched over samples.

Conventions (Strawberry Fields' gaussian backend, hbar = 2, cvgen.conventions): a state of M
modes is its means [2M] and covariance [2M, 2M] in xxpp order (x_1..x_M, p_1..p_M); vacuum has
covariance I. A gate whose Heisenberg action on the lowering operators is a -> A a + B a^dagger
maps means -> S means, cov -> S cov S^T with, for x = a + a^dagger and p = -i (a - a^dagger),

    S = [[Re(A + B), -Im(A - B)],
         [Im(A + B),  Re(A - B)]]          (Serafini, Quantum Continuous Variables, ch. 5)

One small pure function per op, in the style of thewalrus.symplectic, but every argument may be
an array of per-sample values [B] (or a scalar), and the results carry that batch shape in front:
[..., 2k, 2k] for a k-mode gate. Displacements and preparations return means [..., 2k] (and
covariances); channels return the pair (X, Y) of cov -> X cov X^T + Y, means -> X means.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "beamsplitter",
    "bogoliubov",
    "coherent",
    "controlled_phase",
    "controlled_x",
    "displaced_squeezed",
    "displacement",
    "gaussian_transform",
    "loss",
    "mach_zehnder",
    "momentum_shift",
    "passive",
    "passive_channel",
    "position_shift",
    "quadratic_phase",
    "rotation",
    "squeezed",
    "squeezing",
    "thermal",
    "thermal_loss",
    "two_mode_squeezing",
    "williamson",
]


def _batch(*values) -> tuple[np.ndarray, ...]:
    """Arguments as float64 arrays of one common batch shape (scalars give shape ())."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values))
    return tuple(np.array(a) for a in arrays)


def bogoliubov(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """S [..., 2k, 2k] of a -> A a + B a^dagger (A, B [..., k, k] complex)."""
    top = np.concatenate([(a + b).real, -(a - b).imag], axis=-1)
    bottom = np.concatenate([(a + b).imag, (a - b).real], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def passive(u: np.ndarray) -> np.ndarray:
    """S of an interferometer a -> U a: the orthogonal symplectic [[Re U, -Im U], [Im U, Re U]]."""
    u = np.asarray(u, dtype=np.complex128)
    return bogoliubov(u, np.zeros_like(u))


def _one_mode(a, b) -> np.ndarray:
    return bogoliubov(np.asarray(a)[..., None, None], np.asarray(b)[..., None, None])


def rotation(theta) -> np.ndarray:
    """Rgate(theta) = exp(i theta n): a -> e^{i theta} a."""
    (theta,) = _batch(theta)
    return _one_mode(np.exp(1j * theta), np.zeros_like(theta))


def squeezing(r, phi=0.0) -> np.ndarray:
    """Sgate(r, phi) = exp((z* a^2 - z a^dagger^2) / 2), z = r e^{i phi}:
    a -> cosh(r) a - e^{i phi} sinh(r) a^dagger."""
    r, phi = _batch(r, phi)
    return _one_mode(np.cosh(r) + 0j, -np.exp(1j * phi) * np.sinh(r))


def quadratic_phase(s) -> np.ndarray:
    """Pgate(s) = exp(i s x^2 / (2 hbar)): x -> x, p -> p + s x."""
    (s,) = _batch(s)
    matrix = np.zeros(s.shape + (2, 2))
    matrix[..., 0, 0] = matrix[..., 1, 1] = 1.0
    matrix[..., 1, 0] = s
    return matrix


def beamsplitter(theta=np.pi / 4, phi=0.0) -> np.ndarray:
    """BSgate(theta, phi): a1 -> t a1 - conj(r) a2, a2 -> r a1 + t a2, t = cos theta,
    r = e^{i phi} sin theta (SF's convention)."""
    theta, phi = _batch(theta, phi)
    t, r = np.cos(theta) + 0j, np.exp(1j * phi) * np.sin(theta)
    u = np.stack([np.stack([t, -np.conj(r)], -1), np.stack([r, t], -1)], -2)
    return passive(u)


def mach_zehnder(phi_in, phi_ex) -> np.ndarray:
    """MZgate(phi_in, phi_ex): Rgate(phi_ex) on the first mode, a 50:50 BSgate(pi/4, pi/2),
    Rgate(phi_in) on the first mode, the same beamsplitter (SF's decomposition), as one map."""
    phi_in, phi_ex = _batch(phi_in, phi_ex)
    splitter = beamsplitter(np.pi / 4, np.pi / 2)
    return splitter @ _first_mode(rotation(phi_in)) @ splitter @ _first_mode(rotation(phi_ex))


def _first_mode(single: np.ndarray) -> np.ndarray:
    """A one-mode S [..., 2, 2] acting on the first of two modes, as [..., 4, 4] (xxpp)."""
    matrix = np.zeros(single.shape[:-2] + (4, 4))
    matrix[..., 1, 1] = matrix[..., 3, 3] = 1.0
    matrix[..., 0, 0], matrix[..., 0, 2] = single[..., 0, 0], single[..., 0, 1]
    matrix[..., 2, 0], matrix[..., 2, 2] = single[..., 1, 0], single[..., 1, 1]
    return matrix


def two_mode_squeezing(r, phi=0.0) -> np.ndarray:
    """S2gate(r, phi) = exp(z a1^dagger a2^dagger - z* a1 a2), z = r e^{i phi}:
    a1 -> cosh(r) a1 + e^{i phi} sinh(r) a2^dagger, and symmetrically for a2."""
    r, phi = _batch(r, phi)
    zero = np.zeros_like(r)
    diagonal = np.cosh(r) + 0j
    cross = np.exp(1j * phi) * np.sinh(r)
    a = np.stack([np.stack([diagonal, zero], -1), np.stack([zero, diagonal], -1)], -2)
    b = np.stack([np.stack([zero, cross], -1), np.stack([cross, zero], -1)], -2)
    return bogoliubov(a, b)


def controlled_x(s) -> np.ndarray:
    """CXgate(s) = exp(-i s x1 p2 / hbar): x2 -> x2 + s x1, p1 -> p1 - s p2."""
    (s,) = _batch(s)
    matrix = np.broadcast_to(np.eye(4), s.shape + (4, 4)).copy()
    matrix[..., 1, 0] = s
    matrix[..., 2, 3] = -s
    return matrix


def controlled_phase(s) -> np.ndarray:
    """CZgate(s) = exp(i s x1 x2 / hbar): p1 -> p1 + s x2, p2 -> p2 + s x1."""
    (s,) = _batch(s)
    matrix = np.broadcast_to(np.eye(4), s.shape + (4, 4)).copy()
    matrix[..., 2, 1] = s
    matrix[..., 3, 0] = s
    return matrix


def displacement(r, phi=0.0) -> np.ndarray:
    """Dgate(r, phi): means shift by sqrt(2 hbar) (Re alpha, Im alpha) = 2 r (cos phi, sin phi)."""
    r, phi = _batch(r, phi)
    return np.stack([2 * r * np.cos(phi), 2 * r * np.sin(phi)], axis=-1)


def position_shift(x) -> np.ndarray:
    """Xgate(x): x -> x + x (means shift by (x, 0))."""
    (x,) = _batch(x)
    return np.stack([x, np.zeros_like(x)], axis=-1)


def momentum_shift(p) -> np.ndarray:
    """Zgate(p): p -> p + p (means shift by (0, p))."""
    (p,) = _batch(p)
    return np.stack([np.zeros_like(p), p], axis=-1)


def gaussian_transform(s) -> np.ndarray:
    """GaussianTransform(S): S itself, a real symplectic matrix in xxpp order (its Blackbird
    literal arrives complex with zero imaginary parts)."""
    return np.asarray(s).real


def coherent(r, phi=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Coherent(r, phi): the displaced vacuum, means and covariance I."""
    means = displacement(r, phi)
    return means, np.broadcast_to(np.eye(2), means.shape[:-1] + (2, 2)).copy()


def squeezed(r, phi=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Squeezed(r, p): Sgate(r, p) on vacuum."""
    s = squeezing(r, phi)
    return np.zeros(s.shape[:-1]), s @ np.swapaxes(s, -1, -2)


def displaced_squeezed(r_d, phi_d, r_s, phi_s) -> tuple[np.ndarray, np.ndarray]:
    """DisplacedSqueezed(r_d, phi_d, r_s, phi_s): Sgate(r_s, phi_s), then Dgate(r_d, phi_d)."""
    r_d, phi_d, r_s, phi_s = _batch(r_d, phi_d, r_s, phi_s)
    _, cov = squeezed(r_s, phi_s)
    return displacement(r_d, phi_d), cov


def thermal(nbar) -> tuple[np.ndarray, np.ndarray]:
    """Thermal(n): zero means, covariance (2 n + 1) I."""
    (nbar,) = _batch(nbar)
    return np.zeros(nbar.shape + (2,)), (2 * nbar + 1)[..., None, None] * np.eye(2)


def loss(transmissivity) -> tuple[np.ndarray, np.ndarray]:
    """LossChannel(T): mixing with vacuum at a beamsplitter of transmissivity T:
    X = sqrt(T) I, Y = (1 - T) I."""
    return thermal_loss(transmissivity, 0.0)


def thermal_loss(transmissivity, nbar) -> tuple[np.ndarray, np.ndarray]:
    """ThermalLossChannel(T, nbar): mixing with a thermal state of nbar photons:
    X = sqrt(T) I, Y = (1 - T)(2 nbar + 1) I."""
    t, nbar = _batch(transmissivity, nbar)
    eye = np.eye(2)
    return np.sqrt(t)[..., None, None] * eye, ((1 - t) * (2 * nbar + 1))[..., None, None] * eye


def passive_channel(transmission) -> tuple[np.ndarray, np.ndarray]:
    """PassiveChannel(T): a -> T a for a matrix T of singular values <= 1 (losses in a linear
    network): X = passive(T), Y = I - X X^T."""
    x = passive(transmission)
    return x, np.eye(x.shape[-1]) - x @ np.swapaxes(x, -1, -2)


def williamson(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Williamson's normal form cov = S D S^T: D = diag(nu, nu) (xxpp) holds the symplectic
    eigenvalues nu_i >= 1 of a physical covariance, S is symplectic.

    A = cov^(-1/2) Omega cov^(-1/2) is antisymmetric; its real Schur form K^T A K has 2 x 2
    blocks [[0, a_i], [-a_i, 0]] (columns swapped where a_i < 0), and nu_i = 1 / a_i. With K's
    columns in xxpp order, S = cov^(1/2) K diag(nu^(-1/2), nu^(-1/2)): S D S^T = cov, and
    S^(-1) Omega S^(-T) = diag(sqrt nu) K^T A K diag(sqrt nu) = Omega (Serafini, ch. 3).
    """
    from scipy.linalg import schur

    modes = len(cov) // 2
    values, vectors = np.linalg.eigh(cov)
    root = (vectors * np.sqrt(values)) @ vectors.T
    inverse_root = (vectors / np.sqrt(values)) @ vectors.T
    omega = np.block(
        [[np.zeros((modes, modes)), np.eye(modes)], [-np.eye(modes), np.zeros((modes, modes))]]
    )
    block_form, basis = schur(inverse_root @ omega @ inverse_root, output="real")
    first, second = np.arange(0, 2 * modes, 2), np.arange(1, 2 * modes, 2)
    couplings = block_form[first, second]
    swap = couplings < 0
    first, second = np.where(swap, second, first), np.where(swap, first, second)
    nu = 1 / np.abs(couplings)
    basis = basis[:, np.concatenate([first, second])]
    scale = np.concatenate([nu, nu]) ** -0.5
    return np.diag(np.concatenate([nu, nu])), root @ basis * scale
