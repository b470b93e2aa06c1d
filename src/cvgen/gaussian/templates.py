"""The Gaussian boson sampling template: its op list, built without Strawberry Fields.

Two kinds, both ending in optional uniform loss before the detectors (LossChannel(T) on every
mode):

- a graph (adjacency matrix A from a .npy, .csv or .txt file) embedded as SF's GraphEmbed does
  it: A scaled by c so that the squeezed modes of c A's Takagi decomposition c A = U diag(s) U^T
  carry `mean_photon` photons in total, sum_i s_i^2 / (1 - s_i^2) = mean_photon (thewalrus's
  adj_scaling); then Sgate(-arctanh s_i) on mode i and Interferometer(U) (SF's decomposition,
  Bradler et al., PRA 98, 032310). The state's photon-number statistics are hafnians of c A.
- random-interferometer GBS: Sgate(r) on every mode, then a Haar-random Interferometer drawn
  from the dataset's seed (Mezzadri, arXiv:math-ph/0609050).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cvgen.errors import CvgenError
from cvgen.program import MATRIX, Op
from cvgen.streams import TEMPLATE_STREAM, keyed

__all__ = ["gbs_ops", "graph_squeezing", "haar_unitary", "read_adjacency"]


def gbs_ops(settings: dict, modes: int, seed: int) -> tuple[Op, ...]:
    """The op list of the `gbs` template from its config section (circuit.gbs)."""
    if settings["graph"]:
        adjacency = read_adjacency(settings["graph"])
        squeezing, unitary = graph_squeezing(adjacency, settings["mean_photon"])
        ops = [Op("Sgate", (m,), (float(-r), 0.0)) for m, r in enumerate(squeezing)]
    else:
        unitary = haar_unitary(modes, keyed(seed, TEMPLATE_STREAM))
        ops = [Op("Sgate", (m,), (float(settings["squeezing"]), 0.0)) for m in range(modes)]
    wires = tuple(range(len(unitary)))
    ops.append(
        Op("Interferometer", wires, ([MATRIX, unitary.real.tolist(), unitary.imag.tolist()],))
    )
    if settings["transmissivity"] < 1:
        ops += [Op("LossChannel", (m,), (float(settings["transmissivity"]),)) for m in wires]
    return tuple(ops)


def read_adjacency(path: str) -> np.ndarray:
    """A real symmetric adjacency matrix from a .npy, .csv or .txt file, or one CvgenError."""
    file = Path(path)
    where = f"circuit.gbs.graph: {path}"
    if not file.is_file():
        raise CvgenError(f"{where} not found (paths are relative to the working directory)")
    try:
        if file.suffix == ".npy":
            matrix = np.load(file, allow_pickle=False)
        elif file.suffix in (".csv", ".txt"):
            matrix = np.loadtxt(file, delimiter="," if file.suffix == ".csv" else None, ndmin=2)
        else:
            raise CvgenError(f"{where}: give a .npy, .csv or .txt file")
    except (OSError, ValueError) as err:
        raise CvgenError(
            f"{where} is not a numeric matrix ({err}); give an adjacency matrix"
        ) from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.isrealobj(matrix):
        raise CvgenError(f"{where}: the adjacency matrix must be real and square")
    matrix = matrix.astype(np.float64)
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix, matrix.T, atol=1e-10):
        raise CvgenError(f"{where}: the adjacency matrix must be finite and symmetric")
    if not np.any(matrix):
        raise CvgenError(f"{where}: the graph has no edges; give a graph with at least one")
    return matrix


def graph_squeezing(adjacency: np.ndarray, mean_photon: float) -> tuple[np.ndarray, np.ndarray]:
    """Squeezing tanh^-1 s_i and Takagi unitary U of c A, with c chosen for `mean_photon`.

    A real symmetric A = V diag(lambda) V^T has the Takagi form U diag(|lambda|) U^T with
    U = V diag(1 or i by the sign of lambda). c solves sum (c |lambda_i|)^2 / (1 - (c
    |lambda_i|)^2) = mean_photon on (0, 1 / max |lambda|) by bisection (the sum increases in c).
    """
    eigenvalues, vectors = np.linalg.eigh(adjacency)
    singular = np.abs(eigenvalues)

    def photons(c: float) -> float:
        s = c * singular
        return float(np.sum(s**2 / (1 - s**2)))

    low, high = 0.0, 1.0 / singular.max()
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if photons(middle) < mean_photon else (low, middle)
    scaled = low * singular
    unitary = vectors * np.where(eigenvalues < 0, 1j, 1.0)
    return np.arctanh(scaled), unitary


def haar_unitary(size: int, generator: np.random.Generator) -> np.ndarray:
    """A Haar-random unitary: QR of a complex Ginibre matrix, R's diagonal phases removed."""
    ginibre = generator.normal(size=(size, size)) + 1j * generator.normal(size=(size, size))
    q, r = np.linalg.qr(ginibre)
    diagonal = np.diagonal(r)
    return q * (diagonal / np.abs(diagonal))
