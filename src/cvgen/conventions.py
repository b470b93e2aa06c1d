"""Physics conventions and output names, stated once for every engine, file and report.

- hbar = 2 (Strawberry Fields' default): x = a + a^dagger, p = -i (a - a^dagger), so the vacuum
  has Var(x) = Var(p) = 1.
- Fock bases are row-major over modes: a ket of M modes at cutoff D is an array [D] * M whose
  flat index is n_1 D^(M-1) + ... + n_M; `fock_probs` is that flat array (under total-photon
  truncation too: the per-mode box at cutoff N, zeros outside the kept states).
- Quadratures are listed per mode in mode order; a homodyne angle phi measures
  x_phi = x cos(phi) + p sin(phi).
- Expectation values are those of the truncated state, not renormalised (as SF reports them);
  `norm` is the probability kept inside the truncation.
"""

from __future__ import annotations

HBAR = 2.0
# Outputs computed from the state (exact given the truncation), in a fixed order.
COMPUTED_OUTPUTS = ("quad_x", "quad_p", "mean_photon", "fock_probs", "norm")
# Outputs drawn as measurement outcomes from the state.
SAMPLING_OUTPUTS = ("homodyne", "fock_samples", "threshold_samples")
COMPLEX_DTYPES = ("complex64", "complex128")


def real_dtype(dtype: str) -> str:
    """The real type matching a complex one: float32 for complex64, float64 for complex128."""
    return {"complex64": "float32", "complex128": "float64"}[dtype]


def complex_bytes(dtype: str) -> int:
    """Bytes per amplitude."""
    return {"complex64": 8, "complex128": 16}[dtype]
