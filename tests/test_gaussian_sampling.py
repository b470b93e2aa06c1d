"""Exact photon statistics and the chain-rule photon-number sampler of Gaussian states
(cvgen.gaussian), against The Walrus's probabilities and closed forms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare
from thewalrus import hafnian_repeated, threshold_detection_prob
from thewalrus.quantum import density_matrix_element, probabilities, reduced_gaussian
from thewalrus.random import random_interferometer
from thewalrus.symplectic import interferometer, squeezing, two_mode_squeezing

from cvgen.gaussian.loop_hafnian import loop_hafnian
from cvgen.gaussian.photon_sampling import PhotonNumberSampler
from cvgen.gaussian.photon_statistics import (
    click_probabilities,
    mass_above,
    mode_photon_distributions,
    total_photon_distribution,
)

MODES = 3
CUTOFF = 6
SAMPLES = 20000


def lossy(cov, means, transmission):
    """Loss: cov -> T cov + (1 - T) I, means -> sqrt(T) means."""
    return transmission * cov + (1 - transmission) * np.eye(len(cov)), np.sqrt(transmission) * means


def gbs_state(seed: int, displaced: bool, transmission: float):
    """Squeezed modes through a Haar-random interferometer, then displacement and loss."""
    rng = np.random.default_rng(seed)
    symplectic = interferometer(random_interferometer(MODES)) @ squeezing(
        rng.uniform(0.2, 0.7, MODES)
    )
    means = rng.normal(0, 0.6, 2 * MODES) if displaced else np.zeros(2 * MODES)
    return lossy(symplectic @ symplectic.T, means, transmission)


def exact_probabilities(cov, means):
    """P(n) on the box n_k < CUTOFF, element by element (thewalrus's batched route fails on pure
    states under numpy 2)."""
    probs = np.zeros((CUTOFF,) * MODES)
    for pattern in np.ndindex(*probs.shape):
        probs[pattern] = density_matrix_element(means, cov, list(pattern), list(pattern)).real
    return probs


def draws(seed: int, count: int, modes: int):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, 4 * modes)), rng.random((count, modes))


def chi_square_pvalue(samples, probs) -> float:
    """Chi-square of the sample counts against probs on cells expecting >= 5, rest pooled."""
    counts = np.zeros(probs.size)
    inside = (samples < probs.shape[0]).all(axis=1)
    np.add.at(counts, np.ravel_multi_index(samples[inside].T, probs.shape), 1)
    expected = probs.ravel() * len(samples)
    keep = expected >= 5
    observed = np.r_[counts[keep], len(samples) - counts[keep].sum()]
    expected = np.r_[expected[keep], len(samples) - expected[keep].sum()]
    return chisquare(observed, expected).pvalue


@pytest.mark.parametrize("displaced", [False, True])
@pytest.mark.parametrize("transmission", [1.0, 0.6])
def test_total_photon_distribution_matches_thewalrus(displaced, transmission):
    cov, means = gbs_state(11, displaced, transmission)
    nbar = 0.2  # thermal noise on top: a mixed state even without loss
    cov = cov + 2 * nbar * np.eye(2 * MODES)
    box = probabilities(means, cov, cutoff=CUTOFF)  # mixed: thewalrus's batched route works
    totals = np.bincount(np.indices(box.shape).sum(axis=0).ravel(), box.ravel())[:CUTOFF]
    np.testing.assert_allclose(
        total_photon_distribution(cov, means, CUTOFF - 1), totals, rtol=0, atol=1e-10
    )


def test_mode_marginals_and_clicks_match_reduced_states():
    cov, means = gbs_state(12, True, 0.7)
    marginals = mode_photon_distributions(cov, means, CUTOFF - 1)
    for mode in range(MODES):
        mu, sigma = reduced_gaussian(means, cov, [mode])
        expected = probabilities(mu, sigma + 1e-3 * np.eye(2), cutoff=CUTOFF)
        mine = mode_photon_distributions(sigma + 1e-3 * np.eye(2), mu, CUTOFF - 1)[0]
        np.testing.assert_allclose(mine, expected, atol=1e-10)
        np.testing.assert_allclose(marginals[mode], total_photon_distribution(sigma, mu, 5))
        vacuum = density_matrix_element(mu, sigma, [0], [0]).real
        assert click_probabilities(cov, means)[mode] == pytest.approx(1 - vacuum, abs=1e-12)


def test_coherent_state_total_is_poisson():
    means = np.array([1.0, -0.4, 0.6, 1.2])  # alpha = (x + i p) / 2 per mode
    mean_photons = np.sum(means**2) / 4
    n = np.arange(12)
    poisson = np.exp(-mean_photons) * mean_photons**n / np.cumprod(np.r_[1, n[1:]])
    np.testing.assert_allclose(total_photon_distribution(np.eye(4), means, 11), poisson)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    counts=st.lists(st.integers(0, 4), min_size=1, max_size=4).filter(lambda c: sum(c) <= 9),
)
def test_loop_hafnian_matches_thewalrus(seed, counts):
    rng = np.random.default_rng(seed)
    size = len(counts)
    couplings = rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))
    couplings = couplings + couplings.T
    loops = rng.normal(size=size) + 1j * rng.normal(size=size)
    expected = hafnian_repeated(couplings, counts, mu=loops, loop=True) if sum(counts) else 1.0
    assert loop_hafnian(couplings, loops, counts) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("displaced", [False, True], ids=["vacuum", "displaced"])
@pytest.mark.parametrize("transmission", [1.0, 0.7], ids=["pure", "lossy"])
def test_samples_follow_exact_joint_probabilities(displaced, transmission):
    cov, means = gbs_state(3, displaced, transmission)
    sampler = PhotonNumberSampler(cov, means, ceiling=30)
    samples = sampler.sample(*draws(4, SAMPLES, MODES))
    assert chi_square_pvalue(samples, exact_probabilities(cov, means)) > 1e-3


def test_chi_square_detects_a_wrong_state():
    """The check above can fail: samples of one state against another state's probabilities."""
    cov, means = gbs_state(3, True, 0.7)
    samples = PhotonNumberSampler(cov, means, 30).sample(*draws(4, SAMPLES, MODES))
    other_cov, other_means = gbs_state(3, True, 0.6)
    assert chi_square_pvalue(samples, exact_probabilities(other_cov, other_means)) < 1e-6


def test_threshold_samples_follow_threshold_detection_prob():
    cov, means = gbs_state(5, True, 0.8)
    clicks = PhotonNumberSampler(cov, means, 30).threshold(*draws(6, SAMPLES, MODES))
    assert set(np.unique(clicks)) <= {0, 1}
    patterns = list(itertools.product([0, 1], repeat=MODES))
    expected = np.array([threshold_detection_prob(means, cov, p).real for p in patterns])
    observed = np.array([np.all(clicks == p, axis=1).sum() for p in patterns])
    assert chisquare(observed, expected * SAMPLES / expected.sum()).pvalue > 1e-3


def test_two_mode_squeezed_vacuum_gives_equal_photon_numbers():
    symplectic = two_mode_squeezing(0.9, 0.3)
    sampler = PhotonNumberSampler(symplectic @ symplectic.T, np.zeros(4), ceiling=40)
    samples = sampler.sample(*draws(7, 5000, 2))
    np.testing.assert_array_equal(samples[:, 0], samples[:, 1])
    mean = np.sinh(0.9) ** 2  # photons per mode
    assert samples[:, 0].mean() == pytest.approx(mean, rel=0.1)


def test_ceiling_is_never_exceeded_and_its_mass_is_exact():
    cov, means = gbs_state(8, True, 0.9)
    cov = cov * 3.0  # bright: mean ~ 6 photons, a heavy tail above the ceiling
    ceiling = 5
    sampler = PhotonNumberSampler(cov, means, ceiling)
    totals = sampler.sample(*draws(9, 3000, MODES)).sum(axis=1)
    assert totals.max() <= ceiling
    distribution = total_photon_distribution(cov, means, ceiling)
    assert sampler.mass_above_ceiling == pytest.approx(1 - distribution.sum(), abs=1e-14)
    assert sampler.mass_above_ceiling == pytest.approx(mass_above(cov, means, ceiling), abs=1e-14)
    assert sampler.mass_above_ceiling > 0.1
    truncated = distribution / distribution.sum()  # the capped sampler's total, within TV
    observed = np.bincount(totals, minlength=ceiling + 1) / len(totals)
    assert np.abs(observed - truncated).sum() / 2 <= sampler.mass_above_ceiling + 0.05


def test_samples_do_not_depend_on_how_calls_split():
    cov, means = gbs_state(10, True, 0.8)
    sampler = PhotonNumberSampler(cov, means, 20)
    normals, uniforms = draws(11, 300, MODES)
    whole = sampler.sample(normals, uniforms)
    parts = [sampler.sample(normals[a:b], uniforms[a:b]) for a, b in [(0, 1), (1, 120), (120, 300)]]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    again = PhotonNumberSampler(cov, means, 20).sample(normals[::-1], uniforms[::-1])
    np.testing.assert_array_equal(again[::-1], whole)


def test_wrong_draw_shapes_are_refused():
    cov, means = gbs_state(10, False, 1.0)
    with pytest.raises(ValueError, match="normals"):
        PhotonNumberSampler(cov, means, 10).sample(*draws(1, 5, MODES + 1))
