"""Loss and noise in the compiled engine: density matrices against SF's TF backend in mixed mode,
total-truncation density matrices against P U rho U^+ P computed densely, closed forms,
trajectory sampling against the exact density matrix, the detector model, and bad input refused
at plan time."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from cvgen.circuits import CircuitSpec
from cvgen.engines.backend import NUMPY
from cvgen.engines.compiled import ACTIONS, CompiledEngine
from cvgen.engines.noisy import DensityEngine, NoisyEngine, TrajectoryEngine
from cvgen.errors import CvgenError
from cvgen.noise import NoisePlan
from cvgen.plan import build_plan
from cvgen.program import ops_from_gates
from cvgen.sampling import Sampler, TrajectorySampler, hermite_functions, make_spec

OUTPUTS = ("quad_x", "quad_p", "mean_photon", "fock_probs", "norm")
# (gate, its arguments' ranges, modes)
GATES = [
    ("Dgate", [(0, 0.6), (-3, 3)], 1),
    ("Sgate", [(0, 0.3), (-3, 3)], 1),
    ("Rgate", [(-3, 3)], 1),
    ("Kgate", [(-0.5, 0.5)], 1),
    ("Vgate", [(-0.2, 0.2)], 1),
    ("BSgate", [(-1.5, 1.5), (-3, 3)], 2),
    ("MZgate", [(-3, 3), (-3, 3)], 2),
    ("S2gate", [(0, 0.3), (-3, 3)], 2),
    ("CKgate", [(-0.5, 0.5)], 2),
    ("LossChannel", [(0.3, 1.0)], 1),
]


def circuit_of(gates, modes: int, cutoff: int, names=()) -> CircuitSpec:
    return CircuitSpec(
        modes=modes,
        cutoff=cutoff,
        dtype="complex128",
        parameter_names=tuple(names),
        gates=tuple(gates),
        op_names=tuple(dict.fromkeys(g[0] for g in gates)),
        ops=ops_from_gates(gates),
    )


def random_circuit(rng, modes: int, count: int):
    """Gates with every argument a free parameter (SF rounds constants to float32), values."""
    gates, values = [], {}
    for _ in range(count):
        name, ranges, width = GATES[rng.integers(len(GATES))]
        if width > modes:
            continue
        wires = tuple(int(w) for w in rng.choice(modes, width, replace=False))
        args = []
        for low, high in ranges:
            key = f"p{len(values)}"
            values[key] = float(rng.uniform(low, high))
            args.append(key)
        gates.append((name, tuple(args), wires))
    for mode in range(modes):  # loss on every mode at the end, so rho is mixed
        key = f"p{len(values)}"
        values[key] = float(rng.uniform(0.4, 0.9))
        gates.append(("LossChannel", (key,), (mode,)))
    return gates, values


def sf_density(gates, values, modes: int, cutoff: int) -> tuple[np.ndarray, object]:
    """SF's TF backend (mixed mode: the program has a LossChannel), complex128."""
    import strawberryfields as sf
    import tensorflow as tf
    from strawberryfields import ops

    program = sf.Program(modes)
    symbols = dict(zip(values, program.params(*values), strict=True))
    with program.context as q:
        for name, args, wires in gates:
            getattr(ops, name)(*(symbols[a] for a in args)) | tuple(q[w] for w in wires)
    # batched, parameters as float64 arrays: SF rounds Python-number arguments to float32
    options = {"cutoff_dim": cutoff, "dtype": tf.complex128, "batch_size": 2}
    engine = sf.Engine("tf", backend_options=options)
    state = engine.run(program, args={k: np.array([v, v]) for k, v in values.items()}).state
    order = [*range(0, 2 * modes, 2), *range(1, 2 * modes, 2)]
    rho = state.dm().numpy()[0].transpose(order).reshape(cutoff**modes, cutoff**modes)
    return rho, state


def kept(modes: int, cutoff: int) -> np.ndarray:
    """The per-mode box flattened [cutoff^modes]: True where fewer than `cutoff` photons in
    total (the states total truncation keeps)."""
    return np.indices([cutoff] * modes).sum(axis=0).reshape(-1) < cutoff


def embedded(matrix: np.ndarray, wires, modes: int, cutoff: int) -> np.ndarray:
    """A gate's matrix on `wires` as a dense operator on the per-mode box of all modes."""
    width = len(wires)
    matrix = matrix.reshape(cutoff**width, cutoff**width)
    full = np.kron(matrix, np.eye(cutoff ** (modes - width))).reshape([cutoff] * (2 * modes))
    order = np.argsort([*wires, *(m for m in range(modes) if m not in wires)])
    return full.transpose([*order, *(modes + order)]).reshape(cutoff**modes, cutoff**modes)


def loss_operators(t: float, cutoff: int) -> list[np.ndarray]:
    """A_k |n> = sqrt(C(n, k) T^(n-k) (1-T)^k) |n - k>, from the closed form."""
    operators = []
    for k in range(cutoff):
        a = np.zeros((cutoff, cutoff))
        for n in range(k, cutoff):
            a[n - k, n] = math.sqrt(math.comb(n, k) * t ** (n - k) * (1 - t) ** k)
        operators.append(a)
    return operators


def amplifier_operators(g: float, cutoff: int) -> list[np.ndarray]:
    """B_k |n> = sqrt(C(n+k, k) (1 - 1/G)^k G^-(n+1)) |n + k>, cut at the box."""
    operators = []
    for k in range(cutoff):
        b = np.zeros((cutoff, cutoff))
        for n in range(cutoff - k):
            b[n + k, n] = math.sqrt(math.comb(n + k, k) * (1 - 1 / g) ** k * g ** -(n + 1))
        operators.append(b)
    return operators


def operator_stages(name: str, params: list[float], cutoff: int) -> list[list[np.ndarray]]:
    """Each stage's Kraus operators on the gate's modes (a gate: one stage of one matrix, from
    cvgen's gate builders; ThermalLossChannel: loss(T / G), then amplifier(G))."""
    if name == "LossChannel":
        return [loss_operators(params[0], cutoff)]
    if name == "ThermalLossChannel":
        t, nbar = params
        gain = 1 + (1 - t) * nbar
        return [loss_operators(t / gain, cutoff), amplifier_operators(gain, cutoff)]
    build, action = ACTIONS[name]
    matrix = build(NUMPY, *(np.array([p]) for p in params), cutoff, "complex128")[0]
    return [[np.diag(matrix.reshape(-1)) if action.startswith("diagonal") else matrix]]


def projected_density(gates, values: dict, modes: int, cutoff: int) -> np.ndarray:
    """rho [N^M, N^M] of total truncation computed densely in the per-mode box of cutoff N:
    every gate as P U rho U^+ P, every channel as P (sum_k A_k rho A_k^+) P, P the projector
    onto the kept states."""
    keep = kept(modes, cutoff)
    rho = np.zeros((cutoff**modes, cutoff**modes), complex)
    rho[0, 0] = 1
    for name, args, wires in gates:
        params = [values[a] if isinstance(a, str) else a for a in args]
        for operators in operator_stages(name, params, cutoff):
            dense = [embedded(a, wires, modes, cutoff) for a in operators]
            rho = sum(a @ rho @ a.conj().T for a in dense) * np.outer(keep, keep)
    return rho


def outputs_of(rho: np.ndarray, modes: int, cutoff: int) -> dict[str, np.ndarray]:
    """The outputs of one rho [D^M, D^M] computed densely (hbar = 2, not renormalised)."""
    lowering = np.diag(np.sqrt(np.arange(1, cutoff)), 1)
    means = [np.trace(embedded(lowering, (m,), modes, cutoff) @ rho) for m in range(modes)]
    photons = [
        np.trace(embedded(lowering.T @ lowering, (m,), modes, cutoff) @ rho).real
        for m in range(modes)
    ]
    return {
        "quad_x": 2 * np.real(means),
        "quad_p": 2 * np.imag(means),
        "mean_photon": np.array(photons),
        "fock_probs": np.real(np.diag(rho)),
        "norm": np.real(np.trace(rho)),
    }


def total(circuit: CircuitSpec) -> CircuitSpec:
    return dataclasses.replace(circuit, truncation="total")


@pytest.mark.parametrize("modes, cutoff, seed", [(1, 7, 0), (2, 5, 1), (2, 6, 2), (3, 4, 3)])
def test_density_matrix_equals_sf_mixed_mode(modes, cutoff, seed):
    rng = np.random.default_rng(seed)
    gates, values = random_circuit(rng, modes, 6 + 3 * modes)
    circuit = circuit_of(gates, modes, cutoff, values)
    engine = DensityEngine(circuit, 1, (), OUTPUTS)
    args = {name: np.array([value]) for name, value in values.items()}
    rho = engine.densities(args, 1)[0]
    reference, state = sf_density(gates, values, modes, cutoff)
    np.testing.assert_allclose(rho, reference, atol=1e-10, rtol=0)
    out = engine.observables(args, 1)
    lowering = np.diag(np.sqrt(np.arange(1, cutoff)), 1)
    for mode in range(modes):  # SF's own rho (its quad_expectation rounds through float32)
        a = np.kron(np.kron(np.eye(cutoff**mode), lowering), np.eye(cutoff ** (modes - mode - 1)))
        mean = np.trace(a @ reference)
        assert abs(out["quad_x"][0, mode] - 2 * mean.real) < 1e-10
        assert abs(out["quad_p"][0, mode] - 2 * mean.imag) < 1e-10
        assert abs(out["mean_photon"][0, mode] - np.trace(a.T @ a @ reference).real) < 1e-10
        assert abs(out["mean_photon"][0, mode] - state.mean_photon(mode)[0].numpy()[0]) < 1e-6
    np.testing.assert_allclose(out["fock_probs"][0], np.real(np.diag(reference)), atol=1e-10)
    assert abs(out["norm"][0] - np.real(np.trace(reference))) < 1e-10


def test_density_matrix_batched_per_sample_equals_one_by_one():
    gates = [
        ("Dgate", ("a", 0.3), (0,)),
        ("BSgate", (0.4, "b"), (0, 1)),
        ("LossChannel", ("t",), (1,)),
        ("Kgate", (0.2,), (1,)),
    ]
    circuit = circuit_of(gates, 2, 5, ("a", "b", "t"))
    rng = np.random.default_rng(4)
    args = {"a": rng.uniform(0, 0.5, 5), "b": rng.uniform(-1, 1, 5), "t": rng.uniform(0.2, 1, 5)}
    batched = DensityEngine(circuit, 5, (), OUTPUTS).observables(args, 5)
    single = DensityEngine(circuit, 1, (), OUTPUTS)
    for i in range(5):
        one = single.observables({k: v[i : i + 1] for k, v in args.items()}, 1)
        for name in OUTPUTS:
            np.testing.assert_allclose(batched[name][i], one[name][0], atol=1e-12)


@pytest.mark.parametrize("modes, cutoff, seed", [(1, 7, 5), (2, 5, 6), (2, 7, 7), (3, 4, 8)])
def test_total_truncation_density_matrix_is_the_projected_evolution(modes, cutoff, seed):
    """Every gate kind, LossChannel and ThermalLossChannel, per-sample and per-circuit
    parameters in one batch: rho and its outputs equal P U rho U^+ P and P (sum_k A_k rho
    A_k^+) P applied densely in the per-mode box (Kraus operators from their closed forms)."""
    rng = np.random.default_rng(seed)
    gates, values = random_circuit(rng, modes, 6 + 3 * modes)
    for _ in range(modes):
        t, nbar = f"p{len(values)}", f"p{len(values) + 1}"
        values.update({t: float(rng.uniform(0.4, 0.9)), nbar: float(rng.uniform(0.1, 0.5))})
        wire = int(rng.integers(modes))
        gates.insert(int(rng.integers(len(gates))), ("ThermalLossChannel", (t, nbar), (wire,)))
    shared = tuple(values)[::3]  # per-circuit: one value for the whole batch
    count = 3
    args = {n: v * (1 if n in shared else rng.uniform(0.8, 1.0, count)) for n, v in values.items()}
    args = {n: np.broadcast_to(v, count).copy() for n, v in args.items()}
    engine = DensityEngine(total(circuit_of(gates, modes, cutoff, values)), count, shared, OUTPUTS)
    rho = engine.densities(args, count)
    out = engine.observables(args, count)
    for i in range(count):
        sample = {n: float(v[i]) for n, v in args.items()}
        reference = projected_density(gates, sample, modes, cutoff)
        np.testing.assert_allclose(rho[i], reference, atol=1e-10, rtol=0)
        for name, value in outputs_of(reference, modes, cutoff).items():
            np.testing.assert_allclose(out[name][i], value, atol=1e-10, rtol=0, err_msg=name)
    assert np.all(out["norm"] < 1 - 1e-6)  # the projections dropped something


def test_total_truncation_density_matrix_equals_sf_where_nothing_is_dropped():
    """Single-mode gates on mode 0 only, then passive and diagonal gates and loss: SF's state
    at per-mode cutoff N never reaches N photons in total (its box holds every sector below N,
    passive gates keep the sector, loss lowers it), so total truncation must give SF's rho."""
    gates = [
        ("Dgate", ("a", "ap"), (0,)),
        ("Sgate", ("s", "sp"), (0,)),
        ("BSgate", ("t0", "p0"), (0, 1)),
        ("LossChannel", ("l0",), (0,)),
        ("MZgate", ("t1", "p1"), (1, 2)),
        ("Kgate", ("k",), (1,)),
        ("LossChannel", ("l1",), (1,)),
        ("CKgate", ("c",), (0, 2)),
        ("BSgate", ("t2", "p2"), (2, 0)),
        ("Rgate", ("r",), (2,)),
        ("LossChannel", ("l2",), (2,)),
    ]
    rng = np.random.default_rng(12)
    values = {n: float(rng.uniform(-1, 1)) for _, args, _ in gates for n in args}
    values.update(a=0.6, s=0.7, l0=0.5, l1=0.6, l2=0.5)
    modes, cutoff = 3, 6
    reference, _ = sf_density(gates, values, modes, cutoff)
    keep = kept(modes, cutoff)
    assert np.abs(reference[~keep]).max() < 1e-12  # SF's rho lies on the kept states
    engine = DensityEngine(total(circuit_of(gates, modes, cutoff, values)), 1, (), OUTPUTS)
    args = {name: np.array([value]) for name, value in values.items()}
    np.testing.assert_allclose(engine.densities(args, 1)[0], reference, atol=1e-10, rtol=0)
    out = engine.observables(args, 1)
    for name, value in outputs_of(reference, modes, cutoff).items():
        np.testing.assert_allclose(out[name][0], value, atol=1e-10, rtol=0, err_msg=name)
    assert np.real(np.trace(reference @ reference)) < 0.9 * out["norm"][0] ** 2  # mixed
    assert out["norm"][0] < 1 - 1e-4  # the cutoff cut the displaced squeezed state


def test_total_truncation_density_matrix_without_channels_is_the_pure_state():
    gates, values = random_circuit(np.random.default_rng(9), 3, 15)
    gates = [g for g in gates if g[0] != "LossChannel"]
    circuit = total(circuit_of(gates, 3, 5, values))
    rng = np.random.default_rng(10)
    count = 4
    args = {n: v * rng.uniform(0.8, 1.0, count) for n, v in values.items()}
    rho = DensityEngine(circuit, count, (), OUTPUTS).densities(args, count)
    kets, outputs = CompiledEngine(circuit, count, (), OUTPUTS).evaluate(args, count)
    kets = kets.reshape(count, -1)
    np.testing.assert_allclose(rho, kets[:, :, None] * kets[:, None, :].conj(), atol=1e-12)
    ours = DensityEngine(circuit, count, (), OUTPUTS).observables(args, count)
    for name in OUTPUTS:
        np.testing.assert_allclose(ours[name], outputs[name], atol=1e-12, err_msg=name)


def test_total_truncation_density_matrix_batched_per_sample_equals_one_by_one():
    gates = [
        ("Dgate", ("a", 0.3), (0,)),
        ("Sgate", ("s", "a"), (1,)),
        ("BSgate", (0.4, "b"), (0, 1)),
        ("LossChannel", ("t",), (1,)),
        ("Kgate", ("a",), (1,)),
        ("S2gate", ("s", 0.2), (1, 0)),
        ("ThermalLossChannel", ("t", "s"), (0,)),
        ("CKgate", ("b",), (0, 1)),
    ]
    circuit = total(circuit_of(gates, 2, 7, ("a", "b", "s", "t")))
    rng = np.random.default_rng(4)
    args = {"a": rng.uniform(0, 0.5, 5), "b": rng.uniform(-1, 1, 5), "s": rng.uniform(0, 0.3, 5)}
    args["t"] = rng.uniform(0.2, 1, 5)
    batched = DensityEngine(circuit, 5, (), OUTPUTS)
    rho, out = batched.densities(args, 5), batched.observables(args, 5)
    single = DensityEngine(circuit, 1, (), OUTPUTS)
    for i in range(5):
        one = {k: v[i : i + 1] for k, v in args.items()}
        np.testing.assert_allclose(rho[i], single.densities(one, 1)[0], atol=1e-12)
        for name, value in single.observables(one, 1).items():
            np.testing.assert_allclose(out[name][i], value[0], atol=1e-12, err_msg=name)


def test_tensorflow_holds_density_matrices_of_two_modes_at_most():
    lossy = {"circuit": {"template": "qnn", "modes": 3, "layers": 1, "cutoff": 4,
                         "loss": {"per_layer": 0.9}}, "backend": "tensorflow"}  # fmt: skip
    plan = build_plan(lossy)
    assert plan.noise.method == "trajectories" and "at most 2 modes" in plan.noise.reason
    with pytest.raises(CvgenError, match="holds at most 2 modes.*backend: numpy"):
        build_plan({**lossy, "noise": {"method": "density_matrix"}})
    assert build_plan({**lossy, "backend": "numpy"}).noise.method == "density_matrix"
    total_truncation = {**lossy, "circuit": {**lossy["circuit"], "truncation": "total"}}
    assert build_plan(total_truncation).noise.method == "density_matrix"  # held as a matrix


@pytest.mark.parametrize("truncation, modes", [("per_mode", 2), ("total", 3)])
def test_density_path_on_tensorflow_equals_numpy(truncation, modes):
    """Per-mode: two modes on TF (a 5-axis doubled state; channels act on a 6-axis view of it).
    Total: three modes, per-sample and per-circuit parameters in one batch."""
    from cvgen.engines.backend import namespace

    gates, values = random_circuit(np.random.default_rng(8), modes, 8)
    gates.insert(2, ("ThermalLossChannel", (0.7, "nbar"), (modes - 1,)))
    circuit = dataclasses.replace(
        circuit_of(gates, modes, 4, (*values, "nbar")), truncation=truncation
    )
    shared = tuple(values)[::2]
    rng = np.random.default_rng(9)
    args = {n: v * (1 if n in shared else rng.uniform(0.8, 1, 3)) for n, v in values.items()}
    args = {n: np.broadcast_to(v, 3).copy() for n, v in args.items()}
    args["nbar"] = rng.uniform(0.1, 0.4, 3)
    on_numpy = DensityEngine(circuit, 3, shared, OUTPUTS).observables(args, 3)
    tf = namespace("tensorflow", 1)
    on_tf = DensityEngine(circuit, 3, shared, OUTPUTS, tf).observables(args, 3)
    for name in OUTPUTS:
        np.testing.assert_allclose(on_tf[name], on_numpy[name], atol=1e-10, rtol=0)


@pytest.mark.parametrize("truncation", ["per_mode", "total"])
def test_trajectories_on_tensorflow_equal_numpy(truncation):
    """The same draws (keyed uniforms) on both backends, complex128: a loss with a per-circuit
    transmissivity (one Kraus table per batch) and one per sample (a table per trajectory)."""
    from cvgen.engines.backend import namespace

    gates, values = random_circuit(np.random.default_rng(11), 2, 6)
    gates.insert(3, ("ThermalLossChannel", ("t", 0.3), (1,)))
    circuit = dataclasses.replace(circuit_of(gates, 2, 5, (*values, "t")), truncation=truncation)
    shared = tuple(values)  # the final LossChannels' transmissivities among them
    rng = np.random.default_rng(12)
    args = {n: np.full(3, v) for n, v in values.items()}
    args["t"] = rng.uniform(0.5, 0.9, 3)
    rows = np.arange(10, 13)
    on_numpy = TrajectoryEngine(circuit, 3, shared, OUTPUTS, seed=4, repeats=6)
    on_tf = TrajectoryEngine(
        circuit, 3, shared, OUTPUTS, namespace("tensorflow", 1), seed=4, repeats=6
    )
    assert on_numpy.shared_tables and on_tf.shared_tables != set(on_tf.draw_names)
    expected, values_tf = on_numpy.observables(args, 3, rows), on_tf.observables(args, 3, rows)
    for name in OUTPUTS:
        np.testing.assert_allclose(values_tf[name], expected[name], atol=1e-10, rtol=0)


def test_loss_closed_forms():
    alpha, t = 0.6 * np.exp(0.4j), 0.7
    coherent = circuit_of(
        [("Dgate", (abs(alpha), np.angle(alpha)), (0,)), ("LossChannel", (t,), (0,))], 1, 25
    )
    out = DensityEngine(coherent, 1, (), OUTPUTS).observables({}, 1)
    assert abs(out["quad_x"][0, 0] - 2 * math.sqrt(t) * alpha.real) < 1e-12
    assert abs(out["mean_photon"][0, 0] - t * abs(alpha) ** 2) < 1e-12
    r = 0.4
    squeezed = circuit_of([("Sgate", (r, 0.0), (0,)), ("LossChannel", (t,), (0,))], 1, 40)
    rho = DensityEngine(squeezed, 1, (), OUTPUTS).densities({}, 1)[0]
    lowering = np.diag(np.sqrt(np.arange(1, 40)), 1)
    x = lowering + lowering.T
    variance = np.real(np.trace(x @ x @ rho)) - np.real(np.trace(x @ rho)) ** 2
    assert abs(variance - (t * math.exp(-2 * r) + 1 - t)) < 1e-10
    # a one-photon Fock state through loss: P(1) = T, P(0) = 1 - T
    lossy = DensityEngine(circuit_of([("LossChannel", (t,), (0,))], 1, 4), 1, (), OUTPUTS)
    one = np.zeros((4, 4, 1), complex)
    one[1, 1, 0] = 1
    rho = lossy.truncation.apply(
        one, 0, lossy.truncation.prepare(0, lossy._matrix(lossy.steps[0], {}, 1))
    )
    np.testing.assert_allclose(np.real(np.diag(rho[:, :, 0])), [1 - t, t, 0, 0], atol=1e-14)


def test_thermal_loss_closed_forms():
    """SF 0.23's TF backend cannot run ThermalLossChannel: the closed forms are the oracle
    (n -> T n + (1 - T) nbar, <x> -> sqrt(T) <x>, Var(x) -> T Var(x) + (1 - T)(2 nbar + 1))."""
    alpha, t, nbar = 0.5, 0.6, 0.3
    circuit = circuit_of(
        [("Dgate", (alpha, 0.0), (0,)), ("ThermalLossChannel", (t, nbar), (0,))], 1, 30
    )
    engine = DensityEngine(circuit, 1, (), OUTPUTS)
    out = engine.observables({}, 1)
    assert abs(out["quad_x"][0, 0] - 2 * math.sqrt(t) * alpha) < 1e-10
    assert abs(out["mean_photon"][0, 0] - (t * alpha**2 + (1 - t) * nbar)) < 1e-10
    rho = engine.densities({}, 1)[0]
    lowering = np.diag(np.sqrt(np.arange(1, 30)), 1)
    x = lowering + lowering.T
    variance = np.real(np.trace(x @ x @ rho)) - np.real(np.trace(x @ rho)) ** 2
    assert abs(variance - (t + (1 - t) * (2 * nbar + 1))) < 1e-9


def two_mode_lossy(cutoff: int = 5, thermal: bool = False):
    gates = [
        ("Dgate", (0.5, 0.3), (0,)),
        ("Sgate", (0.3, 0.0), (1,)),
        ("BSgate", (0.6, 0.2), (0, 1)),
        ("Kgate", (0.3,), (0,)),
        ("ThermalLossChannel", (0.6, 0.2), (0,)) if thermal else ("LossChannel", (0.6,), (0,)),
        ("BSgate", (0.4, 0.1), (0, 1)),
        ("LossChannel", (0.8,), (1,)),
    ]
    return circuit_of(gates, 2, cutoff)


@pytest.mark.parametrize("truncation, cutoff", [("per_mode", 12), ("total", 4)])
def test_trajectory_means_within_stated_error_of_exact(truncation, cutoff):
    """Both paths at the same truncation and cutoff; at N = 4 total truncation's rho is far from
    the converged one (its norm 38 standard errors away), so the agreement is the truncation's."""
    circuit = dataclasses.replace(two_mode_lossy(cutoff, thermal=True), truncation=truncation)
    names = ("quad_x", "quad_p", "mean_photon", "norm")
    exact = DensityEngine(circuit, 1, (), names).observables({}, 1)
    engine = TrajectoryEngine(circuit, 2, (), names, seed=9, repeats=2000)
    out = engine.observables({}, 2, rows=np.array([3, 70_000]))
    for name in names:
        error = out[f"{name}_stderr"]
        assert np.all(error > 0)
        assert np.all(np.abs(out[name] - exact[name][0]) < 4.5 * error), name


def noisy(circuit, batch: int, shots: int, spec, detector=(1.0, 0.0), seed: int = 11):
    plan = NoisePlan(True, "trajectories", "test", 4, *detector)
    engine = NoisyEngine(circuit, batch, (), (), noise=plan, seed=seed, shots=shots)
    sampler = TrajectorySampler(
        spec, circuit.modes, circuit.cutoff, circuit.dtype, seed, detector=detector
    )
    return engine, sampler


def draw(engine, sampler, count: int, batch: int):
    outputs = []
    for start in range(0, count, batch):
        rows = np.arange(start, min(start + batch, count))
        kets, _ = engine.evaluate({}, len(rows), rows=rows)
        outputs.append(sampler.sample(kets, start)[0])
    return {name: np.concatenate([o[name] for o in outputs]) for name in outputs[0]}


def chi_square_p(counts: np.ndarray, probs: np.ndarray) -> float:
    total = counts.sum()
    keep = probs * total >= 5
    observed = np.append(counts[keep], counts[~keep].sum())
    expected = np.append(probs[keep], probs[~keep].sum()) * total
    expected, observed = expected[expected > 0], observed[expected > 0]
    return stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue


def test_trajectory_photon_counts_match_exact_density_jointly():
    circuit = two_mode_lossy(5)
    rho_probs = DensityEngine(circuit, 1, (), ("fock_probs",)).observables({}, 1)["fock_probs"][0]
    probs = rho_probs / rho_probs.sum()
    spec = make_spec(("fock_samples", "threshold_samples"), 50, (0.0, 0.0), 6.0, 33)
    engine, sampler = noisy(circuit, 20, 50, spec)
    out = draw(engine, sampler, 100, 20)  # 5000 shots, each its own trajectory
    joint = out["fock_samples"].reshape(-1, 2).astype(int) @ np.array([5, 1])
    assert chi_square_p(np.bincount(joint, minlength=25), probs) > 1e-3
    clicks = out["threshold_samples"].reshape(-1, 2)
    no_click = [probs.reshape(5, 5)[0].sum(), probs.reshape(5, 5)[:, 0].sum()]
    patterns = clicks @ np.array([2, 1])
    expected = np.array([probs.reshape(5, 5)[0, 0], no_click[0] - probs[0], no_click[1] - probs[0]])
    expected = np.append(expected, 1 - expected.sum())
    assert chi_square_p(np.bincount(patterns, minlength=4), expected) > 1e-3


def test_trajectory_homodyne_matches_exact_marginal_of_rho():
    circuit = two_mode_lossy(8)
    rho = DensityEngine(circuit, 1, (), OUTPUTS).densities({}, 1)[0]
    reduced = np.einsum("aobo->ab", rho.reshape(8, 8, 8, 8))
    reduced /= np.trace(reduced).real
    spec = make_spec(("homodyne",), 40, (0.0, 0.0), 9.0, 1025)
    engine, sampler = noisy(circuit, 25, 40, spec)
    values = draw(engine, sampler, 100, 25)["homodyne"][:, :, 0].reshape(-1)
    grid = np.linspace(-12, 12, 8001)
    hermite = hermite_functions(grid, 8)
    density = np.real(np.einsum("gn,nm,gm->g", hermite, reduced, hermite))
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    result = stats.kstest(values, lambda x: np.interp(x, grid, cdf / cdf[-1]))
    assert result.pvalue > 1e-3


def test_trajectory_outcomes_do_not_depend_on_batch_size():
    circuit = two_mode_lossy(5)
    spec = make_spec(("homodyne", "fock_samples"), 6, (0.0, 0.0), 6.0, 65)
    first = draw(*noisy(circuit, 4, 6, spec), 12, 4)
    second = draw(*noisy(circuit, 12, 6, spec), 12, 12)
    np.testing.assert_array_equal(first["fock_samples"], second["fock_samples"])
    np.testing.assert_allclose(first["homodyne"], second["homodyne"], atol=1e-12)


def test_detector_efficiency_equals_loss_before_detector():
    eta = 0.6
    coherent = [
        ("Dgate", (1.0, 0.0), (0,)),
        ("Sgate", (0.3, 0.0), (0,)),
        ("LossChannel", (0.9,), (0,)),
    ]
    spec = make_spec(("fock_samples",), 40, (0.0,), 6.0, 33)
    engine, sampler = noisy(circuit_of(coherent, 1, 10), 25, 40, spec, detector=(eta, 0.0))
    counts = np.bincount(draw(engine, sampler, 100, 25)["fock_samples"].reshape(-1), minlength=10)
    explicit = circuit_of([*coherent, ("LossChannel", (eta,), (0,))], 1, 10)
    probs = DensityEngine(explicit, 1, (), ("fock_probs",)).observables({}, 1)["fock_probs"][0]
    assert chi_square_p(counts, probs / probs.sum()) > 1e-3


def test_dark_counts_match_click_probability_closed_form():
    nu = 0.3
    vacuum_ish = circuit_of([("Dgate", (0.5, 0.0), (0,))], 1, 12)
    spec = make_spec(("threshold_samples",), 200, (0.0,), 6.0, 33)
    sampler = Sampler(spec, 1, 12, "complex128", 3, detector=(1.0, nu))
    kets = CompiledEngine(vacuum_ish, 50, (), ("norm",)).kets({}, 50)
    clicks = sampler.sample(kets, 0)[0]["threshold_samples"].mean()
    expected = 1 - math.exp(-nu) * math.exp(-0.25)  # 1 - e^-nu P(0), P(0) = e^-|alpha|^2
    assert abs(clicks - expected) < 4 * math.sqrt(expected * (1 - expected) / 10_000)


LOSSY = {
    "circuit": {"modes": 2, "layers": 1, "cutoff": 6, "loss": {"per_layer": 0.9}},
    "n_circuits": 1,
    "samples_per_circuit": 64,
    "shard_size": 64,
    "batch_size": 16,
}


def test_plan_chooses_the_path_and_says_why():
    plan = build_plan(LOSSY)
    assert plan.engine == "compiled" and plan.noise.method == "density_matrix"
    assert "fits" in plan.noise.reason
    small = build_plan(
        {
            **LOSSY,
            "circuit": {**LOSSY["circuit"], "cutoff": 16, "modes": 3},
            "memory_budget_mb": 600,
        }
    )
    assert small.noise.method == "trajectories" and "over memory_budget_mb" in small.noise.reason
    total_truncation = {**LOSSY["circuit"], "truncation": "total"}
    fits = build_plan({**LOSSY, "circuit": total_truncation})
    assert fits.noise.method == "density_matrix" and "fits" in fits.noise.reason
    large = {**total_truncation, "modes": 3, "cutoff": 20}  # 1540 kept states: 109 MB a sample
    smaller_batch = build_plan({**LOSSY, "circuit": large, "memory_budget_mb": 600})
    assert smaller_batch.noise.method == "density_matrix"
    assert smaller_batch.batch_size < LOSSY["batch_size"]
    larger = {**large, "cutoff": 30}  # 4960 kept states: 1.13 GB a sample
    over = build_plan({**LOSSY, "circuit": larger, "memory_budget_mb": 600})
    assert over.noise.method == "trajectories" and "over memory_budget_mb" in over.noise.reason
    # N = 24 fits (2925 states: 392 MB a sample), the check's re-run at N = 28 would not
    rerun = build_plan({**LOSSY, "circuit": {**large, "cutoff": 24}, "memory_budget_mb": 600})
    assert rerun.noise.method == "trajectories" and "re-run at cutoff 28" in rerun.noise.reason
    unchecked = {**LOSSY, "circuit": {**large, "cutoff": 24}, "memory_budget_mb": 600}
    unchecked["convergence"] = {"fraction": 0}
    assert build_plan(unchecked).noise.method == "density_matrix"
    assert build_plan({**LOSSY, "noise": {"method": "trajectories"}}).noise.method == "trajectories"
    assert build_plan({"circuit": {"modes": 2, "layers": 1, "cutoff": 6}}).noise is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sampling": {"detector": {"efficiency": 1.5}}}, "efficiency 1.5 is outside [0, 1]"),
        ({"sampling": {"detector": {"dark_counts": -1}}}, "dark_counts -1.0 must be"),
        ({"engine": "sf"}, "engine sf cannot run"),
        (
            {
                "noise": {"method": "density_matrix"},
                "memory_budget_mb": 256,
                "circuit": {"modes": 3, "layers": 1, "cutoff": 14, "loss": {"per_layer": 0.9}},
            },
            "use noise.method: trajectories",
        ),
        (
            {
                "noise": {"method": "density_matrix"},
                "memory_budget_mb": 600,
                "circuit": {**LOSSY["circuit"], "modes": 3, "cutoff": 30, "truncation": "total"},
            },
            "total truncation at cutoff 30.*use noise.method: trajectories",
        ),
    ],
)
def test_bad_noise_input_is_one_error_at_plan_time(change, message):
    with pytest.raises(CvgenError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_plan({**LOSSY, **change})


def test_blackbird_channels_compile_for_the_compiled_engine(tmp_path):
    script = tmp_path / "lossy.xbb"
    script.write_text(
        "name lossy\nversion 1.0\n\nXgate(0.2) | 1\nBSgate(0.3, 0.1) | [0, 1]\n"
        "Dgate({a}, 0.0) | 0\nLossChannel({t}) | 0\nThermalLossChannel(0.8, 0.1) | 1\n"
        "Kgate(0.1) | 0\n"
    )
    config = {
        **LOSSY,
        "circuit": {"blackbird": str(script), "cutoff": 6},
        "parameters": [
            {"match": "a", "distribution": "constant", "value": 0.3},
            {"match": "t", "distribution": "uniform", "low": 0.5, "high": 1.0},
        ],
    }
    plan = build_plan(config)
    assert plan.engine == "compiled" and plan.noise.channels
    from cvgen.circuits import compile_circuit

    names = [op.name for op in compile_circuit(plan.circuit).ops]
    assert "LossChannel" in names and "ThermalLossChannel" in names and "Kgate" in names
    thermal = tmp_path / "thermal.xbb"
    thermal.write_text("name p\nversion 1.0\n\nThermal(0.1) | 0\nKgate(0.1) | 0\n")
    with pytest.raises(CvgenError, match="Thermal is not run by engine 'compiled'"):
        build_plan({**LOSSY, "circuit": {"blackbird": str(thermal), "cutoff": 6}})
