"""Total-photon truncation: exact P U P per gate, against SF, convergence and accuracy on the QNN.

The total-photon engine keeps the states with fewer than N photons in total and applies every
gate U as P U P (P the projector onto them). That is not SF's state at per-mode cutoff N cut
down afterwards: once a gate that changes the photon number (Dgate, Sgate, ...) acts on a state
that other gates have spread, the two truncations differ. So the tests check
  - the engine against P U P computed densely in the per-mode box, for every gate kind;
  - SF exactly where the two must agree: one photon-changing gate per mode on the vacuum, then
    only gates that keep the total photon number (passive and diagonal gates);
  - elsewhere (the QNN template), that both truncations converge to the same answer.
"""

import dataclasses
import itertools

import numpy as np
import pytest
from test_compiled import BATCH, SAMPLES, random_circuit

from conftest import run_workflow, tiny_config
from cvgen import read_dataset, stages
from cvgen.circuits import CircuitSpec, circuit_from_config, compile_circuit
from cvgen.engines import configure_tensorflow, make_engine
from cvgen.engines.backend import BACKENDS, NUMPY
from cvgen.engines.compiled import CompiledEngine, compile_steps
from cvgen.engines.observables import ket_observables
from cvgen.engines.per_mode import PerModeTruncation
from cvgen.engines.sf import SFEngine
from cvgen.engines.total_photon import TotalPhotonTruncation, basis_size, basis_states
from cvgen.errors import CvgenError
from cvgen.memory import job_memory_mb
from cvgen.params import draw_parameters

EXPECTATIONS = ("quad_x", "quad_p", "mean_photon")


@pytest.fixture(scope="module")
def tf():
    return configure_tensorflow(1)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The compiled engine's array namespace: numpy and TensorFlow held to the same tolerance."""
    return request.param


def is_total_photon(engine) -> bool:
    """The compiled engine running the total-photon truncation strategy."""
    return isinstance(engine, CompiledEngine) and isinstance(
        engine.truncation, TotalPhotonTruncation
    )


def kept(modes: int, cutoff: int) -> np.ndarray:
    """The per-mode box [cutoff] * modes, True where fewer than `cutoff` photons in total."""
    return np.indices([cutoff] * modes).sum(axis=0) < cutoff


def projected_reference(spec: CircuitSpec, args: dict, count: int) -> np.ndarray:
    """Kets of P U_k P ... P U_1 P |0>, computed densely in the per-mode box of cutoff N.

    In numpy, every gate built per sample (none shared), applied by the per-mode truncation.
    """
    circuit = compile_circuit(dataclasses.replace(spec, truncation="per_mode"))
    steps = [dataclasses.replace(s, shared=False) for s in compile_steps(circuit.ops, set())]
    engine = CompiledEngine(circuit, count, xp=NUMPY, steps=steps)
    assert isinstance(engine.truncation, PerModeTruncation)
    values = {n: np.asarray(args[n][:count], np.float64) for n in args}
    mask = kept(spec.modes, spec.cutoff)[..., None]  # the per-mode state is held batch-last
    state = engine.truncation.initial()
    for index, step in enumerate(engine.steps):
        tensors = engine.truncation.prepare(index, engine._matrix(step, values, count))
        state = engine.truncation.apply(state, index, tensors) * mask
    return engine.truncation.kets(state)


def qnn(modes: int, samples: int, layers: int = 2) -> tuple[CircuitSpec, object]:
    """The QNN template with the default parameter distributions, in complex128."""
    config = tiny_config(
        circuit={"modes": modes, "layers": layers, "cutoff": 4, "dtype": "complex128"},
        n_circuits=1,
        samples_per_circuit=samples,
        shard_size=samples,
    )
    circuit = circuit_from_config(config)
    drawn = draw_parameters(circuit.parameter_names, config["parameters"], 5, 1, samples)
    return circuit, drawn


def expectations(circuit, drawn, truncation: str, cutoff: int) -> dict[str, np.ndarray]:
    """<x>, <p>, <n> of every drawn sample at one truncation and cutoff."""
    circuit = dataclasses.replace(circuit, truncation=truncation, cutoff=cutoff)
    count = len(drawn.circuit_index)
    engine = make_engine("compiled", circuit, count, drawn.circuit_names, EXPECTATIONS)
    return engine.observables(drawn.batch_args(0, count), count)


def max_error(values: dict, reference: dict) -> float:
    return max(float(np.abs(values[n] - reference[n]).max()) for n in EXPECTATIONS)


def test_basis_is_every_state_below_the_total_in_box_order():
    for modes, cutoff in [(1, 5), (2, 6), (3, 4), (4, 5)]:
        states = basis_states(modes, cutoff)
        box = np.array(list(itertools.product(range(cutoff), repeat=modes)))
        assert np.array_equal(states, box[box.sum(axis=1) < cutoff])  # lexicographic = box order
        assert len(states) == basis_size(modes, cutoff)


@pytest.mark.parametrize(("seed", "modes", "cutoff"), [(0, 1, 6), (2, 2, 7), (4, 3, 6), (5, 4, 5)])
def test_every_gate_acts_as_its_projection_on_the_kept_states(tf, backend, seed, modes, cutoff):
    """Random circuits with every gate kind (Dgate, Sgate, Vgate, BSgate, MZgate, S2gate, Rgate,
    Kgate, CKgate, an Interferometer), per-sample and per-circuit parameters, and a batch
    straddling two circuits: kets and outputs equal P U P applied gate by gate."""
    spec, drawn = random_circuit(seed, modes, cutoff, "complex128")
    spec = dataclasses.replace(spec, truncation="total")
    engine = make_engine("compiled", spec, BATCH, drawn.circuit_names, backend=backend)
    assert is_total_photon(engine) and engine.backend == backend
    for start in range(0, SAMPLES, BATCH):
        count = min(BATCH, SAMPLES - start)
        args = drawn.batch_args(start, start + count)
        kets, outputs = engine.evaluate(args, count)
        expected = projected_reference(spec, args, count)
        assert kets.shape == (count,) + (cutoff,) * modes  # embedded in the per-mode box
        assert np.abs(engine.xp.numpy(kets) - expected).max() < 1e-12
        for name, values in ket_observables(NUMPY, expected, engine.outputs).items():
            assert outputs[name].shape == values.shape, name
            assert np.abs(outputs[name] - values).max() < 1e-12, name
        assert np.all(outputs["fock_probs"][:, ~kept(modes, cutoff).reshape(-1)] == 0)
        assert np.array_equal(engine.observables(args, count)["norm"], outputs["norm"])


def test_equals_sf_cut_to_the_kept_states_when_gates_keep_the_photon_number(tf, backend):
    """One Dgate or Sgate per mode on the vacuum, then passive and diagonal gates only.

    Each first gate acts on its mode's vacuum, so P U P keeps exact amplitudes; the later gates
    keep the total photon number, so they never mix kept and dropped states, in SF's box at
    cutoff N as here. Hence the total-photon ket is SF's (cutoff N) with the states of N or more
    photons removed, to rounding. SF's own outputs differ: its state keeps those states.
    """
    modes, cutoff, count = 3, 7, 4
    gates = (
        ("Dgate", ("a0", "f0"), (0,)),
        ("Sgate", ("s1", "f1"), (1,)),
        ("Dgate", ("a2", 0.25), (2,)),
        ("BSgate", ("t0", "p0"), (0, 1)),
        ("MZgate", ("t1", "p1"), (1, 2)),
        ("Rgate", ("r0",), (0,)),
        ("Kgate", ("k1",), (1,)),
        ("CKgate", ("c02",), (0, 2)),
        ("BSgate", ("t2", "p2"), (0, 2)),  # not neighbours
        ("Kgate", ("k0",), (0,)),
    )
    names = tuple(dict.fromkeys(a for _, args, _ in gates for a in args if isinstance(a, str)))
    rng = np.random.default_rng(3)
    args = {n: rng.uniform(-1, 1, count) for n in names}
    args.update(a0=rng.uniform(0.9, 1.2, count), a2=rng.uniform(0.9, 1.2, count))
    spec = CircuitSpec(modes, cutoff, "complex128", names, gates=gates, truncation="total")
    engine = make_engine("compiled", spec, count, (), backend=backend)
    assert is_total_photon(engine) and engine.backend == backend
    kets, outputs = engine.evaluate(args, count)
    sf_engine = SFEngine(dataclasses.replace(spec, truncation="per_mode"), count)
    sf_kets = sf_engine.kets(args, count).numpy()
    cut = sf_kets * kept(modes, cutoff)
    assert np.abs(engine.xp.numpy(kets) - cut).max() < 1e-10
    for name, values in ket_observables(NUMPY, cut, engine.outputs).items():
        assert np.abs(outputs[name] - values).max() < 1e-10, name
    sf_outputs = ket_observables(NUMPY, sf_kets, engine.outputs)
    assert (sf_outputs["norm"] - outputs["norm"]).min() > 1e-3  # the cut removed something
    assert np.abs(sf_outputs["mean_photon"] - outputs["mean_photon"]).max() > 1e-2


def test_total_truncation_requires_the_compiled_engine(tf):
    spec = CircuitSpec(1, 4, "complex64", ("a",), gates=(("Dgate", ("a",), (0,)),))
    with pytest.raises(CvgenError, match="engine: compiled"):
        make_engine("sf", dataclasses.replace(spec, truncation="total"), 2)
    with pytest.raises(CvgenError, match="engine: compiled"):
        tiny_config(engine="sf", circuit={"modes": 2, "layers": 1, "truncation": "total"})


@pytest.mark.parametrize(
    ("modes", "layers", "per_mode_cutoffs", "total_cutoffs", "reference_cutoff"),
    [
        (2, 1, [5, 8, 11], [6, 10, 14], 22),
        pytest.param(3, 2, [6, 9, 12], [8, 12, 16], 24, marks=pytest.mark.slow),
    ],
)
def test_per_mode_and_total_truncation_converge_to_the_same_answer(
    tf, modes, layers, per_mode_cutoffs, total_cutoffs, reference_cutoff
):
    """QNN template: <x>, <p>, <n> of both truncations approach one reference as the cutoffs
    grow, the reference being the total truncation at a high N. Measured max |error|: 1e-2 to
    1e-3 at the lowest cutoffs, falling 160x or more per step, down to 1.5e-8 (per-mode, 11 and
    12) and 1.3e-9 or less (total, 14 and 16). The reference's own error is far below that:
    raising its N to 30 (2 modes) or 28 (3 modes) moves it by less than 1e-13."""
    circuit, drawn = qnn(modes, 6, layers)
    reference = expectations(circuit, drawn, "total", reference_cutoff)
    for truncation, cutoffs in (("per_mode", per_mode_cutoffs), ("total", total_cutoffs)):
        errors = [
            max_error(expectations(circuit, drawn, truncation, d), reference) for d in cutoffs
        ]
        assert errors[0] > 5e-4, (truncation, errors)  # the low cutoffs are visibly off
        assert all(b < a / 30 for a, b in zip(errors, errors[1:], strict=False)), errors
        assert errors[-1] < 1e-6, (truncation, errors)


@pytest.mark.parametrize(
    ("modes", "layers", "per_mode_cutoff", "total_cutoff", "reference_cutoff"),
    [
        (3, 1, 6, 10, 18),
        pytest.param(3, 2, 8, 14, 22, marks=pytest.mark.slow),
        pytest.param(4, 2, 8, 17, 24, marks=pytest.mark.slow),
    ],
)
def test_total_truncation_is_far_more_accurate_for_the_same_state_size(
    tf, modes, layers, per_mode_cutoff, total_cutoff, reference_cutoff
):
    """QNN template, default parameter distributions, about as many states both ways: 3 modes,
    220 states (total, N = 10) against 216 (per-mode, D = 6), 1 layer; 3 modes, 560 against
    512, 2 layers; 4 modes, 4845 (N = 17) against 4096 (D = 8), 2 layers. Measured max |error|
    of <x>, <p>, <n> (total against per-mode): 4.2e-5 against 4.9e-3, 2.1e-7 against 1.1e-3,
    1.3e-9 against 1.05e-3; the references are within 2e-10 of N + 4."""
    total_states, per_mode_states = basis_size(modes, total_cutoff), per_mode_cutoff**modes
    assert per_mode_states <= total_states < 1.2 * per_mode_states
    circuit, drawn = qnn(modes, 8, layers)
    reference = expectations(circuit, drawn, "total", reference_cutoff)
    per_mode = max_error(expectations(circuit, drawn, "per_mode", per_mode_cutoff), reference)
    total = max_error(expectations(circuit, drawn, "total", total_cutoff), reference)
    assert total < per_mode / 20, (total, per_mode)


def test_memory_estimate_counts_the_compact_state():
    """4 modes at cutoff 12: 1365 kept states instead of 20736; fock_probs keeps the box."""

    def estimate(truncation, outputs, batch):
        circuit = {"modes": 4, "layers": 1, "cutoff": 12, "truncation": truncation}
        config = tiny_config(circuit=circuit, outputs=outputs, memory_budget_mb=10**6)
        return job_memory_mb(config, batch)

    expectations_only = ["quad_x", "quad_p", "mean_photon", "norm"]
    growth = {
        truncation: estimate(truncation, expectations_only, 1024)
        - estimate(truncation, expectations_only, 8)
        for truncation in ("per_mode", "total")
    }
    compact_mb = 1016 * basis_size(4, 12) * 8 / 2**20
    assert 8 * compact_mb < growth["total"] < growth["per_mode"] / 4
    box_mb = 1016 * 12**4 * 4 / 2**20  # fock_probs: float32 in the per-mode box
    with_probs = estimate("total", [*expectations_only, "fock_probs"], 1024)
    assert with_probs - estimate("total", expectations_only, 1024) > 4 * box_mb


def test_total_truncation_through_the_config_and_generate_shard(tf, tmp_path):
    """A dataset's shard with circuit.truncation total: the engine, the box layout of
    fock_probs, photon counts drawn from the kept states only, and outputs equal to the engine's
    run directly."""
    circuit = {"modes": 2, "layers": 1, "cutoff": 6, "truncation": "total"}
    outputs = ["quad_x", "mean_photon", "fock_probs", "norm", "fock_samples", "homodyne"]
    parameters = [
        {"match": "input_*", "distribution": "normal", "std": 0.8, "vary": "per_sample"},
        {"match": "*", "distribution": "normal", "std": 0.1},
    ]
    config = tiny_config(
        engine="compiled",
        circuit=circuit,
        parameters=parameters,
        outputs=outputs,
        sampling={"shots": 8},
    )
    spec = circuit_from_config(config)
    assert spec.truncation == "total"
    assert is_total_photon(make_engine("compiled", spec, 4))
    stages.prepare_params(config, tmp_path / "params.h5")
    shard = stages.generate_shard(tmp_path / "params.h5", 1, tmp_path / "1.h5")
    start, stop = shard.start, shard.stop
    probs = shard.outputs["fock_probs"]
    assert probs.shape == (stop - start, 36)  # the per-mode box layout
    assert np.all(probs[:, ~kept(2, 6).reshape(-1)] == 0)
    np.testing.assert_allclose(probs.sum(axis=1), shard.outputs["norm"], rtol=1e-5)
    assert shard.outputs["norm"].min() < 0.999  # strong inputs: the truncation is visible
    assert shard.outputs["fock_samples"].sum(axis=2).max() < 6  # drawn from kept states only
    assert shard.outputs["homodyne"].shape == (stop - start, 8, 2)
    drawn = draw_parameters(
        spec.parameter_names, config["parameters"], config["seed"], 2, config["samples_per_circuit"]
    )
    engine = make_engine("compiled", spec, stop - start, drawn.circuit_names, ["quad_x", "norm"])
    direct = engine.observables(drawn.batch_args(start, stop), stop - start)
    np.testing.assert_allclose(shard.outputs["quad_x"], direct["quad_x"], atol=1e-6)
    np.testing.assert_allclose(shard.outputs["norm"], direct["norm"], atol=1e-6)


@pytest.mark.slow
def test_total_truncation_through_the_workflow(tmp_path):
    """The real workflow with circuit.truncation total: a verified dataset and its report."""
    config = {
        "dataset": "total",
        "engine": "compiled",
        "circuit": {"modes": 2, "layers": 1, "cutoff": 6, "truncation": "total"},
        "n_circuits": 2,
        "samples_per_circuit": 30,
        "shard_size": 25,
        "batch_size": 8,
        "outputs": ["quad_x", "fock_probs", "norm", "fock_samples"],
        "sampling": {"shots": 4},
    }
    result = run_workflow(tmp_path, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results/total"
    dataset = read_dataset(results / "dataset.h5")
    assert dataset.config["circuit"]["truncation"] == "total"
    probs = dataset.outputs["fock_probs"]
    assert probs.shape == (60, 36)
    assert np.all(probs[:, ~kept(2, 6).reshape(-1)] == 0)
    assert dataset.outputs["fock_samples"].sum(axis=2).max() < 6
    assert (results / "report.md").is_file()
