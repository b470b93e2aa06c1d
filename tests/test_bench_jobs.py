"""The job benchmark runs real generation jobs on every backend and reports their breakdown."""

import pytest

from conftest import tiny_config
from cvgen.bench.jobs import VARIANTS, run_all

pytestmark = pytest.mark.slow


def test_job_benchmark_times_every_backend(tmp_path):
    summary = run_all(tiny_config(), 1, tmp_path)
    assert set(summary["medians"]) == {label for label, _ in VARIANTS}
    assert [run["backend"] for run in summary["runs"]["tensorflow"]] == ["tensorflow"]
    numpy, tensorflow = summary["medians"]["numpy"], summary["medians"]["tensorflow"]
    assert numpy["import_s"] == 0 and tensorflow["import_s"] > 0
    assert tensorflow["trace_s"] > 0 == numpy["trace_s"]
    assert summary["ratios"]["numpy"]["wall_vs_numpy"] == 1
    assert "| tensorflow |" in (tmp_path / "jobs.md").read_text()
