"""Sampled measurement outcomes against exact distributions (SF's backends as the oracle).

Every statistical test runs at a fixed seed, so it is deterministic; the thresholds (4 standard
errors, p > 1e-3) are loose enough that a correct sampler passes at almost any seed and tight
enough that a wrong marginal, a missing correlation or a sign error fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cvgen.engines.backend import NUMPY, namespace
from cvgen.sampling import (
    Sampler,
    SamplingSpec,
    default_grid_range,
    hermite_functions,
    make_spec,
    quadrature_angles,
)
from cvgen.streams import block_uniforms

TENSORFLOW = namespace("tensorflow", threads=1)  # before SF's first TF op, which fixes threads


def spec(angles, shots, cutoff, outputs=("homodyne", "fock_samples"), points=1024) -> SamplingSpec:
    return make_spec(outputs, shots, angles, default_grid_range(cutoff), points)


def sf_state(modes: int, cutoff: int, build, backend: str = "fock"):
    """Run `build(q, ops)` in a fresh SF program on the given backend and return the state."""
    import strawberryfields as sf
    from strawberryfields import ops

    program = sf.Program(modes)
    with program.context as q:
        build(q, ops)
    options = {"cutoff_dim": cutoff} if backend == "fock" else {}
    return sf.Engine(backend, backend_options=options).run(program).state


def draw(ket: np.ndarray, angles, copies: int, shots: int, seed: int = 11, **kwargs):
    """Outcomes of `copies` copies of one ket, `shots` each, flattened to [copies * shots, M]."""
    modes, cutoff = ket.ndim, ket.shape[0]
    sampler = Sampler(spec(angles, shots, cutoff, **kwargs), modes, cutoff, "complex128", seed)
    outputs, summaries = sampler.sample(np.broadcast_to(ket, (copies, *ket.shape)), 0)
    flat = {name: value.reshape(copies * shots, modes) for name, value in outputs.items()}
    return flat, summaries


def gaussian_circuit(q, ops):
    ops.Sgate(0.3, 0.4) | q[0]
    ops.Dgate(0.4, 0.7) | q[0]
    ops.Sgate(-0.2) | q[1]
    ops.Dgate(-0.3) | q[2]
    ops.BSgate(0.6, 0.2) | (q[0], q[1])
    ops.Rgate(0.5) | q[2]
    ops.BSgate(0.4, -0.3) | (q[1], q[2])


def quadrature_moments(state, angles):
    """Exact mean and covariance of (x_phi0, x_phi1, ...) from a Gaussian state (xxpp order)."""
    modes = len(angles)
    transform = np.zeros((modes, 2 * modes))
    for mode, phi in enumerate(angles):
        transform[mode, mode], transform[mode, modes + mode] = math.cos(phi), math.sin(phi)
    return transform @ state.means(), transform @ state.cov() @ transform.T


def test_hermite_functions_are_orthonormal_and_match_the_closed_form():
    x = np.linspace(-15, 15, 6001)
    table = hermite_functions(x, 30)
    overlaps = table.T @ table * (x[1] - x[0])
    assert np.allclose(overlaps, np.eye(30), atol=1e-9)
    # <x|2> = (2 pi)^(-1/4) (x^2 - 1)/sqrt(2) e^(-x^2/4) for hbar = 2
    expected = (2 * math.pi) ** -0.25 * (x**2 - 1) / math.sqrt(2) * np.exp(-(x**2) / 4)
    assert np.allclose(table[:, 2], expected, atol=1e-12)


def test_gaussian_homodyne_means_covariances_and_marginals_are_exact():
    angles = (0.0, math.pi / 2, 0.9)
    cutoff = 12
    ket = sf_state(3, cutoff, gaussian_circuit).ket()
    assert np.sum(np.abs(ket) ** 2) > 1 - 1e-6  # converged, far below the statistical error
    mean, cov = quadrature_moments(sf_state(3, cutoff, gaussian_circuit, "gaussian"), angles)
    outcomes, _ = draw(ket, angles, copies=64, shots=256)
    samples = outcomes["homodyne"]
    n = len(samples)
    assert np.all(np.abs(samples.mean(0) - mean) < 4 * np.sqrt(np.diag(cov) / n))
    sampled_cov = np.cov(samples.T)
    error = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(sampled_cov - cov) < 4 * error)
    assert np.any(np.abs(cov - np.diag(np.diag(cov))) > 10 * error)  # correlations to detect
    for mode in range(3):
        normal = stats.norm(mean[mode], math.sqrt(cov[mode, mode]))
        assert stats.kstest(samples[:, mode], normal.cdf).pvalue > 1e-3


def test_a_wrong_quadrature_angle_is_detected():
    """The test above has power: x sampled where p is exact fails the same check."""
    ket = sf_state(3, 12, gaussian_circuit).ket()
    mean, cov = quadrature_moments(sf_state(3, 12, gaussian_circuit, "gaussian"), (0.0, 0.0, 0.9))
    outcomes, _ = draw(ket, (0.0, math.pi / 2, 0.9), copies=64, shots=256)
    normal = stats.norm(mean[1], math.sqrt(cov[1, 1]))
    assert stats.kstest(outcomes["homodyne"][:, 1], normal.cdf).pvalue < 1e-6


def test_two_mode_squeezed_vacuum_correlations_and_conditional_mean():
    r = 0.5
    ket = sf_state(2, 20, lambda q, ops: ops.S2gate(r) | (q[0], q[1])).ket()
    outcomes, summaries = draw(ket, (0.0, 0.0), copies=64, shots=256)
    x1, x2 = outcomes["homodyne"].T
    n = len(x1)
    # SF's S2gate(r): Var(x) = cosh 2r, Cov(x1, x2) = +sinh 2r (hbar = 2), so E[x2|x1] = tanh(2r) x1
    assert abs(np.var(x1) - math.cosh(2 * r)) < 4 * math.cosh(2 * r) * math.sqrt(2 / n)
    covariance = np.mean(x1 * x2) - x1.mean() * x2.mean()
    assert covariance > 0
    assert abs(covariance - math.sinh(2 * r)) < 4 * math.cosh(2 * r) * math.sqrt(2 / n)
    assert abs(summaries["homodyne_pair_moment"] / 64 - math.sinh(2 * r)) < 1e-6
    slope = covariance / np.var(x1)
    residual = math.cosh(2 * r) - math.sinh(2 * r) ** 2 / math.cosh(2 * r)
    slope_error = math.sqrt(residual / (n * math.cosh(2 * r)))
    assert abs(slope - math.tanh(2 * r)) < 4 * slope_error
    edges = np.quantile(x1, [0.1, 0.2, 0.8, 0.9])
    for low, high in ((edges[0], edges[1]), (edges[2], edges[3])):
        chosen = (x1 >= low) & (x1 < high)
        conditional = math.tanh(2 * r) * x1[chosen].mean()
        spread = math.sqrt(residual / chosen.sum())
        assert abs(x2[chosen].mean() - conditional) < 4 * spread


def test_kerr_state_histogram_matches_the_wigner_marginal():
    """Non-Gaussian: the density from SF's Wigner function integrated over p (independent of the
    Hermite functions the sampler uses)."""
    cutoff = 20
    state = sf_state(1, cutoff, lambda q, ops: (ops.Dgate(0.9) | q[0], ops.Kgate(0.6) | q[0]))
    ket = state.ket()
    x = np.linspace(-9, 9, 1801)
    density = state.x_quad_values(0, x, np.linspace(-12, 12, 1201))
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(x))])
    cdf /= cdf[-1]
    outcomes, _ = draw(ket, (0.0,), copies=32, shots=512)
    samples = outcomes["homodyne"][:, 0]
    assert stats.kstest(samples, lambda v: np.interp(v, x, cdf)).pvalue > 1e-3
    # the state is far from Gaussian: a normal with its mean and variance fails the same test
    moments = stats.norm(samples.mean(), samples.std())
    assert stats.kstest(samples, moments.cdf).pvalue < 1e-6


def test_joint_fock_frequencies_match_all_fock_probs():
    """Three modes jointly, where SF's batched MeasureFock on subsets conditions every element on
    element 0's outcome."""
    cutoff = 5

    def circuit(q, ops):
        ops.Dgate(0.5) | q[0]
        ops.Sgate(0.3) | q[1]
        ops.Kgate(0.4) | q[0]
        ops.BSgate(0.7, 0.3) | (q[0], q[1])
        ops.BSgate(0.5) | (q[1], q[2])

    state = sf_state(3, cutoff, circuit)
    probs = state.all_fock_probs().reshape(-1)
    probs = probs / probs.sum()
    outcomes, summaries = draw(state.ket(), (0.0, 0.0, 0.0), copies=32, shots=1024)
    counts = np.bincount(
        np.ravel_multi_index(outcomes["fock_samples"].T, (cutoff,) * 3), minlength=cutoff**3
    )
    n = counts.sum()
    frequent = probs * n >= 5  # chi-square needs 5 expected per bin: merge the rest into one
    observed = np.append(counts[frequent], counts[~frequent].sum())
    expected = np.append(probs[frequent] * n, probs[~frequent].sum() * n)
    assert frequent.sum() > 10
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    marginal = probs.reshape((cutoff,) * 3).sum(axis=(1, 2))
    assert np.allclose(summaries["fock_marginals"][0] / 32, marginal, atol=1e-12)


def test_threshold_samples_are_clicks_of_the_fock_samples():
    ket = sf_state(2, 6, lambda q, ops: ops.S2gate(0.6) | (q[0], q[1])).ket()
    outcomes, _ = draw(ket, (0.0, 0.0), 8, 64, outputs=("fock_samples", "threshold_samples"))
    assert np.array_equal(outcomes["threshold_samples"], outcomes["fock_samples"] > 0)
    # photon numbers of two-mode squeezed vacuum are equal in both modes
    assert np.array_equal(outcomes["fock_samples"][:, 0], outcomes["fock_samples"][:, 1])


@pytest.mark.parametrize("xp", [NUMPY, TENSORFLOW], ids=["numpy", "tensorflow"])
def test_outcomes_depend_only_on_the_samples_position(xp):
    rng = np.random.default_rng(3)
    kets = rng.normal(size=(40, 4, 4)) + 1j * rng.normal(size=(40, 4, 4))
    kets /= np.linalg.norm(kets.reshape(40, -1), axis=1)[:, None, None]
    sampler = Sampler(spec((0.0, 0.4), 3, 4), 2, 4, "complex128", 5, xp)
    whole, _ = sampler.sample(xp.asarray(kets, "complex128"), 1000)
    part, _ = sampler.sample(xp.asarray(kets[17:31], "complex128"), 1017)
    # Photon numbers are identical; quadratures up to float rounding (BLAS sums in batch-size
    # dependent order), far below any physical resolution.
    assert np.array_equal(whole["fock_samples"][17:31], part["fock_samples"])
    assert np.abs(whole["homodyne"][17:31] - part["homodyne"]).max() < 1e-9
    other, _ = Sampler(spec((0.0, 0.4), 3, 4), 2, 4, "complex128", 6, xp).sample(
        xp.asarray(kets, "complex128"), 1000
    )
    assert not np.allclose(other["homodyne"], whole["homodyne"])


def test_uniforms_straddle_blocks_consistently():
    whole = block_uniforms(1, 2, 1000, 3100, (2,))
    assert whole.shape == (2100, 2)
    assert np.array_equal(whole[24:1048], block_uniforms(1, 2, 1024, 2048, (2,)))
    assert np.array_equal(whole[-1], block_uniforms(1, 2, 3099, 3100, (2,))[0])


def test_grid_errors_are_measured():
    """A grid too narrow or too coarse shows up in the summaries (the report and log use them)."""
    ket = sf_state(1, 10, lambda q, ops: ops.Dgate(1.5) | q[0]).ket()
    _, good = draw(ket, (0.0,), 4, 8)
    assert good["homodyne_mass_error"] < 1e-8 and good["homodyne_interpolation_error"] < 1e-3
    sampler = Sampler(spec((0.0,), 8, 10, points=40), 1, 10, "complex128", 1)
    _, coarse = sampler.sample(np.broadcast_to(ket, (4, 10)), 0)
    assert coarse["homodyne_interpolation_error"] > 1e-2
    narrow = make_spec(("homodyne",), 8, (0.0,), 2.0, 512)
    _, cut = Sampler(narrow, 1, 10, "complex128", 1).sample(np.broadcast_to(ket, (4, 10)), 0)
    assert cut["homodyne_mass_error"] > 0.1


@pytest.mark.parametrize(
    ("quadratures", "expected"),
    [(["x"], (0.0, 0.0)), (["p", 0.3], (math.pi / 2, 0.3)), ([1.0], (1.0, 1.0))],
)
def test_quadrature_angles(quadratures, expected):
    assert quadrature_angles(quadratures, 2) == pytest.approx(expected)
