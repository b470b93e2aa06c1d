"""The dataset plan: every fact derived once from the config, and carried as a value."""

import pytest

from conftest import tiny_config
from cvgen.circuits import compile_circuit
from cvgen.engines.cost import RATE, job_seconds
from cvgen.plan import build_plan, plan_from_json


def test_plan_round_trips_through_json_with_its_op_list():
    plan = build_plan(tiny_config(n_circuits=3, outputs=["quad_x", "homodyne"]))
    plan = plan.with_circuit(compile_circuit(plan.circuit))
    again = plan_from_json(plan.to_json())
    assert again == plan
    assert again.circuit.ops == plan.circuit.ops and again.sampling == plan.sampling


def test_plan_holds_the_derived_facts():
    plan = build_plan(tiny_config(shard_size=25))
    assert plan.shards == ((0, 25), (25, 50), (50, 60)) and plan.n_samples == 60
    assert plan.computed_outputs == tuple(n for n in plan.outputs if n != "homodyne")
    assert plan.batch_size == plan.configured_batch_size == 8
    assert plan.memory_mb > 0 and plan.runtime_minutes >= 10 and plan.threads == 1
    with pytest.raises(Exception, match="shard 3 does not exist"):
        plan.shard(3)


def test_batch_size_shrunk_by_the_memory_budget_is_the_one_recorded():
    circuit = {"modes": 4, "layers": 1, "cutoff": 10}
    plan = build_plan(tiny_config(circuit=circuit, batch_size=1024, memory_budget_mb=600))
    assert plan.configured_batch_size == 1024 and plan.batch_size < 1024


@pytest.mark.parametrize(
    ("overrides", "backend", "reason"),
    [
        ({}, "numpy", "auto: estimated"),
        ({"backend": "tensorflow"}, "tensorflow", "backend: tensorflow in the config"),
        ({"backend": "numpy"}, "numpy", "backend: numpy in the config"),
        ({"engine": "sf"}, "tensorflow", "engine sf runs on Strawberry Fields' TF backend"),
    ],
)
def test_backend_and_its_reason(overrides, backend, reason):
    plan = build_plan(tiny_config(**overrides))
    assert plan.backend == backend and plan.backend_reason.startswith(reason)


def test_cost_model_prefers_tensorflow_only_where_its_rate_pays_for_its_start_up():
    small = {"work": 1e4, "steps": 20, "samples": 16384, "batch_size": 256}
    assert job_seconds("numpy", **small) < job_seconds("tensorflow", **small)
    assert job_seconds("tensorflow", **small) > 2  # TF's import alone
    large = {"work": 1e9, "steps": 60, "samples": 1_000_000, "batch_size": 64}
    ratio = job_seconds("numpy", **large) / job_seconds("tensorflow", **large)
    assert ratio == pytest.approx(RATE["tensorflow"] / RATE["numpy"], rel=0.05)  # rates decide
