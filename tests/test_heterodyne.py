"""Heterodyne outcomes against the Husimi Q function: closed forms and SF's Gaussian backend.

Kets come from the compiled engine (numpy), except |1>, which no native gate prepares. Every
statistical test runs at a fixed seed, so it is deterministic; the thresholds (4 standard errors,
p > 1e-3) pass a correct sampler at almost any seed, and each check is paired with a nearby wrong
law (homodyne's variance, a mirrored Q function, vacuum's radius) that the same samples reject.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cvgen.circuits import CircuitSpec
from cvgen.engines import make_engine
from cvgen.engines.backend import NUMPY
from cvgen.sampling import (
    Sampler,
    batch_bytes,
    default_grid_range,
    make_spec,
    radius_bound,
    row_bytes,
    summary_names,
)


def engine_kets(modes: int, cutoff: int, gates, **args) -> np.ndarray:
    """The compiled engine's output kets [count, D, ..., D], one per value of the parameters."""
    values = {name: np.asarray(value, dtype=float) for name, value in args.items()}
    count = len(next(iter(values.values())))
    circuit = CircuitSpec(modes, cutoff, "complex128", tuple(values), gates=tuple(gates))
    return np.asarray(make_engine("compiled", circuit, count, ()).kets(values, count))


def sampler(modes, cutoff, shots, outputs=("heterodyne",), dtype="complex128", seed=11, xp=NUMPY):
    spec = make_spec(outputs, shots, (0.0,) * modes, default_grid_range(cutoff), 64)
    return Sampler(spec, modes, cutoff, dtype, seed, xp)


def draw(ket: np.ndarray, copies: int, shots: int, seed: int = 11):
    """Heterodyne pairs of `copies` copies of one ket, `shots` each: [copies * shots, M, 2]."""
    modes, cutoff = ket.ndim, ket.shape[0]
    kets = np.broadcast_to(ket, (copies, *ket.shape))
    outputs, summaries = sampler(modes, cutoff, shots, seed=seed).sample(kets, 0)
    return outputs["heterodyne"].reshape(copies * shots, modes, 2), summaries


def sf_gaussian(modes: int, build):
    """Means and covariance (xxpp order) of `build(q, ops)` on SF's Gaussian backend."""
    import strawberryfields as sf
    from strawberryfields import ops

    program = sf.Program(modes)
    with program.context as q:
        build(q, ops)
    state = sf.Engine("gaussian").run(program).state
    return state.means(), state.cov()


def xxpp(pairs: np.ndarray) -> np.ndarray:
    """Pairs [N, M, 2] as rows (x_0, ..., x_{M-1}, p_0, ..., p_{M-1}), SF's ordering."""
    return np.concatenate([pairs[..., 0], pairs[..., 1]], axis=1)


def assert_gaussian_moments(samples: np.ndarray, mean: np.ndarray, cov: np.ndarray):
    """Sample means and covariances within 4 standard errors of a Gaussian law's."""
    n = len(samples)
    assert np.all(np.abs(samples.mean(0) - mean) < 4 * np.sqrt(np.diag(cov) / n))
    error = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(samples.T) - cov) < 4 * error)


def test_coherent_state_pairs_have_its_amplitude_as_mean_and_variance_two():
    alpha = 1.1 * np.exp(0.8j)
    ket = engine_kets(1, 20, [("Dgate", ("r", 0.8), (0,))], r=[abs(alpha)])[0]
    pairs, _ = draw(ket, copies=16, shots=1024)
    x, p = pairs[:, 0].T
    mean = np.array([2 * alpha.real, 2 * alpha.imag])
    assert_gaussian_moments(pairs[:, 0], mean, 2 * np.eye(2))
    assert stats.kstest(x, stats.norm(mean[0], math.sqrt(2)).cdf).pvalue > 1e-3
    assert stats.kstest(p, stats.norm(mean[1], math.sqrt(2)).cdf).pvalue > 1e-3
    # homodyne's variance 1 (the measurement's added vacuum left out) is rejected
    assert stats.kstest(x, stats.norm(mean[0], 1).cdf).pvalue < 1e-6


def test_squeezed_vacuum_variances_add_the_vacuum_to_each_quadrature():
    r = 0.5
    ket = engine_kets(1, 24, [("Sgate", ("r", 0.0), (0,))], r=[r])[0]
    pairs, _ = draw(ket, copies=16, shots=1024)
    x, p = pairs[:, 0].T
    variances = np.array([math.exp(-2 * r) + 1, math.exp(2 * r) + 1])
    assert_gaussian_moments(pairs[:, 0], np.zeros(2), np.diag(variances))
    assert stats.kstest(x, stats.norm(0, math.sqrt(variances[0])).cdf).pvalue > 1e-3
    assert stats.kstest(p, stats.norm(0, math.sqrt(variances[1])).cdf).pvalue > 1e-3
    assert stats.kstest(x, stats.norm(0, math.exp(-r)).cdf).pvalue < 1e-6  # homodyne's law


def test_two_mode_squeezed_vacuum_covariance_is_sigma_plus_identity():
    r = 0.6
    ket = engine_kets(2, 20, [("S2gate", ("r", 0.0), (0, 1))], r=[r])[0]
    mean, cov = sf_gaussian(2, lambda q, ops: ops.S2gate(r) | (q[0], q[1]))
    pairs, _ = draw(ket, copies=16, shots=1024)
    samples = xxpp(pairs)
    expected = cov + np.eye(4)
    assert_gaussian_moments(samples, mean, expected)
    # x correlated, p anticorrelated between the modes: a conjugation slip in the conditioning
    # flips one of them
    n = len(samples)
    sampled = np.cov(samples.T)
    assert sampled[0, 1] > 10 * expected[0, 0] / math.sqrt(n)
    assert sampled[2, 3] < -10 * expected[0, 0] / math.sqrt(n)


def test_three_mode_gaussian_circuit_means_and_covariance_match_sf():
    """Displacements, squeezing, rotation and beamsplitters: every phase of the conditioning."""

    def circuit(q, ops, d=-0.3):
        ops.Sgate(0.3, 0.4) | q[0]
        ops.Dgate(0.4, 0.7) | q[0]
        ops.Sgate(-0.2) | q[1]
        ops.Dgate(d) | q[2]
        ops.BSgate(0.6, 0.2) | (q[0], q[1])
        ops.Rgate(0.5) | q[2]
        ops.BSgate(0.4, -0.3) | (q[1], q[2])

    gates = [
        ("Sgate", (0.3, 0.4), (0,)),
        ("Dgate", (0.4, 0.7), (0,)),
        ("Sgate", (-0.2, 0.0), (1,)),
        ("Dgate", ("d", 0.0), (2,)),
        ("BSgate", (0.6, 0.2), (0, 1)),
        ("Rgate", (0.5,), (2,)),
        ("BSgate", (0.4, -0.3), (1, 2)),
    ]
    ket = engine_kets(3, 12, gates, d=[-0.3])[0]
    assert np.sum(np.abs(ket) ** 2) > 1 - 1e-6  # converged, far below the statistical error
    mean, cov = sf_gaussian(3, circuit)
    pairs, _ = draw(ket, copies=16, shots=512)
    assert_gaussian_moments(xxpp(pairs), mean, cov + np.eye(6))


def kerr_q(x: np.ndarray, p: np.ndarray, beta: float, kappa: float) -> np.ndarray:
    """Density of (x, p) = 2 alpha for Kgate(kappa) Dgate(beta)|0>: |<alpha|psi>|^2 / (4 pi),
    summed independently of the sampler and the engine (to n = 80, far beyond the cutoff)."""
    alpha = (x + 1j * p) / 2
    n = np.arange(80)
    ratios = np.concatenate(
        [np.ones_like(alpha)[..., None], (np.conj(alpha) * beta)[..., None] / n[1:]], axis=-1
    )
    terms = np.cumprod(ratios, axis=-1) * np.exp(1j * kappa * n**2)  # (conj(alpha) beta)^n / n!
    overlap = np.exp(-(np.abs(alpha) ** 2 + beta**2) / 2) * terms.sum(-1)
    return np.abs(overlap) ** 2 / (4 * math.pi)


def binned_probabilities(density, edges: np.ndarray) -> np.ndarray:
    """Integrals of density(x, p) over each cell of a square grid, by 8 x 8 Gauss-Legendre."""
    nodes, weights = np.polynomial.legendre.leggauss(8)
    width = np.diff(edges)[0]
    points = (edges[:-1, None] + width * (nodes + 1) / 2).reshape(-1)
    x, p = np.meshgrid(points, points, indexing="ij")
    cells = len(edges) - 1
    values = density(x, p).reshape(cells, 8, cells, 8)
    return np.einsum("anbm,n,m->ab", values, weights, weights) * (width / 2) ** 2


def test_kerr_state_histogram_matches_its_q_function():
    """Non-Gaussian, with a bent, asymmetric Q function: a 2D histogram's chi-square."""
    beta, kappa = 1.2, 0.6
    ket = engine_kets(1, 24, [("Dgate", (beta, 0.0), (0,)), ("Kgate", ("k",), (0,))], k=[kappa])[0]
    pairs, _ = draw(ket, copies=16, shots=1024)
    edges = np.linspace(-6, 6, 13)
    counts, _, _ = np.histogram2d(pairs[:, 0, 0], pairs[:, 0, 1], bins=[edges, edges])
    n = len(pairs)

    def pvalue(kappa_law):
        probs = binned_probabilities(lambda x, p: kerr_q(x, p, beta, kappa_law), edges).ravel()
        frequent = probs * n >= 5  # the rest, and the mass beyond the grid, as one bin
        observed = np.append(counts.ravel()[frequent], n - counts.ravel()[frequent].sum())
        expected = np.append(probs[frequent] * n, n - probs[frequent].sum() * n)
        assert frequent.sum() > 40
        return stats.chisquare(observed, expected).pvalue

    assert pvalue(kappa) > 1e-3
    assert pvalue(-kappa) < 1e-6  # the mirror image p -> -p


def test_single_photon_radius_is_gamma_two_and_angle_uniform():
    """Q(alpha) = |alpha|^2 e^{-|alpha|^2} / pi: |alpha|^2 ~ Gamma(2), the angle uniform."""
    ket = np.zeros(8, complex)
    ket[1] = 1
    pairs, summaries = draw(ket, copies=16, shots=1024)
    x, p = pairs[:, 0].T
    u = (x * x + p * p) / 4
    assert stats.kstest(u, stats.gamma(2).cdf).pvalue > 1e-3
    assert (
        stats.kstest(np.arctan2(p, x) % (2 * np.pi), stats.uniform(0, 2 * np.pi).cdf).pvalue > 1e-3
    )
    assert stats.kstest(u, stats.gamma(1).cdf).pvalue < 1e-6  # vacuum's radius
    # <x> = <p> = 0, <x^2> = <p^2> = 3, so E[x_h^2] = E[p_h^2] = 4
    assert np.allclose(summaries["heterodyne_moments"] / 16, [[0, 0, 4, 4, 0]], atol=1e-12)


def test_large_amplitude_at_high_cutoff_stays_finite_and_exact():
    """|alpha| = 4.5 at cutoff 60: r^n / sqrt(n!) up to ~1e8, in logs throughout."""
    alpha = 4.5 * np.exp(-2.0j)
    ket = engine_kets(
        2, 60, [("Dgate", ("r", -2.0), (0,)), ("BSgate", (0.0, 0.0), (0, 1))], r=[abs(alpha)]
    )[0]
    pairs, _ = draw(ket, copies=4, shots=1024)
    assert np.all(np.isfinite(pairs))
    mean = np.array([2 * alpha.real, 0, 2 * alpha.imag, 0])
    assert_gaussian_moments(xxpp(pairs), mean, 2 * np.eye(4))


def random_kets(count: int, modes: int, cutoff: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (count,) + (cutoff,) * modes
    kets = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    return kets / np.linalg.norm(kets.reshape(count, -1), axis=1).reshape((count,) + (1,) * modes)


def test_outcomes_depend_only_on_the_samples_position():
    kets = random_kets(40, 2, 5)
    whole, _ = sampler(2, 5, 3).sample(kets, 1000)  # straddles the block boundary at 1024
    part, _ = sampler(2, 5, 3).sample(kets[17:31], 1017)
    # up to float rounding (BLAS sums in a batch-size dependent order)
    assert np.abs(whole["heterodyne"][17:31] - part["heterodyne"]).max() < 1e-9
    other, _ = sampler(2, 5, 3, seed=12).sample(kets, 1000)
    assert not np.allclose(other["heterodyne"], whole["heterodyne"])


def test_moment_summaries_are_the_exact_moments_of_each_state():
    """Summed over a batch of different Gaussian states, against SF's means and covariances:
    E[x_h] = <x>, E[x_h^2] = Var(x) + <x>^2 + 1, E[x_h p_h] = Cov(x, p) + <x><p>."""
    values = [(0.3, 0.2), (-0.5, 0.4), (0.1, -0.3)]  # (displacement, squeezing) per sample

    def circuit(q, ops, d, s):
        ops.Sgate(s, 0.7) | q[0]
        ops.Dgate(d, 0.3) | q[0]
        ops.Sgate(0.2) | q[1]
        ops.BSgate(0.5, 0.4) | (q[0], q[1])

    gates = [
        ("Sgate", ("s", 0.7), (0,)),
        ("Dgate", ("d", 0.3), (0,)),
        ("Sgate", (0.2, 0.0), (1,)),
        ("BSgate", (0.5, 0.4), (0, 1)),
    ]
    d, s = np.array(values).T
    kets = engine_kets(2, 24, gates, d=d, s=s)
    _, summaries = sampler(2, 24, 2).sample(kets, 0)
    expected = np.zeros((2, 5))
    for d_value, s_value in values:
        mean, cov = sf_gaussian(2, lambda q, ops, d=d_value, s=s_value: circuit(q, ops, d, s))
        for mode in range(2):
            x, p = mode, mode + 2
            second = cov + np.outer(mean, mean)
            expected[mode] += [mean[x], mean[p], second[x, x] + 1, second[p, p] + 1, second[x, p]]
    assert np.abs(summaries["heterodyne_moments"] - expected).max() < 1e-8
    assert np.abs(expected[:, 4]).max() > 0.1  # the x-p moment is tested, not just zero


def test_radius_bound_leaves_under_1e18_of_any_fock_state_outside():
    for cutoff in [1, 2, 5, 10, 30, 60, 150, 1000]:
        # P(|alpha|^2 > R^2) for |cutoff - 1>, the widest: P(Poisson(R^2) <= cutoff - 1)
        assert stats.poisson.cdf(cutoff - 1, radius_bound(cutoff) ** 2) < 1e-18


def test_memory_estimate_and_row_width_count_heterodyne():
    spec = make_spec(("heterodyne",), 3, (0.0, 0.0), 5.0, 64)
    assert row_bytes(spec, 2, 10, "complex64") == 3 * 2 * 2 * 4
    assert summary_names(["heterodyne"], 2) == ["heterodyne_moments"]
    # more shots or a longer batch costs more
    more = make_spec(("heterodyne",), 6, (0.0, 0.0), 5.0, 64)
    assert batch_bytes(more, 2, 10, "complex64", 8) > batch_bytes(spec, 2, 10, "complex64", 8)
    assert batch_bytes(spec, 2, 10, "complex64", 16) > batch_bytes(spec, 2, 10, "complex64", 8)


@pytest.mark.parametrize(("dtype", "rtol"), [("complex64", 1e-5), ("complex128", 1e-10)])
def test_numpy_and_tensorflow_draw_the_same_heterodyne_outcomes(dtype, rtol):
    from cvgen.engines.backend import namespace

    tensorflow = namespace("tensorflow", threads=1)
    kets = random_kets(6, 2, 5).astype(dtype)
    outputs = ("homodyne", "heterodyne", "fock_samples")  # sharing one kernel
    results = [
        sampler(2, 5, 4, outputs, dtype, xp=xp).sample(xp.asarray(kets, dtype), 3000)
        for xp in (NUMPY, tensorflow)
    ]
    (values, summaries), (expected, expected_summaries) = results
    real = np.float32 if dtype == "complex64" else np.float64
    assert values["heterodyne"].shape == (6, 4, 2, 2) and values["heterodyne"].dtype == real
    assert summaries["heterodyne_moments"].shape == (2, 5)
    assert summaries["heterodyne_moments"].dtype == real
    assert expected["heterodyne"].dtype == real
    # outcomes are of order 1 (hbar = 2): the relative tolerance doubles as the absolute one
    assert np.allclose(values["heterodyne"], expected["heterodyne"], rtol=rtol, atol=rtol)
    assert np.allclose(
        summaries["heterodyne_moments"], expected_summaries["heterodyne_moments"], rtol=rtol
    )
    assert np.array_equal(values["fock_samples"], expected["fock_samples"])
