"""SFEngine: batching, padding, the QNN template and Blackbird scripts, against SF run directly."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from conftest import tiny_config
from cvgen.circuits import (
    CircuitSpec,
    blackbird_circuit,
    check_engine,
    choose_engine,
    circuit_from_config,
)
from cvgen.conventions import COMPUTED_OUTPUTS
from cvgen.engines import configure_tensorflow, make_engine
from cvgen.engines.backend import NUMPY
from cvgen.engines.observables import ket_observables
from cvgen.engines.sf import SFEngine
from cvgen.errors import CvgenError
from cvgen.params import draw_parameters

TIGHT = 1e-12

BLACKBIRD = """name test
version 1.0

Dgate({alpha}, 0.0) | 0
Sgate(0.15, 0.4) | 1
BSgate({theta}, 0.3) | [0, 1]
Kgate(0.5) | 0
Rgate({theta}) | 1
"""


@pytest.fixture(scope="module")
def tf():
    return configure_tensorflow(1)


def qnn_config(modes=2, layers=1, cutoff=6, **overrides):
    circuit = {"template": "qnn", "modes": modes, "layers": layers, "cutoff": cutoff}
    circuit["dtype"] = "complex128"
    parameters = [
        {"match": "input_*", "distribution": "normal", "std": 0.3, "vary": "per_sample"},
        {"match": "*", "distribution": "normal", "std": 0.3, "vary": "per_circuit"},
    ]
    settings = {"circuit": circuit, "parameters": parameters, "n_circuits": 2}
    settings.update({"samples_per_circuit": 3, "shard_size": 3, "batch_size": 4})
    settings.update(overrides)
    return tiny_config(**settings)


def drawn_args(config, spec, start, stop):
    drawn = draw_parameters(
        spec.parameter_names,
        config["parameters"],
        config["seed"],
        config["n_circuits"],
        config["samples_per_circuit"],
    )
    return drawn.batch_args(start, stop)


def take(args, start, stop):
    return {name: values[start:stop] for name, values in args.items()}


def test_batched_equals_per_sample(tf):
    config = qnn_config()
    spec = circuit_from_config(config)
    total = config["n_circuits"] * config["samples_per_circuit"]  # 6: a full and a short batch
    args = drawn_args(config, spec, 0, total)

    batched = SFEngine(spec, batch_size=4)
    kets_batched = np.concatenate(
        [batched.kets(take(args, 0, 4), 4).numpy(), batched.kets(take(args, 4, 6), 2).numpy()]
    )
    kets_single = SFEngine(spec, batch_size=1).kets(args, total).numpy()

    assert kets_batched.shape == kets_single.shape == (total, 6, 6)
    assert kets_batched.dtype == kets_single.dtype == np.complex128
    np.testing.assert_allclose(kets_batched, kets_single, rtol=0, atol=TIGHT)
    # Every sample is a different state, so a mix-up of samples could not pass unnoticed.
    for i in range(total):
        for j in range(i):
            assert np.abs(kets_single[i] - kets_single[j]).max() > 1e-3

    obs_batched = ket_observables(NUMPY, kets_batched, COMPUTED_OUTPUTS)
    obs_single = ket_observables(NUMPY, kets_single, COMPUTED_OUTPUTS)
    for name in COMPUTED_OUTPUTS:
        np.testing.assert_allclose(obs_batched[name], obs_single[name], atol=TIGHT, err_msg=name)


def test_per_sample_engine_matches_sf_unbatched(tf):
    """batch_size 1 runs SF unbatched; compare one sample with a fresh SF engine run."""
    import strawberryfields as sf

    config = qnn_config()
    spec = circuit_from_config(config)
    args = drawn_args(config, spec, 0, 2)
    kets = SFEngine(spec, batch_size=1).kets(args, 2).numpy()
    for i in range(2):
        engine = sf.Engine("tf", backend_options={"cutoff_dim": 6, "dtype": tf.complex128})
        state = engine.run(spec.build_program(), args={k: v[i] for k, v in args.items()}).state
        np.testing.assert_allclose(kets[i], state.ket().numpy(), rtol=0, atol=TIGHT)


def test_short_final_batch_is_padded_correctly(tf):
    config = qnn_config()
    spec = circuit_from_config(config)
    args = drawn_args(config, spec, 0, 4)
    engine = SFEngine(spec, batch_size=4)

    full = engine.kets(args, 4).numpy()
    assert full.shape == (4, 6, 6)
    for count in (1, 3):
        short = engine.kets(take(args, 0, count), count).numpy()
        assert short.shape == (count, 6, 6)
        np.testing.assert_allclose(short, full[:count], rtol=0, atol=TIGHT)
    # A short batch taken from the end of the range, where padding repeats a different sample.
    tail = engine.kets(take(args, 2, 4), 2).numpy()
    np.testing.assert_allclose(tail, full[2:4], rtol=0, atol=TIGHT)
    # The engine is re-usable after short batches: the same full batch gives the same kets.
    np.testing.assert_allclose(engine.kets(args, 4).numpy(), full, rtol=0, atol=TIGHT)


@pytest.mark.parametrize("modes, layers", [(1, 1), (2, 2), (3, 1), (4, 2)])
def test_qnn_program_has_exactly_the_declared_parameters(modes, layers):
    config = qnn_config(modes=modes, layers=layers, cutoff=3)
    spec = circuit_from_config(config)
    program = spec.build_program()

    assert program.num_subsystems == modes
    assert len(set(spec.parameter_names)) == len(spec.parameter_names)
    assert set(program.free_params) == set(spec.parameter_names)
    rotations = max(1, modes - 1)
    per_interferometer = modes * (modes - 1) + rotations  # BSgate theta + phi, Rgate angles
    per_layer = 2 * per_interferometer + 4 * modes  # squeeze, disp r + phi, kerr
    assert len(spec.parameter_names) == modes + layers * per_layer

    # Group the program's BSgates by interferometer (the prefix of their theta parameter).
    beamsplitters = defaultdict(list)
    for command in program.circuit:
        if type(command.op).__name__ == "BSgate":
            theta = command.op.p[0].name
            beamsplitters[theta.split("_theta_")[0]].append(tuple(r.ind for r in command.reg))
    expected_keys = {f"l{layer}_int{k}" for layer in range(layers) for k in (1, 2)}
    if modes == 1:
        assert not beamsplitters
        return
    assert set(beamsplitters) == expected_keys
    adjacent = {(m, m + 1) for m in range(modes - 1)}
    for wires in beamsplitters.values():
        assert len(wires) == modes * (modes - 1) // 2
        assert set(wires) == adjacent  # nearest neighbours only, every pair coupled


def test_blackbird_circuit_runs_like_sf(tf):
    import blackbird
    import strawberryfields as sf

    spec = blackbird_circuit(BLACKBIRD, cutoff=6, dtype="complex128")
    assert spec.modes == 2
    assert spec.parameter_names == ("alpha", "theta")
    args = {"alpha": np.array([0.1, 0.35, -0.2]), "theta": np.array([0.4, -0.9, 1.3])}
    kets = SFEngine(spec, batch_size=3).kets(args, 3).numpy()

    program = sf.io.to_program(blackbird.loads(BLACKBIRD))
    options = {"cutoff_dim": 6, "dtype": tf.complex128, "batch_size": 3}
    expected = sf.Engine("tf", backend_options=options).run(program, args=args).state.ket()
    np.testing.assert_allclose(kets, expected.numpy(), rtol=0, atol=TIGHT)

    # The same circuit written as gate data runs identically, batched and per sample.
    gates = (
        ("Dgate", ("alpha", 0.0), (0,)),
        ("Sgate", (0.15, 0.4), (1,)),
        ("BSgate", ("theta", 0.3), (0, 1)),
        ("Kgate", (0.5,), (0,)),
        ("Rgate", ("theta",), (1,)),
    )
    as_gates = CircuitSpec(2, 6, "complex128", ("alpha", "theta"), gates=gates)
    np.testing.assert_allclose(SFEngine(as_gates, 3).kets(args, 3).numpy(), kets, atol=TIGHT)
    np.testing.assert_allclose(SFEngine(spec, 1).kets(args, 3).numpy(), kets, atol=TIGHT)
    assert np.abs(kets[0] - kets[1]).max() > 1e-2


@pytest.mark.parametrize("batch_size", [1, 2])
def test_mixed_state_is_rejected(tf, batch_size):
    text = "name mixed\nversion 1.0\n\nSqueezed(0.2) | 0\nRgate(0.1) | 1\n"
    spec = blackbird_circuit(text, cutoff=4, dtype="complex128")
    assert spec.modes == 2
    with pytest.raises(CvgenError, match="mixed"):
        SFEngine(spec, batch_size).kets({}, 2)


@pytest.mark.parametrize(
    "line, op",
    [
        ("MeasureFock() | 0", "MeasureFock"),
        ("MeasureHomodyne() | 1", "MeasureHomodyne"),
    ],
)
def test_measurements_are_rejected(line, op):
    text = f"name bad\nversion 1.0\n\nDgate(0.1, 0.0) | 0\nBSgate(0.3, 0.0) | [0, 1]\n{line}\n"
    with pytest.raises(CvgenError, match=op):
        blackbird_circuit(text, cutoff=4, dtype="complex128")


def test_channels_run_on_the_gaussian_and_compiled_engines_only():
    """A lossy circuit parses; SF's engine (one pure ket per sample) refuses it, naming the
    line; the compiled engine runs it (cvgen.engines.noisy); engine auto picks gaussian for
    this Gaussian circuit."""
    text = "name lossy\nversion 1.0\n\nDgate(0.1, 0.0) | 0\nLossChannel(0.9) | 0\n"
    circuit = blackbird_circuit(text, cutoff=4, dtype="complex128")
    with pytest.raises(CvgenError, match="line 5 'LossChannel"):
        check_engine(circuit, "sf")
    check_engine(circuit, "compiled")
    check_engine(circuit, "gaussian")
    assert choose_engine("auto", circuit)[0] == "gaussian"


def test_unknown_engine_is_rejected():
    spec = CircuitSpec(1, 3, "complex128", (), gates=(("Dgate", (0.1, 0.0), (0,)),))
    with pytest.raises(CvgenError, match="unknown"):
        make_engine("nope", spec, 4)
