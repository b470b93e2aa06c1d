"""What a generation job asks the scheduler for: time limit and threads, from the shard."""

import re

import pytest

from conftest import run_workflow, tiny_config
from cvgen import resources
from cvgen.circuits import CircuitSpec, blackbird_circuit
from cvgen.resources import (
    estimated_shard_seconds,
    gate_work,
    seconds_per_sample,
    shard_runtime_minutes,
    shard_threads,
)


def test_runtime_estimate_grows_linearly_with_shard_size():
    small = tiny_config(samples_per_circuit=10_000, shard_size=1_000)
    large = tiny_config(samples_per_circuit=10_000, shard_size=4_000)
    startup = resources.STARTUP_S
    small_compute = estimated_shard_seconds(small) - startup
    large_compute = estimated_shard_seconds(large) - startup
    assert large_compute == pytest.approx(4 * small_compute, rel=0.05)


def test_runtime_is_the_estimate_with_a_margin_and_a_floor():
    assert shard_runtime_minutes(tiny_config()) == resources.MIN_RUNTIME_MIN
    circuit = {"template": "qnn", "modes": 4, "layers": 2, "cutoff": 8}
    config = tiny_config(circuit=circuit, samples_per_circuit=80_000, shard_size=40_000)
    minutes = shard_runtime_minutes(config)
    assert minutes > resources.MIN_RUNTIME_MIN
    assert minutes * 60 >= resources.MARGIN * estimated_shard_seconds(config)


def test_runtime_override_from_the_config_wins():
    config = tiny_config(resources={"runtime_minutes": 45})
    assert shard_runtime_minutes(config) == 45


def test_sf_engine_and_homodyne_sampling_cost_more_time():
    base = tiny_config(engine="compiled")
    circuit = blackbird_circuit("name t\nversion 1.0\n\nSgate(0.1, 0.0) | 0\n", 5, "complex64")
    per_sample = seconds_per_sample(base, circuit, 8)
    assert seconds_per_sample(tiny_config(engine="sf"), circuit, 8) > per_sample
    homodyne = tiny_config(engine="compiled", outputs=["quad_x", "norm", "homodyne"])
    assert seconds_per_sample(homodyne, circuit, 8) > per_sample


def test_gate_work_counts_blackbird_and_template_gates_alike():
    script = "name t\nversion 1.0\n\nSgate(0.1, 0.0) | 0\nBSgate(0.7, 0.1) | [0, 1]\n"
    from_script = blackbird_circuit(script, 6, "complex64")
    gates = (("Sgate", (0.1, 0.0), (0,)), ("BSgate", (0.7, 0.1), (0, 1)))
    from_template = CircuitSpec(2, 6, "complex64", (), gates=gates)
    assert gate_work(from_script) == gate_work(from_template) == 6**3 + 6**4


def test_interferometer_counts_as_its_beamsplitters_and_rotations():
    gates = (("Interferometer", (None,), (0, 1, 2)),)
    circuit = CircuitSpec(3, 4, "complex64", (), gates=gates)
    assert gate_work(circuit) == 3 * 4**5 + 3 * 4**4


def test_threads_follow_the_memory_estimate_within_bounds():
    config = tiny_config(resources={"mem_mb_per_thread": 4096, "max_threads": 4})
    assert shard_threads(config, 1500) == 1
    assert shard_threads(config, 9000) == 3
    assert shard_threads(config, 100_000) == 4
    assert shard_threads(tiny_config()) == 1  # small jobs: one thread, many side by side


def test_workflow_declares_threads_and_time_limit(tmp_path):
    config = tiny_config(
        backend="tensorflow", resources={"runtime_minutes": 45, "mem_mb_per_thread": 512}
    )
    result = run_workflow(tmp_path, "--cores", "8", "--dry-run", config=config)
    assert result.returncode == 0, result.stderr
    shard_jobs = re.findall(r"rule generate_shard:.*?resources: ([^\n]*)", result.stdout, re.S)
    assert shard_jobs and all("runtime=45" in line for line in shard_jobs)
    threads = shard_threads(config)
    assert threads > 1
    assert f"threads: {threads}" in result.stdout
