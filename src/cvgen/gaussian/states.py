"""A batch of Gaussian states as the Gaussian engine hands it to its sampler."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["GaussianStates"]


class GaussianStates(NamedTuple):
    """Each sample's means [B, 2M] and covariance [B, 2M, 2M] (xxpp, hbar = 2), and the rows of
    each distinct state (the engine simulates each once: a GBS batch is one group), so what
    depends only on the state (decompositions, exact distributions) is computed once per group."""

    means: np.ndarray
    cov: np.ndarray
    groups: tuple[np.ndarray, ...]
