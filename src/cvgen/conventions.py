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
SAMPLING_OUTPUTS = ("homodyne", "heterodyne", "fock_samples", "threshold_samples")
COMPLEX_DTYPES = ("complex64", "complex128")


def real_dtype(dtype: str) -> str:
    """The real type matching a complex one: float32 for complex64, float64 for complex128."""
    return {"complex64": "float32", "complex128": "float64"}[dtype]


def complex_bytes(dtype: str) -> int:
    """Bytes per amplitude."""
    return {"complex64": 8, "complex128": 16}[dtype]


# The conventions as text, written into every dataset (attributes) and its card (DATASET.md).
QUADRATURE_CONVENTION = (
    "hbar = 2: x = a + a^dagger, p = -i (a - a^dagger), vacuum Var(x) = Var(p) = 1; "
    "quadratures per mode in mode order; a homodyne angle phi measures "
    "x cos(phi) + p sin(phi); means and cov in xxpp order (x_0..x_{M-1}, p_0..p_{M-1}); "
    "heterodyne's last axis is (x, p) = (2 Re alpha, 2 Im alpha)"
)
FOCK_CONVENTION = (
    "fock_probs is row-major over modes: at cutoff D, the probability of |n_0, ..., n_{M-1}⟩ "
    "is at flat index n_0 D^(M-1) + ... + n_{M-1} (mode 0 varies slowest); under total "
    "truncation too: the same per-mode box of D^M entries, zeros outside the kept states "
    "(n_0 + ... + n_{M-1} < D)"
)
EXPECTATION_CONVENTION = (
    "expectation values of the truncated state, not renormalised (as Strawberry Fields "
    "reports them); norm is the probability kept inside the truncation; sampled outcomes are "
    "drawn from the truncated state renormalised"
)
# What each sampled output's detector is.
DETECTORS = {
    "homodyne": "ideal homodyne detection (unit efficiency, no electronic noise) of the "
    "quadrature angle set per mode (summaries attribute `angles`); outcomes drawn jointly over "
    "modes by the chain rule",
    "heterodyne": "ideal heterodyne (eight-port) detection: outcomes alpha drawn from the "
    "Husimi Q function Q(alpha) = <alpha|rho|alpha>/pi, stored as (2 Re alpha, 2 Im alpha)",
    "fock_samples": "ideal photon-number-resolving detectors (unit efficiency, no dark counts); "
    "losses only as the circuit's own channels model them",
    "threshold_samples": "ideal threshold (on/off) detectors: 1 = click (at least one photon), "
    "0 = none; no dark counts, unit efficiency",
}
# The axes of every output, sample axis first.
OUTPUT_AXES = {
    "quad_x": ("sample", "mode"),
    "quad_p": ("sample", "mode"),
    "mean_photon": ("sample", "mode"),
    "fock_probs": ("sample", "fock_state"),
    "norm": ("sample",),
    "means": ("sample", "quadrature"),
    "cov": ("sample", "quadrature", "quadrature"),
    "homodyne": ("sample", "shot", "mode"),
    "heterodyne": ("sample", "shot", "mode", "xp"),
    "fock_samples": ("sample", "shot", "mode"),
    "threshold_samples": ("sample", "shot", "mode"),
}
OUTPUT_MEANINGS = {
    "quad_x": "⟨x⟩ per mode",
    "quad_p": "⟨p⟩ per mode",
    "mean_photon": "⟨n⟩ per mode",
    "fock_probs": "joint photon-number probabilities (see fock_order)",
    "norm": "probability kept inside the truncation (1 on the Gaussian engine)",
    "means": "the Gaussian state's quadrature means (xxpp)",
    "cov": "the Gaussian state's quadrature covariance matrix (xxpp)",
    "homodyne": "homodyne outcomes",
    "heterodyne": "heterodyne outcomes (x, p)",
    "fock_samples": "photon counts",
    "threshold_samples": "clicks (1) and no-clicks (0)",
}
