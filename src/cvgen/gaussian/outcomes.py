"""Measurement outcomes of Gaussian states, drawn exactly: the Gaussian engine's sampler.

- homodyne: the quadratures x_phi = x cos(phi) + p sin(phi) of all modes are jointly normal,
  with means R mu and covariance R cov R^T (R [M, 2M] picks each mode's angle): one draw is
  R mu + L z with L the Cholesky factor and z standard normals. No grid, no truncation.
- heterodyne: (x, p) pairs of every mode, jointly normal with means mu and covariance cov + I
  (the Husimi Q function of a Gaussian state; vacuum covariance is I at hbar = 2), stored
  [samples, shots, modes, 2] like the Fock engines' heterodyne.
- fock_samples, threshold_samples: the exact chain-rule sampler (cvgen.gaussian.
  photon_sampling), one chain per shot, under the plan's photon ceiling; P(N > ceiling) is
  computed exactly per state and kept as the summary `photon_ceiling_mass` (it bounds the
  samples' total-variation distance from the exact distribution).

Every number comes from block_uniforms (cvgen.streams), so outcomes depend only on a sample's
position in the dataset. Summaries are exact, with the names and meaning of cvgen.sampling's
(the report reads both alike): per-mode homodyne densities on the spec's grid, E[x_0 x_1], the
photon-number marginals (P(n) for n < cutoff - 1, and P(n >= cutoff - 1) in the last column:
Gaussian samples have no cutoff), the mean photon numbers, the heterodyne moments.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from cvgen.conventions import real_dtype
from cvgen.gaussian.photon_sampling import PhotonNumberSampler
from cvgen.gaussian.photon_statistics import mean_photon_numbers, mode_photon_distributions
from cvgen.gaussian.states import GaussianStates
from cvgen.sampling import SamplingSpec, fock_dtype
from cvgen.streams import GAUSSIAN_STREAM, HETERODYNE_STREAM, HOMODYNE_STREAM, block_uniforms

__all__ = ["GaussianSampler"]

SMALLEST = np.finfo(np.float64).tiny  # uniforms are drawn in [0, 1): keep ndtri finite
CACHED_STATES = 64  # photon samplers kept (a GBS dataset has one state for all samples)


class GaussianSampler:
    """Draws the spec's outcomes from batches of Gaussian states (means, cov)."""

    def __init__(
        self, spec: SamplingSpec, modes: int, cutoff: int, dtype: str, seed: int, max_photons: int
    ):
        self.spec = spec
        self.modes = modes
        self.cutoff = cutoff
        self.real = real_dtype(dtype)
        self.seed = seed
        self.max_photons = max_photons
        angles = np.asarray(spec.angles)
        self._rotation = np.zeros((modes, 2 * modes))
        self._rotation[np.arange(modes), np.arange(modes)] = np.cos(angles)
        self._rotation[np.arange(modes), modes + np.arange(modes)] = np.sin(angles)
        self._samplers: dict[bytes, PhotonNumberSampler] = {}

    def sample(
        self, states: GaussianStates, start: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Outcomes and summary sums of the states of samples [start, start + len(means))."""
        means, cov, groups = states
        stop = start + len(means)
        outputs: dict[str, np.ndarray] = {}
        summaries: dict[str, np.ndarray] = {}
        if self.spec.homodyne:
            normals = self._normals(HOMODYNE_STREAM, start, stop, self.modes)
            outputs["homodyne"], homodyne = self._homodyne(means, cov, normals, groups)
            summaries.update(homodyne)
        if "heterodyne" in self.spec.outputs:
            normals = self._normals(HETERODYNE_STREAM, start, stop, 2 * self.modes)
            outputs["heterodyne"] = self._heterodyne(means, cov, normals, groups)
            summaries["heterodyne_moments"] = heterodyne_moments(means, cov)
        if self.spec.fock:
            counts, photon = self._photons(means, cov, start, stop, groups)
            if "fock_samples" in self.spec.outputs:
                outputs["fock_samples"] = counts.astype(fock_dtype(self.max_photons + 1))
            if "threshold_samples" in self.spec.outputs:
                outputs["threshold_samples"] = (counts > 0).astype(np.uint8)
            summaries.update(photon)
        return outputs, summaries

    def _normals(self, stream: int, start: int, stop: int, width: int) -> np.ndarray:
        uniforms = block_uniforms(self.seed, stream, start, stop, (self.spec.shots, width))
        return ndtri(np.maximum(uniforms, SMALLEST))

    def _homodyne(self, means, cov, normals, groups):
        """Joint quadratures [B, shots, M], the exact densities on the grid and E[x_0 x_1]."""
        rotation = self._rotation
        first = [rows[0] for rows in groups]
        weights = np.array([len(rows) for rows in groups], dtype=np.float64)
        centre = means @ rotation.T  # [B, M]
        spread = rotation @ cov[first] @ rotation.T  # [states, M, M]
        draws = _correlated(centre, np.linalg.cholesky(spread), normals, groups)
        centre = centre[first]  # per state from here on, weighted by its rows
        variances = np.diagonal(spread, axis1=1, axis2=2)  # [states, M]
        offsets = self.spec.grid()[None, None, :] - centre[:, :, None]
        densities = np.exp(-(offsets**2) / (2 * variances[:, :, None]))
        densities /= np.sqrt(2 * np.pi * variances[:, :, None])
        half_width, spread_x = -self.spec.grid_start, np.sqrt(variances)
        outside = ndtr((-half_width - centre) / spread_x) + ndtr((centre - half_width) / spread_x)
        summaries = {
            "homodyne_density": np.einsum("s,smg->mg", weights, densities),
            "homodyne_mass_error": np.asarray(outside.max(), np.float64),
            "homodyne_interpolation_error": np.asarray(0.0),  # draws are exact, not gridded
        }
        if self.modes >= 2:
            pair = spread[:, 0, 1] + centre[:, 0] * centre[:, 1]
            summaries["homodyne_pair_moment"] = weights @ pair
        return draws.astype(self.real), summaries

    def _heterodyne(self, means, cov, normals, groups):
        """(x, p) outcomes [B, shots, M, 2] drawn from N(means, cov + I)."""
        first = [rows[0] for rows in groups]
        factor = np.linalg.cholesky(cov[first] + np.eye(2 * self.modes))
        draws = _correlated(means, factor, normals, groups)
        pairs = draws.reshape(*draws.shape[:2], 2, self.modes)
        return np.swapaxes(pairs, -1, -2).astype(self.real)

    def _photons(self, means, cov, start: int, stop: int, groups):
        """Photon numbers [B, shots, M] by the chain rule, and their exact summaries."""
        shots, modes = self.spec.shots, self.modes
        numbers = block_uniforms(self.seed, GAUSSIAN_STREAM, start, stop, (shots, 5 * modes))
        normals = ndtri(np.maximum(numbers[..., : 4 * modes], SMALLEST))
        uniforms = numbers[..., 4 * modes :]
        counts = np.zeros((len(means), shots, modes), dtype=np.int64)
        marginals = np.zeros((modes, self.cutoff))
        ceiling_mass = 0.0
        for rows in groups:
            key = means[rows[0]].tobytes() + cov[rows[0]].tobytes()
            sampler = self._sampler(key, means[rows[0]], cov[rows[0]])
            drawn = sampler.sample(
                normals[rows].reshape(-1, 4 * modes), uniforms[rows].reshape(-1, modes)
            )
            counts[rows] = drawn.reshape(len(rows), shots, modes)
            exact = mode_photon_distributions(cov[rows[0]], means[rows[0]], self.cutoff - 2)
            tail = np.maximum(1 - exact.sum(axis=1, keepdims=True), 0.0)
            marginals += len(rows) * np.concatenate([exact, tail], axis=1)
            ceiling_mass = max(ceiling_mass, sampler.mass_above_ceiling)
        summaries = {
            "fock_marginals": marginals,
            "photon_means": mean_photon_numbers(means, cov).sum(axis=0),
            "photon_ceiling_mass": np.asarray(ceiling_mass),
        }
        return counts, summaries

    def _sampler(self, key: bytes, means: np.ndarray, cov: np.ndarray) -> PhotonNumberSampler:
        """The state's photon sampler, built once (its decompositions are the set-up cost)."""
        if key not in self._samplers:
            if len(self._samplers) >= CACHED_STATES:
                self._samplers.pop(next(iter(self._samplers)))
            self._samplers[key] = PhotonNumberSampler(cov, means, self.max_photons)
        return self._samplers[key]


def _correlated(centre, factors, normals, groups) -> np.ndarray:
    """centre [B, K] + L z for each group's Cholesky factor L [K, K]: draws [B, shots, K]."""
    draws = np.empty(normals.shape)
    for factor, rows in zip(factors, groups, strict=True):
        draws[rows] = centre[rows, None, :] + normals[rows] @ factor.T
    return draws


def heterodyne_moments(means: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Per mode the exact E[x_h], E[p_h], E[x_h^2], E[p_h^2], E[x_h p_h] summed over states
    [M, 5]: heterodyne outcomes have means mu and covariance cov + I."""
    modes = means.shape[1] // 2
    x, p = means[:, :modes], means[:, modes:]
    index = np.arange(modes)
    xx = cov[:, index, index] + 1 + x**2
    pp = cov[:, modes + index, modes + index] + 1 + p**2
    xp = cov[:, index, modes + index] + x * p
    return np.stack([x, p, xx, pp, xp], axis=-1).sum(axis=0)
