"""Equal-accuracy benchmark: piquasso's conventions against SF; the cutoff search end to end."""

import dataclasses
import json

import numpy as np
import pytest

from cvgen.bench import accuracy
from cvgen.bench.problems import qnn_problem
from cvgen.engines import configure_tensorflow, make_engine

needs_piquasso = pytest.mark.skipif(
    not accuracy.piquasso_available(), reason="piquasso (the bench extra) is not installed"
)


@pytest.fixture(scope="module", autouse=True)
def tensorflow():
    configure_tensorflow(1)


def strong_qnn(samples=4):
    """2 modes, 2 QNN layers, weights of std 0.3: a wrong sign in any gate moves <x> by > 0.05."""
    rules = [
        {"match": "input_*", "distribution": "normal", "std": 0.3, "vary": "per_sample"},
        {"match": "*", "distribution": "normal", "std": 0.3},
    ]
    return qnn_problem(2, 2, 4, samples, dtype="complex128", parameters=rules, seed=7)


@needs_piquasso
def test_piquasso_x_from_its_state_vector_equals_sf_at_convergence():
    circuit, drawn = strong_qnn()
    sf = make_engine("sf", dataclasses.replace(circuit, cutoff=24), 4, drawn.circuit_names)
    expected = sf.observables(drawn.batch_args(0, 4), 4)["quad_x"]
    ours = accuracy.PiquassoRunner(circuit, drawn, 28, 4)(0, 4)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-7)


@needs_piquasso
def test_piquasso_mean_position_lacks_the_conjugate_so_x_comes_from_the_state_vector():
    import piquasso as pq

    with pq.Program() as program:
        pq.Q(all) | pq.Vacuum()
        pq.Q(0) | pq.Displacement(r=0.5, phi=1.0)  # <x> = 2 * 0.5 * cos(1) with hbar = 2
    state = pq.PureFockSimulator(d=1, config=pq.Config(cutoff=30)).execute(program).state
    x = accuracy.mean_x(state.state_vector[:, None], accuracy.lowering_tables(1, 30))
    assert x[0, 0] == pytest.approx(np.cos(1.0), abs=1e-12)
    assert abs(state.mean_position(0) - np.cos(1.0)) > 0.1


@needs_piquasso
def test_piquasso_equals_compiled_total_truncation_at_the_same_cutoff():
    circuit, drawn = strong_qnn()
    total = dataclasses.replace(circuit, cutoff=6, truncation="total")
    engine = make_engine("compiled", total, 4, drawn.circuit_names, ("quad_x",))
    expected = engine.observables(drawn.batch_args(0, 4), 4)["quad_x"]
    ours = accuracy.PiquassoRunner(circuit, drawn, 6, 4)(0, 4)
    assert np.abs(ours - expected).max() < 1e-10
    assert accuracy.state_dimension("piquasso", 2, 6) == 21


def test_piquasso_is_skipped_with_a_message_when_absent(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(accuracy, "piquasso_available", lambda: False)
    summary = accuracy.run_all(tmp_path, circuits=(), settings=("piquasso",))
    assert "piquasso is not installed: skipping it" in capsys.readouterr().out
    assert "pip install -e '.[bench]'" in summary["skipped"]["piquasso"]
    assert "piquasso is not installed" in (tmp_path / "accuracy.md").read_text()


@pytest.mark.slow
def test_each_setting_meets_the_target_at_its_smallest_cutoff(tmp_path):
    summary = accuracy.run_all(
        tmp_path,
        circuits=((2, 1),),
        target=1e-2,
        test_circuits=2,
        samples_per_circuit=3,
        min_seconds=0.05,
        max_batch=16,
    )
    (entry,) = summary["circuits"]
    assert entry["reference"]["max_change"] < accuracy.REFERENCE_TOLERANCE
    assert np.shape(entry["reference"]["quad_x"]) == (6, 2)  # 2 weight draws x 3 inputs, 2 modes
    results = {r["setting"]: r for r in entry["settings"]}
    assert set(results) | set(summary["skipped"]) == set(accuracy.SETTINGS)
    for result in results.values():
        *misses, hit = result["table"]
        assert hit["cutoff"] == result["cutoff"] and hit["max_error"] <= 1e-2
        assert all(miss["max_error"] > 1e-2 for miss in misses)
        assert result["best"]["samples_per_s"] > 0
    assert results["sf"]["cutoff"] == results["compiled_per_mode"]["cutoff"]  # the same truncation
    if {"compiled_total", "piquasso"} <= set(results):
        assert results["compiled_total"]["cutoff"] == results["piquasso"]["cutoff"]
    assert json.loads((tmp_path / "accuracy.json").read_text()) == summary
    assert "| cvgen compiled | per mode |" in (tmp_path / "accuracy.md").read_text()


def test_per_mode_and_total_references_agree():
    per_mode = accuracy.reference(2, 1, circuits=2, samples=3, truncation="per_mode")
    assert per_mode["truncation"] == "per_mode"
    assert per_mode["max_change"] < accuracy.REFERENCE_TOLERANCE
    total = accuracy.reference(2, 1, circuits=2, samples=3)
    assert total["truncation"] == "total"
    assert np.abs(np.subtract(total["quad_x"], per_mode["quad_x"])).max() < 2e-6
