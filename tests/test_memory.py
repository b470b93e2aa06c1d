"""Memory estimate and the batch size that fits the memory budget."""

import pytest

from conftest import tiny_config
from cvgen.errors import CvgenError
from cvgen.memory import BASELINE_MB, NUMPY_BASELINE_MB, fitted_batch_size, job_memory_mb


def big_config(**overrides):
    circuit = {"template": "qnn", "modes": 4, "layers": 1, "cutoff": 10}
    # TF's baseline (the estimate's default): a numpy job's is smaller, see test_backend_memory.
    return tiny_config(
        circuit=circuit, engine="compiled", backend="tensorflow", batch_size=1024, **overrides
    )


def test_estimate_grows_with_batch_size_and_counts_the_state():
    config = big_config()
    small, large = job_memory_mb(config, 8), job_memory_mb(config, 1024)
    state_mb = 1024 * 10**4 * 8 / 2**20  # complex64 kets of the whole batch
    assert small > BASELINE_MB
    assert large - small > 4 * (1 - 8 / 1024) * state_mb  # at least the compiled engine's copies


def test_configured_batch_size_is_kept_when_it_fits():
    assert fitted_batch_size(big_config(memory_budget_mb=100_000)) == 1024


def test_batch_shrinks_to_fit_the_budget_and_says_so(caplog):
    config = big_config(memory_budget_mb=1500)
    with caplog.at_level("INFO"):
        batch = fitted_batch_size(config)
    assert batch < 1024
    assert job_memory_mb(config, batch) <= 1500 < job_memory_mb(config, 2 * batch)
    assert f"using batch size {batch}" in caplog.text


def test_config_that_fits_at_no_batch_size_is_refused():
    with pytest.raises(CvgenError, match="memory_budget_mb"):
        big_config(memory_budget_mb=1000)


def test_numpy_jobs_are_estimated_without_tensorflows_baseline():
    config = big_config()
    numpy, tensorflow = job_memory_mb(config, 8, backend="numpy"), job_memory_mb(config, 8)
    assert tensorflow - numpy == pytest.approx(1.25 * (BASELINE_MB - NUMPY_BASELINE_MB), abs=1)
    assert job_memory_mb(tiny_config(engine="sf"), 8, backend="numpy") > BASELINE_MB
