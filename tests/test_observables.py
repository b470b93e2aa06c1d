"""Ket observables against Strawberry Fields itself (the oracle) and against closed forms.

Conventions are SF's: hbar = 2, x = a + a^dagger, p = -i(a - a^dagger), expectation values of the
truncated state without renormalising. SF's `quad_expectation` at phi = pi/2 rotates in single
precision, so p is only compared to ~1e-6; everything else to ~1e-10 in complex128. Every test
runs on both array namespaces (numpy and TensorFlow), held to the same tolerances.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from cvgen.conventions import COMPUTED_OUTPUTS as OUTPUTS
from cvgen.engines import configure_tensorflow
from cvgen.engines.backend import BACKENDS, namespace
from cvgen.engines.observables import ket_observables

BATCH = 3
TIGHT = 1e-10
P_TOL = 1e-6  # SF's phi = pi/2 quadrature rotation is single precision

# SF op name -> (number of wires, scale of each argument). Scales keep states mostly in the cutoff.
GATES = {
    "Dgate": (1, (0.4, 2 * np.pi)),
    "Sgate": (1, (0.25, 2 * np.pi)),
    "Rgate": (1, (2 * np.pi,)),
    "Kgate": (1, (1.0,)),
    "Pgate": (1, (0.2,)),
    "Vgate": (1, (0.1,)),
    "BSgate": (2, (np.pi, 2 * np.pi)),
    "S2gate": (2, (0.2, 2 * np.pi)),
    "MZgate": (2, (2 * np.pi, 2 * np.pi)),
}


@pytest.fixture(scope="module")
def tf():
    return configure_tensorflow(1)


@pytest.fixture(params=BACKENDS)
def xp(request, tf):
    """The array namespace the observables are computed in."""
    return namespace(request.param)


def observe(xp, ket, outputs) -> dict[str, np.ndarray]:
    """ket_observables in namespace `xp` of a ket given as numpy or TF, as numpy arrays."""
    ket = np.asarray(ket)
    values = ket_observables(xp, xp.asarray(ket, ket.dtype.name), outputs)
    return {name: xp.numpy(value) for name, value in values.items()}


def random_circuit(modes: int, seed: int):
    """(cutoff, gates); each gate argument is a float or a per-sample array of BATCH values."""
    rng = np.random.default_rng(seed)
    cutoff = {1: 7, 2: 6, 3: 5}[modes]
    names = [n for n, (wires, _) in GATES.items() if wires <= modes]
    gates = []
    # Open with a displacement and a squeeze on every mode so no state is trivially the vacuum.
    for m in range(modes):
        gates.append(("Dgate", (rng.uniform(0.1, 0.4, BATCH), rng.uniform(0, 2 * np.pi)), (m,)))
    for m in range(modes):
        gates.append(("Sgate", (rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi, BATCH)), (m,)))
    for _ in range(int(rng.integers(4, 9))):
        name = str(rng.choice(names))
        wires, scales = GATES[name]
        args = tuple(
            rng.uniform(-1, 1, BATCH) * s if rng.random() < 0.5 else float(rng.uniform(-1, 1) * s)
            for s in scales
        )
        first = int(rng.integers(0, modes - wires + 1))
        wire_tuple = (first,) if wires == 1 else tuple(rng.permutation([first, first + 1]))
        gates.append((name, args, tuple(int(w) for w in wire_tuple)))
    return cutoff, gates


@functools.cache
def sf_state(modes: int, seed: int, dtype: str):
    """SF's batched state of random_circuit(modes, seed), run once for both namespaces."""
    cutoff, gates = random_circuit(modes, seed)
    return run_sf_batched(configure_tensorflow(1), modes, cutoff, gates, dtype)


def run_sf_batched(tf, modes, cutoff, gates, dtype):
    """Run `gates` with SF directly in batch mode; free arguments are bound per sample."""
    import strawberryfields as sf
    from strawberryfields import ops

    free = {}
    prog = sf.Program(modes)
    with prog.context as q:
        for name, args, wires in gates:
            bound = []
            for value in args:
                if isinstance(value, np.ndarray):
                    key = f"p{len(free)}"
                    free[key] = value
                    bound.append(prog.params(key))
                else:
                    bound.append(value)
            getattr(ops, name)(*bound) | tuple(q[w] for w in wires)
    options = {"cutoff_dim": cutoff, "dtype": getattr(tf, dtype), "batch_size": BATCH}
    engine = sf.Engine("tf", backend_options=options)
    return engine.run(prog, args=free).state


@pytest.mark.parametrize("modes, seed", [(1, 1), (1, 2), (2, 3), (2, 4), (3, 5), (3, 6)])
def test_observables_match_sf_on_random_circuits(xp, modes, seed):
    cutoff, _ = random_circuit(modes, seed)
    state = sf_state(modes, seed, "complex128")
    ket = state.ket()
    assert ket.shape == (BATCH,) + (cutoff,) * modes
    obs = observe(xp, ket, OUTPUTS)

    assert obs["quad_x"].shape == (BATCH, modes)
    assert obs["quad_p"].shape == (BATCH, modes)
    assert obs["mean_photon"].shape == (BATCH, modes)
    assert obs["fock_probs"].shape == (BATCH, cutoff**modes)
    assert obs["norm"].shape == (BATCH,)
    for values in obs.values():
        assert values.dtype == np.float64

    for m in range(modes):
        sf_x = state.quad_expectation(m, 0)[0].numpy()
        sf_p = state.quad_expectation(m, np.pi / 2)[0].numpy()
        sf_n = state.mean_photon(m)[0].numpy()
        np.testing.assert_allclose(obs["quad_x"][:, m], sf_x, rtol=0, atol=TIGHT)
        np.testing.assert_allclose(obs["quad_p"][:, m], sf_p, rtol=0, atol=P_TOL)
        np.testing.assert_allclose(obs["mean_photon"][:, m], sf_n, rtol=0, atol=TIGHT)
    sf_probs = state.all_fock_probs().numpy().reshape(BATCH, -1)
    np.testing.assert_allclose(obs["fock_probs"], sf_probs, rtol=0, atol=TIGHT)
    np.testing.assert_allclose(obs["norm"], sf_probs.sum(axis=1), rtol=0, atol=TIGHT)
    np.testing.assert_allclose(obs["norm"], np.real(state.trace().numpy()), rtol=0, atol=TIGHT)

    # The comparison is not vacuous: the states are displaced, per-sample different, and the
    # quadratures are far above the tolerance used for them.
    assert np.abs(obs["quad_x"]).max() > 1e-2 and np.abs(obs["quad_p"]).max() > 1e-2
    assert np.ptp(obs["mean_photon"], axis=0).max() > 1e-3
    assert np.all(obs["norm"] > 0.9) and np.all(obs["norm"] <= 1 + TIGHT)


def test_only_requested_outputs_are_returned(xp):
    ket = coherent(0.3 + 0.1j, 6)[None, :]
    assert set(observe(xp, ket, ["quad_x", "norm"])) == {"quad_x", "norm"}
    assert set(observe(xp, ket, ("mean_photon",))) == {"mean_photon"}
    only_p = observe(xp, ket, ("quad_p",))
    assert set(only_p) == {"quad_p"}
    np.testing.assert_allclose(only_p["quad_p"], [[0.2]], rtol=0, atol=1e-6)  # 2 Im(alpha)


# Closed forms, independent of SF: kets written out in the Fock basis.


def coherent(alpha: complex, cutoff: int) -> np.ndarray:
    """|alpha> = exp(-|alpha|^2/2) sum_n alpha^n / sqrt(n!) |n>, truncated."""
    n = np.arange(cutoff)
    log_fact = np.array([math.lgamma(k + 1) for k in n])
    magnitude = np.exp(-(abs(alpha) ** 2) / 2 + n * np.log(abs(alpha)) - log_fact / 2)
    return (magnitude * np.exp(1j * np.angle(alpha) * n)).astype(np.complex128)


def squeezed_vacuum(r: float, phi: float, cutoff: int) -> np.ndarray:
    """S(r, phi)|0>: <2k|psi> = (-e^{i phi} tanh r)^k sqrt((2k)!) / (2^k k! sqrt(cosh r))."""
    ket = np.zeros(cutoff, dtype=np.complex128)
    for k in range(0, (cutoff + 1) // 2):
        log_amp = 0.5 * math.lgamma(2 * k + 1) - k * math.log(2) - math.lgamma(k + 1)
        ket[2 * k] = (-np.exp(1j * phi) * np.tanh(r)) ** k * np.exp(log_amp)
    return ket / np.sqrt(np.cosh(r))


@pytest.mark.parametrize("r, phi", [(0.7, 0.4), (1.1, 2.5), (0.3, -1.2)])
def test_displaced_vacuum_closed_form(xp, r, phi):
    cutoff = 25
    ket = coherent(r * np.exp(1j * phi), cutoff)[None, :]
    obs = observe(xp, ket, OUTPUTS)
    np.testing.assert_allclose(obs["quad_x"], [[2 * r * np.cos(phi)]], rtol=0, atol=1e-10)
    np.testing.assert_allclose(obs["quad_p"], [[2 * r * np.sin(phi)]], rtol=0, atol=1e-10)
    np.testing.assert_allclose(obs["mean_photon"], [[r**2]], rtol=0, atol=1e-10)
    np.testing.assert_allclose(obs["norm"], [1.0], rtol=0, atol=1e-10)
    n = np.arange(cutoff)
    log_fact = np.array([math.lgamma(k + 1) for k in n])
    poisson = np.exp(-(r**2) + 2 * n * np.log(r) - log_fact)
    np.testing.assert_allclose(obs["fock_probs"][0], poisson, rtol=0, atol=1e-12)


def test_sf_displaced_vacuum_matches_closed_form(tf, xp):
    """SF's Dgate(r, phi) on the vacuum, unbatched, against the same closed forms (SF's Dgate
    is accurate to ~5e-8 even in complex128)."""
    import strawberryfields as sf
    from strawberryfields import ops

    r, phi = 0.6, 0.9
    prog = sf.Program(1)
    with prog.context as q:
        ops.Dgate(r, phi) | q[0]
    engine = sf.Engine("tf", backend_options={"cutoff_dim": 25, "dtype": tf.complex128})
    ket = engine.run(prog).state.ket()
    obs = observe(xp, tf.expand_dims(ket, 0), OUTPUTS)
    np.testing.assert_allclose(obs["quad_x"], [[2 * r * np.cos(phi)]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(obs["quad_p"], [[2 * r * np.sin(phi)]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(obs["mean_photon"], [[r**2]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(obs["norm"], [1.0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("r, phi", [(0.3, 0.0), (0.5, 1.3)])
def test_squeezed_vacuum_closed_form(xp, r, phi):
    cutoff = 40
    ket = squeezed_vacuum(r, phi, cutoff)[None, :]
    obs = observe(xp, ket, OUTPUTS)
    np.testing.assert_allclose(obs["quad_x"], [[0.0]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(obs["quad_p"], [[0.0]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(obs["mean_photon"], [[np.sinh(r) ** 2]], rtol=0, atol=1e-9)
    np.testing.assert_allclose(obs["norm"], [1.0], rtol=0, atol=1e-9)
    assert np.all(obs["fock_probs"][0, 1::2] == 0)  # only even photon numbers


def test_superposition_of_vacuum_and_one_photon(xp):
    """(|0> + e^{i theta}|1>)/sqrt2: <a> = e^{i theta}/2, so <x> = cos theta, <p> = sin theta."""
    theta = 0.8
    ket = np.array([[1, np.exp(1j * theta), 0, 0]]) / np.sqrt(2)
    obs = observe(xp, ket, OUTPUTS)
    np.testing.assert_allclose(obs["quad_x"], [[np.cos(theta)]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(obs["quad_p"], [[np.sin(theta)]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(obs["mean_photon"], [[0.5]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(obs["fock_probs"], [[0.5, 0.5, 0, 0]], rtol=0, atol=1e-14)


def test_vacuum_fock_probs(xp):
    for modes, cutoff in [(1, 5), (2, 4), (3, 3)]:
        ket = np.zeros((2,) + (cutoff,) * modes, dtype=np.complex128)
        ket[(slice(None),) + (0,) * modes] = 1.0
        obs = observe(xp, ket, OUTPUTS)
        expected = np.zeros(cutoff**modes)
        expected[0] = 1.0
        np.testing.assert_array_equal(obs["fock_probs"], [expected, expected])
        np.testing.assert_array_equal(obs["quad_x"], np.zeros((2, modes)))
        np.testing.assert_array_equal(obs["quad_p"], np.zeros((2, modes)))
        np.testing.assert_array_equal(obs["mean_photon"], np.zeros((2, modes)))
        np.testing.assert_array_equal(obs["norm"], [1.0, 1.0])


def test_modes_are_not_mixed_up(xp):
    """A product of two different coherent states: each mode reports its own values, and the
    Fock probabilities are flattened row-major (index n0 * D + n1, like SF's all_fock_probs)."""
    cutoff = 20
    a0, a1 = 0.5 * np.exp(0.3j), 0.9 * np.exp(-2.0j)
    k0, k1 = coherent(a0, cutoff), coherent(a1, cutoff)
    ket = np.stack([np.outer(k0, k1), np.outer(k1, k0)])
    obs = observe(xp, ket, OUTPUTS)
    x = 2 * np.array([[a0.real, a1.real], [a1.real, a0.real]])
    p = 2 * np.array([[a0.imag, a1.imag], [a1.imag, a0.imag]])
    n = np.array([[abs(a0) ** 2, abs(a1) ** 2], [abs(a1) ** 2, abs(a0) ** 2]])
    np.testing.assert_allclose(obs["quad_x"], x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(obs["quad_p"], p, rtol=0, atol=1e-9)
    np.testing.assert_allclose(obs["mean_photon"], n, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        obs["fock_probs"][0, 1 * cutoff + 2], abs(k0[1]) ** 2 * abs(k1[2]) ** 2, atol=1e-15
    )


def test_truncated_state_is_not_renormalised(xp):
    """A coherent state cut short keeps norm < 1 and <n> is the un-renormalised sum."""
    alpha, cutoff = 1.5, 4
    amplitudes = coherent(alpha, cutoff)
    obs = observe(xp, amplitudes[None, :], OUTPUTS)
    probs = np.abs(amplitudes) ** 2
    assert obs["norm"][0] < 0.95
    np.testing.assert_allclose(obs["norm"], [probs.sum()], rtol=0, atol=1e-14)
    np.testing.assert_allclose(obs["mean_photon"], [[np.arange(cutoff) @ probs]], atol=1e-14)
    lowering = np.sum(np.conj(amplitudes[:-1]) * np.sqrt(np.arange(1, cutoff)) * amplitudes[1:])
    np.testing.assert_allclose(obs["quad_x"], [[2 * lowering.real]], rtol=0, atol=1e-14)


@pytest.mark.parametrize("modes, seed", [(1, 7), (3, 8)])
def test_complex64_gives_float32_close_to_complex128(tf, xp, modes, seed):
    """Both the same ket cast to complex64 and a whole SF simulation in complex64."""
    ket128 = sf_state(modes, seed, "complex128").ket()
    ket64 = sf_state(modes, seed, "complex64").ket()
    assert ket64.dtype == tf.complex64
    obs128 = observe(xp, ket128, OUTPUTS)
    for ket in (tf.cast(ket128, tf.complex64), ket64):
        obs64 = observe(xp, ket, OUTPUTS)
        for name in OUTPUTS:
            assert obs64[name].dtype == np.float32, name
            np.testing.assert_allclose(obs64[name], obs128[name], rtol=0, atol=1e-5, err_msg=name)
