"""The compiled engine against exact references and against SF's TF backend (the oracle)."""

import functools
import subprocess
import sys

import numpy as np
import pytest
from scipy.linalg import expm

from cvgen.circuits import CircuitSpec, blackbird_circuit
from cvgen.engines import configure_tensorflow, gates, make_engine
from cvgen.engines.backend import BACKENDS, namespace
from cvgen.engines.sf import SFEngine
from cvgen.errors import CvgenError
from cvgen.params import DrawnParameters


@pytest.fixture(scope="module")
def tf():
    return configure_tensorflow(1)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The compiled engine's array namespace: numpy and TensorFlow held to the same tolerance."""
    return request.param


def ladder(cutoff):
    return np.diag(np.sqrt(np.arange(1, cutoff)), 1)


def two_mode_ladders(cutoff):
    a = ladder(cutoff)
    return np.kron(a, np.eye(cutoff)), np.kron(np.eye(cutoff), a)


def restrict(matrix, big, small, modes):
    """The top-left block of an operator on `modes` modes of cutoff big, as [m..., n...]."""
    tensor = matrix.reshape([big] * (2 * modes))
    return tensor[tuple([slice(small)] * (2 * modes))]


def build(backend, builder, *parameters, cutoff=6):
    """One gate matrix from cvgen.engines.gates in complex128, on `backend`, as numpy."""
    xp = namespace(backend)
    args = [xp.asarray([p], "float64") for p in parameters]
    return xp.numpy(getattr(gates, builder)(xp, *args, cutoff, "complex128"))[0]


# The gate kernels run on every backend against one exact reference (computed once: a D^2 = 576
# expm takes about a second).


def test_single_mode_gates_equal_exact_matrix_exponentials():
    big, d = 60, 6
    a = ladder(big)
    alpha, z = 0.7 * np.exp(0.4j), 0.5 * np.exp(0.9j)
    displacement = expm(alpha * a.T - np.conj(alpha) * a)[:d, :d]
    squeezing = expm(0.5 * (np.conj(z) * a @ a - z * a.T @ a.T))[:d, :d]
    n = np.arange(d)
    for backend in BACKENDS:
        assert np.abs(build(backend, "displacement", 0.7, 0.4) - displacement).max() < 1e-12
        assert np.abs(build(backend, "squeezing", 0.5, 0.9) - squeezing).max() < 1e-12
        assert np.allclose(build(backend, "rotation_phases", 0.3), np.exp(0.3j * n), atol=1e-14)
        assert np.allclose(build(backend, "kerr_phases", 0.2), np.exp(0.2j * n**2), atol=1e-14)
        expected = np.exp(0.1j * np.outer(n, n))
        assert np.allclose(build(backend, "cross_kerr_phases", 0.1), expected, atol=1e-14)


def test_two_mode_gates_equal_exact_matrix_exponentials():
    big, d = 24, 5
    a, b = two_mode_ladders(big)
    theta, phi = 0.6, 0.3
    generator = theta * (np.exp(1j * phi) * a @ b.T - np.exp(-1j * phi) * a.T @ b)
    beamsplitter = restrict(expm(generator), big, d, 2)
    z = 0.4 * np.exp(1.1j)
    squeezer = restrict(expm(z * a.T @ b.T - np.conj(z) * a @ b), big, d, 2)
    for backend in BACKENDS:
        built = build(backend, "beamsplitter", theta, phi, cutoff=d)
        assert np.abs(built - beamsplitter).max() < 1e-12, backend
        built = build(backend, "two_mode_squeezing", 0.4, 1.1, cutoff=d)
        assert np.abs(built - squeezer).max() < 1e-12, backend


def test_mach_zehnder_is_its_sf_decomposition():
    big, d = 24, 5
    a, b = two_mode_ladders(big)

    def bs(theta, phi):
        return expm(theta * (np.exp(1j * phi) * a @ b.T - np.exp(-1j * phi) * a.T @ b))

    def rotation(angle):
        return expm(1j * angle * a.T @ a)

    phi_in, phi_ex = 0.6, 1.3
    exact = (
        bs(np.pi / 4, np.pi / 2) @ rotation(phi_in) @ bs(np.pi / 4, np.pi / 2) @ rotation(phi_ex)
    )
    for backend in BACKENDS:
        mz = build(backend, "mach_zehnder", phi_in, phi_ex, cutoff=d)
        assert np.abs(mz - restrict(exact, big, d, 2)).max() < 1e-12, backend


def test_cubic_phase_is_built_like_sf(tf):
    from strawberryfields.backends.tfbackend.ops import cubic_phase_matrix

    reference = cubic_phase_matrix(0.15, 7, 2.0, dtype=tf.complex128).numpy()
    for backend in BACKENDS:
        assert np.abs(build(backend, "cubic_phase", 0.15, cutoff=7) - reference).max() < 1e-12


# (op, number of wires, parameter scales); args are free parameters or constants. Constants are
# drawn exactly representable in float32: SF rounds constant gate arguments to float32 even in
# complex128 (the compiled engine does not), which alone would differ by ~3e-9. For the same
# reason Zgate (SF decomposes it with a constant pi/2) and Interferometer (constant Clements
# angles) are checked against closed forms below instead of at 1e-10 against SF.
GATES = [
    ("Dgate", 1, (0.3, np.pi)),
    ("Sgate", 1, (0.2, np.pi)),
    ("Rgate", 1, (np.pi,)),
    ("Kgate", 1, (0.5,)),
    ("Vgate", 1, (0.1,)),
    ("Pgate", 1, (0.2,)),
    ("Xgate", 1, (0.3,)),
    ("BSgate", 2, (np.pi, np.pi)),
    ("MZgate", 2, (np.pi, np.pi)),
    ("S2gate", 2, (0.2, np.pi)),
    ("CKgate", 2, (0.3,)),
]
SAMPLES, CIRCUITS, BATCH = 6, 2, 4  # the second batch straddles the two circuits


def random_circuit(seed: int, modes: int, cutoff: int, dtype: str):
    """A spec using every gate that fits, and drawn values for its parameters."""
    rng = np.random.default_rng(seed)
    gates, scales = [], {}
    for m in range(modes):  # per-sample inputs: every state differs
        gates.append(("Dgate", (f"s_in{m}", 0.25), (m,)))
        scales[f"s_in{m}"] = 0.3
    usable = [g for g in GATES if g[1] <= modes] * 2
    for index in rng.permutation(len(usable)):
        op, wires, parameter_scales = usable[index]
        args = []
        for j, scale in enumerate(parameter_scales):
            # A constant Pgate is decomposed by SF into constant angles it rounds to float32.
            kind = rng.choice(["s", "c"] if op == "Pgate" else ["s", "c", "const"])
            if kind == "const":
                args.append(float(np.float32(rng.uniform(-1, 1) * scale)))
            else:
                name = f"{kind}_{len(gates)}_{j}"
                args.append(name)
                scales[name] = scale
        chosen = tuple(int(w) for w in rng.choice(modes, size=wires, replace=False))
        gates.append((op, tuple(args), chosen))
    if modes > 1:  # an interferometer, decomposed by SF's compiler
        unitary = np.linalg.qr(
            rng.normal(size=(modes, modes)) + 1j * rng.normal(size=(modes, modes))
        )[0]
        gates.append(("Interferometer", (unitary,), tuple(range(modes))))
    names = tuple(dict.fromkeys(a for _, args, _ in gates for a in args if isinstance(a, str)))
    spec = CircuitSpec(modes, cutoff, dtype, names, gates=tuple(gates))
    sample_names = tuple(n for n in names if n.startswith("s_"))
    circuit_names = tuple(n for n in names if n.startswith("c_"))
    drawn = DrawnParameters(
        circuit_names=circuit_names,
        circuit_values=rng.uniform(-1, 1, (CIRCUITS, len(circuit_names)))
        * np.array([scales[n] for n in circuit_names]),
        sample_names=sample_names,
        sample_values=rng.uniform(-1, 1, (SAMPLES, len(sample_names)))
        * np.array([scales[n] for n in sample_names]),
        circuit_index=np.repeat(np.arange(CIRCUITS), SAMPLES // CIRCUITS),
    )
    return spec, drawn


def run(engine, drawn):
    results = [
        engine.observables(
            drawn.batch_args(start, min(start + BATCH, SAMPLES)), min(BATCH, SAMPLES - start)
        )
        for start in range(0, SAMPLES, BATCH)
    ]
    return {name: np.concatenate([r[name] for r in results]) for name in results[0]}


CASES = [
    (seed, modes, cutoff, dtype)
    for seed, (modes, cutoff) in enumerate([(1, 4), (1, 12), (2, 5), (2, 8), (3, 5), (4, 4)])
    for dtype in ("complex128", "complex64")
]


@functools.cache
def sf_outputs(seed: int, modes: int, cutoff: int, dtype: str) -> dict[str, np.ndarray]:
    """SF's outputs on random_circuit(...), run once for both backends of the compiled engine."""
    spec, drawn = random_circuit(seed, modes, cutoff, dtype)
    return run(SFEngine(spec, BATCH), drawn)


@pytest.mark.parametrize(("seed", "modes", "cutoff", "dtype"), CASES)
def test_compiled_equals_sf_on_random_circuits(tf, backend, seed, modes, cutoff, dtype):
    spec, drawn = random_circuit(seed, modes, cutoff, dtype)
    expected = sf_outputs(seed, modes, cutoff, dtype)
    engine = make_engine("compiled", spec, BATCH, drawn.circuit_names, backend=backend)
    assert engine.backend == backend
    actual = run(engine, drawn)
    tolerance = 1e-10 if dtype == "complex128" else 1e-4
    norm = expected["norm"]
    assert norm.min() > 0.5  # the comparison is meaningful: most of each state is kept
    assert len(np.unique(expected["norm"])) > 1  # samples differ
    for name, values in expected.items():
        assert actual[name].dtype == values.dtype
        scale = norm.reshape(-1, *[1] * (values.ndim - 1))
        assert np.abs(actual[name] - values).max() / scale.max() < tolerance, name


def test_gates_built_once_per_circuit_are_reused_across_batches(tf):
    spec, drawn = random_circuit(3, 2, 5, "complex128")
    engine = make_engine("compiled", spec, BATCH, drawn.circuit_names)
    assert any(step.shared for step in engine.steps)
    assert any(not step.shared for step in engine.steps)
    first = engine.observables(drawn.batch_args(0, 3), 3)
    again = engine.observables(drawn.batch_args(0, 3), 3)
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_unsupported_op_names_the_op_and_suggests_sf(tf):
    spec = blackbird_circuit("name f\nversion 1.0\n\nFock(1) | 0\nDgate({a}) | 0\n", 4, "complex64")
    with pytest.raises(CvgenError, match="Fock.*engine: sf"):
        make_engine("compiled", spec, 2, ())


def random_unitary(rng, size):
    return np.linalg.qr(rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size)))[0]


@pytest.mark.parametrize("modes", [2, 3])
def test_interferometer_maps_coherent_states_by_its_unitary(tf, modes):
    """An interferometer U turns coherent amplitudes alpha into U alpha: <x> + i<p> = 2 U alpha."""
    rng = np.random.default_rng(modes)
    alpha = rng.uniform(0.1, 0.3, modes) * np.exp(1j * rng.uniform(0, 2 * np.pi, modes))
    unitary = random_unitary(rng, modes)
    gates = [("Dgate", ("r", float(np.angle(alpha[0]))), (0,))]
    gates += [("Dgate", (float(abs(a)), float(np.angle(a))), (m,)) for m, a in enumerate(alpha)][1:]
    gates += [("Interferometer", (unitary,), tuple(range(modes)))]
    spec = CircuitSpec(modes, 10, "complex128", ("r",), gates=tuple(gates))
    engine = make_engine("compiled", spec, 2, ())
    values = engine.observables({"r": np.array([abs(alpha[0]), abs(alpha[0])])}, 2)
    expected = 2 * unitary @ alpha
    assert np.abs(values["quad_x"][0] - expected.real).max() < 1e-8
    assert np.abs(values["quad_p"][0] - expected.imag).max() < 1e-8
    reference = SFEngine(spec, 2).observables({"r": np.full(2, abs(alpha[0]))}, 2)
    assert np.abs(values["quad_x"] - reference["quad_x"]).max() < 1e-7  # SF: float32 angles


def test_position_and_momentum_displacements_match_closed_forms(tf):
    gates = (("Xgate", ("x",), (0,)), ("Zgate", ("p",), (1,)))
    spec = CircuitSpec(2, 14, "complex128", ("x", "p"), gates=gates)
    args = {"x": np.array([0.3, -0.5]), "p": np.array([0.4, 0.2])}
    values = make_engine("compiled", spec, 2, ()).observables(args, 2)
    assert np.allclose(values["quad_x"][:, 0], args["x"], atol=1e-10)
    assert np.allclose(values["quad_p"][:, 1], args["p"], atol=1e-10)
    assert np.allclose(values["quad_p"][:, 0], 0, atol=1e-10)
    assert np.allclose(values["quad_x"][:, 1], 0, atol=1e-10)


@pytest.mark.parametrize(("op", "tolerance"), [("CXgate", 1e-10), ("CZgate", 1e-7)])
def test_gates_sf_decomposes_run_like_sf(tf, op, tolerance):
    """CZgate's decomposition holds a constant Rgate(pi/2) that SF rounds to float32."""
    gates = (("Dgate", ("a", 0.25), (0,)), ("Dgate", (0.125, 0.5), (1,)), (op, ("s",), (0, 1)))
    spec = CircuitSpec(2, 10, "complex128", ("a", "s"), gates=gates)
    args = {"a": np.array([0.2, 0.3]), "s": np.array([0.25, -0.4])}
    expected = SFEngine(spec, 2).observables(args, 2)
    actual = make_engine("compiled", spec, 2, ()).observables(args, 2)
    # Mode 1's own input is the same for both samples: any difference comes through the gate.
    coupled = np.abs(np.diff(expected["quad_x"][:, 1])) + np.abs(np.diff(expected["quad_p"][:, 1]))
    assert coupled.max() > 1e-3
    for name, values in expected.items():
        assert np.abs(actual[name] - values).max() < tolerance, name


NUMPY_JOB = """
import sys

from cvgen.circuits import circuit_from_config
from cvgen.engines import make_engine
from cvgen.params import draw_dataset_parameters
from cvgen.plan import validate_config

config = validate_config(
    {
        "dataset": "numpy-only",
        "seed": 7,
        "circuit": {"template": "qnn", "modes": 2, "layers": 1, "cutoff": 5},
        "n_circuits": 2,
        "samples_per_circuit": 3,
        "shard_size": 6,
        "batch_size": 4,
    }
)
circuit = circuit_from_config(config)
drawn = draw_dataset_parameters(config, circuit.parameter_names)
engine = make_engine("compiled", circuit, 4, drawn.circuit_names, backend="numpy")
values = engine.observables(drawn.batch_args(0, 4), 4)
assert values["norm"].shape == (4,) and values["norm"].min() > 0.5, values["norm"]
assert engine.describe()["backend"] == "numpy"
imported = sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")
assert "tensorflow" not in sys.modules, imported[:5]
print("ok")
"""


def test_compiled_engine_on_numpy_does_not_import_tensorflow():
    """A compiled-engine job on numpy (template circuit, compiled without SF) runs without TF."""
    result = subprocess.run(
        [sys.executable, "-c", NUMPY_JOB],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
