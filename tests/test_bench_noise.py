"""The loss benchmark runs end to end on tiny settings and reports every path it times."""

import json

import pytest

from cvgen.bench.noise import batch_sizes, comparable_total_cutoff, run_all

pytestmark = pytest.mark.slow


def test_loss_benchmark_times_every_path_against_sf_mixed_mode(tmp_path):
    assert comparable_total_cutoff(2, 10) == 14  # 105 states against 100
    assert comparable_total_cutoff(4, 8) == 16  # 3,876 against 4,096
    assert batch_sizes("sf_mixed", 4, 8, "per_mode", 0, 1024) == [2]  # ~134 MB of rho each

    summary = run_all(tmp_path, 0.05, ((2, 1, 4),), trajectories=(1, 4), max_batch=4)

    paths = {e["path"] for e in summary["table"]}
    assert paths == {
        "sf_mixed",
        "density",
        "density, total N=5",
        "lossless",
        "lossless, total N=5",
        "trajectories x1",
        "trajectories x4",
        "trajectories x1, total N=5",
        "trajectories x4, total N=5",
    }
    assert all(e["samples_per_s"] > 0 and e["memory_per_sample_mb"] > 0 for e in summary["table"])
    ratios = summary["ratios"]["2m1l_c4"]
    for name in (
        "density_vs_sf_mixed_samples_per_s",
        "density_totalN5_vs_sf_mixed_samples_per_s",
        "trajectoriesx4_vs_sf_mixed_samples_per_s",
        "sf_mixed_vs_trajectoriesx4_memory_per_sample",
        "trajectoriesx4_time_vs_lossless",
        "trajectoriesx4_totalN5_time_vs_lossless",
    ):
        assert ratios[name] > 0, name
    assert json.loads((tmp_path / "noise.json").read_text())["ratios"] == summary["ratios"]
    assert "| 2m1l_c4 | sf_mixed |" in (tmp_path / "noise.md").read_text()
