"""The engine benchmark runs every strategy in worker processes and writes its report."""

import json

import pytest

from cvgen.bench.engines import STRATEGIES, run_all

pytestmark = pytest.mark.slow


def test_benchmark_measures_every_strategy(tmp_path):
    circuits = ((2, 1, 4),)
    summary = run_all(tmp_path, 0.05, circuits, max_batch=64, sampling_circuits=circuits)
    measured = {(r["strategy"], r["batch_size"], r.get("shots")) for r in summary["results"]}
    assert {strategy for strategy, _, _ in measured} == set(STRATEGIES)
    assert ("compiled_numpy", 8, None) in measured and ("compiled_tf", 8, None) in measured
    assert ("sf_sequential", 1, None) in measured
    assert ("sf_homodyne", 8, 1) in measured and ("compiled_homodyne", 64, 16) in measured
    for r in summary["results"]:  # every worker but compiled_numpy imports TF (~600 MB)
        assert r["samples_per_s"] > 0
        assert r["peak_rss_mb"] > (20 if r["strategy"] == "compiled_numpy" else 100)
    ratios = summary["ratios"]["2m1l_c4"]
    assert ratios["compiled_best_vs_sf_batched_best"] > 1  # a loose sanity bound, not a target
    assert ratios["compiled_numpy_best_vs_compiled_tf_best"] > 0
    assert 0 < ratios["compiled_best_vs_structured_roofline"] < 1  # nothing beats the roofline
    assert ratios["compiled_homodyne_16_shots_vs_sf_homodyne_outcomes_per_s"] > 1
    assert "sf_homodyne_vs_compiled_homodyne_1_shots_memory_per_state" in ratios
    assert ratios["compiled_homodyne_16_shots_time_vs_one_evolution"] > 0
    assert json.loads((tmp_path / "engines.json").read_text()) == summary
    report = (tmp_path / "engines.md").read_text()
    assert "| compiled_numpy | - | 8 |" in report and "Structured roofline" in report
    assert (tmp_path / "engines.png").read_bytes()[:4] == b"\x89PNG"
