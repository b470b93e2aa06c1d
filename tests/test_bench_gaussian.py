"""The Gaussian and GBS benchmarks run end to end on tiny settings and report what they time."""

import numpy as np
import pytest

from cvgen.bench.gaussian import many_modes, versus_fock
from cvgen.bench.gbs import floor_lines, random_gbs_state, timed

pytestmark = pytest.mark.slow


def test_gaussian_benchmark_finds_the_fock_cutoff_of_equal_accuracy():
    row = versus_fock(2, 16, 1e-3, 0.05)
    assert row["fock_max_error"] <= 1e-3 and row["fock_cutoff"] > 4
    assert row["gaussian_samples_per_s"] > 0 and row["fock_samples_per_s"] > 0
    rows = many_modes(6, 4, 2, 0.05)
    assert {r["output"] for r in rows} == {"homodyne", "heterodyne"}
    assert all(r["samples_per_s"] > 0 and r["peak_mb_per_batch"] > 0 for r in rows)


def test_gbs_workers_count_only_finished_draws(tmp_path):
    cov, means = random_gbs_state(4, 0.3)
    state = tmp_path / "state.npz"
    np.savez(state, adjacency=np.zeros((4, 4)), cov=cov, means=means)
    row = timed("cvgen_pnr_24_modes", state, 3.0, 12)
    assert row["samples"] > 0 and row["rate"] > 0 and row["rate_at_most"] is None
    assert 0 <= row["mass"] < 1e-3 and row["first_call_s"] >= 0


def test_gbs_floor_times_one_probability_per_drawn_pattern(tmp_path):
    cov, means = random_gbs_state(4, 0.4)
    state = tmp_path / "state.npz"
    np.savez(state, adjacency=np.zeros((4, 4)), cov=cov, means=means)
    floor = timed("floor", state, 3.0, 12)
    assert floor["samples"] > 0 and floor["lhaf_s"] > 0 and floor["tor_s"] > 0
    rate = {"samples": 10, "rate": 2.0}
    rows = {
        "floor": floor,
        **{f"{m}_{k}": rate for m in ("sf", "thewalrus") for k in ("pnr", "threshold")},
    }
    lines = floor_lines(rows)
    assert lines[0].startswith(
        "floor: one loop hafnian"
    ) and "target threshold >= 1000x sf: 2000" in "\n".join(lines)
