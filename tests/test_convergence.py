"""The convergence check: which samples it re-runs, what it measures, and what it does about it."""

import logging

import numpy as np
import pytest

from conftest import tiny_config
from cvgen.circuits import circuit_from_config, compile_circuit
from cvgen.convergence import (
    check_shard,
    checked_outputs,
    checked_rows,
    enforce_tolerance,
    suggest_cutoff,
)
from cvgen.engines import configure_tensorflow, make_engine
from cvgen.errors import CvgenError
from cvgen.params import draw_plan_parameters
from cvgen.plan import build_plan


@pytest.fixture(scope="module", autouse=True)
def tensorflow():
    configure_tensorflow(1)


def low_cutoff_config(**overrides):
    """2 modes at cutoff 4 with strong inputs: a dataset visibly wrong by truncation."""
    return tiny_config(
        circuit={"modes": 2, "layers": 1, "cutoff": 4, "dtype": "complex128"},
        parameters=[
            {"match": "input_*", "distribution": "normal", "std": 0.6, "vary": "per_sample"},
            {"match": "*", "distribution": "normal", "std": 0.1},
        ],
        samples_per_circuit=40,
        shard_size=40,
        **overrides,
    )


def shard_outputs(config, start, stop):
    """What generate_shard computed for samples [start, stop): the dataset's own plan, engine
    (at the plan's batch size) and outputs."""
    plan = build_plan(config)
    plan = plan.with_circuit(compile_circuit(plan.circuit))
    drawn = draw_plan_parameters(plan)
    engine = make_engine(
        plan.engine, plan.circuit, 8, drawn.circuit_names, plan.computed_outputs, plan.backend
    )
    outputs = {}
    for begin in range(start, stop, 8):
        end = min(begin + 8, stop)
        for name, values in engine.observables(drawn.batch_args(begin, end), end - begin).items():
            outputs.setdefault(name, []).append(values)
    outputs = {name: np.concatenate(parts) for name, parts in outputs.items()}
    return plan, engine, drawn, outputs


def test_rows_are_seeded_distinct_and_at_least_min_samples():
    config = tiny_config(convergence={"fraction": 0.1, "min_samples": 3})
    plan = build_plan(config)
    rows = checked_rows(plan, 25, 60)
    assert len(rows) == 4 and len(set(rows)) == 4  # ceil(0.1 * 35)
    assert np.all((rows >= 25) & (rows < 60)) and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, checked_rows(plan, 25, 60))
    other_seed = build_plan(tiny_config(seed=8, **_same(config)))
    assert not np.array_equal(rows, checked_rows(other_seed, 25, 60))
    assert len(checked_rows(plan, 0, 2)) == 2  # capped by the shard
    assert len(checked_rows(build_plan(tiny_config(convergence={"fraction": 0})), 0, 25)) == 0


def _same(config):
    return {"convergence": config["convergence"]}


def test_checked_outputs_default_to_the_expectation_values():
    assert checked_outputs(["quad_x", "norm", "fock_probs"]) == ("quad_x", "fock_probs")
    assert checked_outputs(["norm", "homodyne"]) == ("quad_x", "quad_p", "mean_photon")


def test_deviations_equal_sf_at_both_cutoffs():
    """The check's numbers are |SF(cutoff) - SF(cutoff + extra)| for the rows it chose."""
    config = low_cutoff_config(convergence={"fraction": 0.2, "extra_cutoff": 4})
    plan, engine, drawn, outputs = shard_outputs(config, 0, 40)
    circuit = plan.circuit
    check = check_shard(plan, engine, drawn, outputs, 0, 40)
    assert check.cutoff == 4 and check.reference_cutoff == 8 and len(check.rows) == 8
    low = make_engine("sf", circuit, 8, (), ("quad_x", "mean_photon", "fock_probs", "norm"))
    high_circuit = circuit_from_config({**config, "circuit": {**config["circuit"], "cutoff": 8}})
    high = make_engine("sf", high_circuit, 8, (), ("quad_x", "mean_photon", "fock_probs"))
    args = drawn.args_at(check.rows)
    ours, reference = low.observables(args, 8), high.observables(args, 8)
    for name in ("quad_x", "mean_photon"):
        expected = np.abs(ours[name] - reference[name])
        np.testing.assert_allclose(check.max_deviation[name], expected.max(axis=1), atol=1e-6)
        np.testing.assert_allclose(check.mean_deviation[name], expected.mean(axis=1), atol=1e-6)
    shared = reference["fock_probs"].reshape(8, 8, 8)[:, :4, :4].reshape(8, 16)
    expected = np.abs(ours["fock_probs"] - shared).max(axis=1)
    np.testing.assert_allclose(check.max_deviation["fock_probs"], expected, atol=1e-8)
    np.testing.assert_allclose(check.norm, ours["norm"], atol=1e-6)
    assert check.worst()[1] > 1e-2  # cutoff 4 with inputs of std 0.6 is visibly truncated


def test_outputs_the_dataset_lacks_are_computed_for_the_check():
    config = low_cutoff_config(outputs=["norm"], convergence={"fraction": 0.1})
    plan, engine, drawn, outputs = shard_outputs(config, 0, 40)
    check = check_shard(plan, engine, drawn, outputs, 0, 40)
    assert set(check.max_deviation) == {"quad_x", "quad_p", "mean_photon"}
    assert all(np.all(v > 0) for v in check.max_deviation.values())


def test_over_tolerance_fails_naming_output_deviation_and_a_cutoff_that_meets_it():
    config = low_cutoff_config(on_truncation="fail", convergence={"tolerance": 1e-3})
    plan, engine, drawn, outputs = shard_outputs(config, 0, 40)
    check = check_shard(plan, engine, drawn, outputs, 0, 40)
    name, worst = check.worst()
    with pytest.raises(CvgenError) as error:
        enforce_tolerance(check, plan, engine, drawn)
    message = str(error.value)
    assert f"{name} moves by up to {worst:.3g}" in message
    assert "over convergence.tolerance 0.001" in message
    suggested = int(message.split("raise circuit.cutoff to ")[1].split()[0])
    rows = check.rows[np.argsort(-check.max_deviation[name])[:4]]
    found = suggest_cutoff(engine, drawn, rows, 1e-3, 4, [suggested - 1, suggested])
    assert [row["max_deviation"] > 1e-3 for row in found["table"]] == [True, False]


def test_over_tolerance_warns_by_default_and_within_tolerance_is_quiet(caplog):
    config = low_cutoff_config(convergence={"tolerance": 1e-3})
    plan, engine, drawn, outputs = shard_outputs(config, 0, 40)
    check = check_shard(plan, engine, drawn, outputs, 0, 40)
    with caplog.at_level(logging.INFO, logger="cvgen.convergence"):
        enforce_tolerance(check, plan, engine, drawn)
        loose = build_plan(low_cutoff_config(convergence={"tolerance": 10.0}))
        enforce_tolerance(check, loose, engine, drawn)
    levels = [r.levelname for r in caplog.records if "convergence" in r.getMessage()]
    assert levels == ["WARNING", "INFO"]


def test_suggested_cutoff_is_the_first_that_meets_the_tolerance():
    config = low_cutoff_config()
    _, engine, drawn, _ = shard_outputs(config, 0, 40)
    rows = np.arange(0, 40, 5)
    found = suggest_cutoff(engine, drawn, rows, 1e-4, 3, range(3, 16))
    deviations = [row["max_deviation"] for row in found["table"]]
    assert found["cutoff"] == found["table"][-1]["cutoff"]
    assert deviations[-1] <= 1e-4 < min(deviations[:-1])
    assert deviations[0] > 10 * deviations[-1]  # errors shrink as the cutoff grows
