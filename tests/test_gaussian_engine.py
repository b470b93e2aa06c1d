"""The Gaussian engine against SF's gaussian backend (the oracle) and the compiled Fock engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvgen.circuits import blackbird_circuit, compile_circuit
from cvgen.engines import make_engine
from cvgen.program import gaussian_ops_from_program

sf = pytest.importorskip("strawberryfields")
ops = sf.ops


def random_unitary(size: int, rng) -> np.ndarray:
    from scipy.stats import unitary_group

    return unitary_group.rvs(size, random_state=rng)


def random_symplectic(modes: int, rng) -> np.ndarray:
    from thewalrus.random import random_symplectic as walrus_symplectic

    np.random.seed(int(rng.integers(2**31)))
    return walrus_symplectic(modes)


def every_op_program(rng) -> object:
    """Three modes, every Gaussian op SF has, with random arguments."""
    u = rng.uniform
    program = sf.Program(3)
    adjacency = rng.uniform(0, 1, (3, 3))
    adjacency = adjacency + adjacency.T
    with program.context as q:
        ops.GraphEmbed(adjacency, mean_photon_per_mode=0.4) | q
        ops.Dgate(u(0, 1), u(-3, 3)) | q[0]
        ops.Xgate(u(-1, 1)) | q[1]
        ops.Zgate(u(-1, 1)) | q[2]
        ops.Sgate(u(0, 1), u(-3, 3)) | q[1]
        ops.Rgate(u(-3, 3)) | q[2]
        ops.Pgate(u(-1, 1)) | q[0]
        ops.Fouriergate() | q[1]
        ops.BSgate(u(-3, 3), u(-3, 3)) | (q[0], q[2])
        ops.MZgate(u(-3, 3), u(-3, 3)) | (q[2], q[1])
        ops.S2gate(u(0, 1), u(-3, 3)) | (q[1], q[0])
        ops.CXgate(u(-1, 1)) | (q[0], q[1])
        ops.CZgate(u(-1, 1)) | (q[2], q[0])
        ops.Interferometer(random_unitary(3, rng)) | q
        ops.GaussianTransform(random_symplectic(2, rng)) | (q[2], q[0])
        ops.LossChannel(u(0.2, 1)) | q[1]
        ops.PassiveChannel(0.9 * random_unitary(2, rng)) | (q[0], q[2])
        ops.BipartiteGraphEmbed(np.array([[0, 0.6], [0.6, 0]]), mean_photon_per_mode=0.3) | (
            q[1],
            q[2],
        )
    return program


def sf_state(program):
    state = sf.Engine("gaussian").run(program).state
    return state.means(), state.cov()


def engine_state(program, modes: int):
    circuit = blackbird_circuit("name t\nversion 1.0\n\nRgate(0.0) | 0\n", 4, "complex128")
    circuit = dataclasses.replace(
        circuit, modes=modes, blackbird_text=None, ops=gaussian_ops_from_program(program)
    )
    engine = make_engine("gaussian", circuit, 1, outputs=("means", "cov"))
    means, cov = engine.states({}, 1)
    return means[0], cov[0]


@pytest.mark.parametrize("seed", range(4))
def test_every_op_matches_sf_gaussian_backend(seed):
    rng = np.random.default_rng(seed)
    program = every_op_program(rng)
    means, cov = engine_state(program, 3)
    sf_means, sf_cov = sf_state(program)
    np.testing.assert_allclose(means, sf_means, atol=1e-10, rtol=0)
    np.testing.assert_allclose(cov, sf_cov, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "prepare",
    [
        lambda q: ops.Coherent(0.7, 0.3) | q[0],
        lambda q: ops.Squeezed(0.5, 1.1) | q[1],
        lambda q: ops.DisplacedSqueezed(0.4, -0.2, 0.3, 0.9) | q[0],
        lambda q: ops.Thermal(0.8) | q[1],
        lambda q: ops.Vacuum() | q[0],
    ],
)
def test_preparations_replace_the_mode_as_in_sf(prepare):
    program = sf.Program(2)
    with program.context as q:
        ops.S2gate(0.6) | (q[0], q[1])
        ops.Dgate(0.3) | q[1]
        prepare(q)
        ops.BSgate(0.4, 0.1) | (q[0], q[1])
    means, cov = engine_state(program, 2)
    sf_means, sf_cov = sf_state(program)
    np.testing.assert_allclose(means, sf_means, atol=1e-10, rtol=0)
    np.testing.assert_allclose(cov, sf_cov, atol=1e-10, rtol=0)


def test_thermal_loss_adds_noise_to_its_own_mode_only():
    """ThermalLossChannel(T, nbar) = mixing with a thermal mode: n -> T n + (1 - T) nbar on the
    mode, correlations scaled by sqrt(T). SF 0.23's gaussian backend adds (1 - T) nbar to every
    entry of its N matrix (`nmat += (1 - T) * nbar`), other modes included, so it is the oracle
    on one mode only; on several the closed form is."""
    single = sf.Program(1)
    with single.context as q:
        ops.DisplacedSqueezed(0.4, 0.3, 0.5, 0.2) | q[0]
        ops.ThermalLossChannel(0.6, 0.7) | q[0]
    means, cov = engine_state(single, 1)
    sf_means, sf_cov = sf_state(single)
    np.testing.assert_allclose(means, sf_means, atol=1e-10, rtol=0)
    np.testing.assert_allclose(cov, sf_cov, atol=1e-10, rtol=0)
    program = sf.Program(2)
    with program.context as q:
        ops.S2gate(0.5) | (q[0], q[1])
        ops.Dgate(0.3, 0.4) | q[1]
    lossless_means, lossless_cov = engine_state(program, 2)
    with program.context as q:
        ops.ThermalLossChannel(0.6, 0.7) | q[1]
    means, cov = engine_state(program, 2)
    scale = np.diag([1, np.sqrt(0.6), 1, np.sqrt(0.6)])
    expected = scale @ lossless_cov @ scale + np.diag([0, 1, 0, 1]) * 0.4 * (2 * 0.7 + 1)
    np.testing.assert_allclose(cov, expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(means, scale @ lossless_means, atol=1e-12, rtol=0)


SCRIPT = """name gaussian_free
version 1.0

Sgate({r}, 0.3) | 0
Dgate({a}, {phi}) | 1
BSgate(0.7, {phi}) | [0, 1]
S2gate(0.2 * {r}) | [1, 2]
LossChannel({t}) | 2
Rgate(2 * {phi} + 0.1) | 2
"""


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.floats(-1, 1), st.floats(-3, 3), st.floats(0.05, 1)),
        min_size=1,
        max_size=4,
    )
)
def test_free_parameters_per_sample_match_sf(rows):
    """A batch of samples with free parameters (repeated rows included) equals SF run on each
    sample's values."""
    rows = rows + rows[:1]
    circuit = compile_circuit(blackbird_circuit(SCRIPT, 4, "complex128"), "gaussian")
    engine = make_engine("gaussian", circuit, len(rows), outputs=("means", "cov"))
    names = ("r", "a", "phi", "t")
    args = {name: np.array([row[i] for row in rows]) for i, name in enumerate(names)}
    means, cov = engine.states(args, len(rows))
    for index, row in enumerate(rows):
        program = sf.Program(3)
        r, a, phi, t = row
        with program.context as q:
            ops.Sgate(r, 0.3) | q[0]
            ops.Dgate(a, phi) | q[1]
            ops.BSgate(0.7, phi) | (q[0], q[1])
            ops.S2gate(0.2 * r) | (q[1], q[2])
            ops.LossChannel(t) | q[2]
            ops.Rgate(2 * phi + 0.1) | q[2]
        sf_means, sf_cov = sf_state(program)
        np.testing.assert_allclose(means[index], sf_means, atol=1e-10, rtol=0)
        np.testing.assert_allclose(cov[index], sf_cov, atol=1e-10, rtol=0)


def test_exact_outputs_equal_the_compiled_fock_engine_at_a_converged_cutoff():
    script = """name pure
version 1.0

Sgate({r}, 0.2) | 0
Dgate({a}, 0.4) | 1
BSgate(0.6, 0.3) | [0, 1]
S2gate(0.3) | [1, 2]
Rgate({a}) | 2
"""
    args = {"r": np.array([0.1, 0.3, 0.25]), "a": np.array([0.5, -0.2, 0.8])}
    outputs = ("quad_x", "quad_p", "mean_photon", "fock_probs")
    circuit = blackbird_circuit(script, 6, "complex128")
    gaussian = make_engine("gaussian", compile_circuit(circuit, "gaussian"), 3, outputs=outputs)
    exact = gaussian.observables(args, 3)
    converged = dataclasses.replace(circuit, cutoff=28)
    fock = make_engine("compiled", converged, 3, outputs=outputs).observables(args, 3)
    for name in outputs[:3]:
        np.testing.assert_allclose(exact[name], fock[name], atol=1e-8, rtol=0)
    box = fock["fock_probs"].reshape(3, 28, 28, 28)[:, :6, :6, :6].reshape(3, -1)
    np.testing.assert_allclose(exact["fock_probs"], box, atol=1e-8, rtol=0)
