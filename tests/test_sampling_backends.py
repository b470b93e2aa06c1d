"""The sampler on numpy and on TensorFlow: the same outcomes from the same kets and seed.

Photon numbers are compared exactly (both invert the same cumulative sums); quadratures and
summaries to float rounding, since the two sum in different orders. numpy must not import TF:
that import is what makes numpy the cheaper namespace for small states.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import cvgen
from cvgen.engines.backend import NUMPY, namespace
from cvgen.sampling import Sampler, default_grid_range, make_spec

TENSORFLOW = namespace("tensorflow", threads=1)
OUTPUTS = ("homodyne", "fock_samples", "threshold_samples")
RTOL = {"complex64": 1e-5, "complex128": 1e-10}


def random_kets(count: int, modes: int, cutoff: int, dtype: str, seed: int = 0) -> np.ndarray:
    """Normalised random kets [count, D, ..., D]: every basis state and correlation present."""
    rng = np.random.default_rng(seed)
    shape = (count,) + (cutoff,) * modes
    kets = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    norms = np.linalg.norm(kets.reshape(count, -1), axis=1)
    return (kets / norms.reshape((count,) + (1,) * modes)).astype(dtype)


def sample(xp, kets: np.ndarray, modes: int, cutoff: int, dtype: str):
    angles = (0.0, 0.7, 1.9)[:modes]
    spec = make_spec(OUTPUTS, 6, angles, default_grid_range(cutoff), 300)
    return Sampler(spec, modes, cutoff, dtype, 7, xp).sample(xp.asarray(kets, dtype), 3000)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize(("modes", "cutoff"), [(2, 6), (3, 4)])
def test_numpy_and_tensorflow_draw_the_same_outcomes(modes, cutoff, dtype):
    kets = random_kets(12, modes, cutoff, dtype)
    outputs, summaries = sample(NUMPY, kets, modes, cutoff, dtype)
    expected_outputs, expected_summaries = sample(TENSORFLOW, kets, modes, cutoff, dtype)
    assert outputs.keys() == expected_outputs.keys() == set(OUTPUTS)
    assert summaries.keys() == expected_summaries.keys()
    for name, value in {**outputs, **summaries}.items():
        expected = {**expected_outputs, **expected_summaries}[name]
        assert value.dtype == expected.dtype and value.shape == expected.shape, name
    assert np.array_equal(outputs["fock_samples"], expected_outputs["fock_samples"])
    assert np.array_equal(outputs["threshold_samples"], expected_outputs["threshold_samples"])
    rtol = RTOL[dtype]
    # outcomes are of order 1 (hbar = 2): the relative tolerance doubles as the absolute one
    assert np.allclose(outputs["homodyne"], expected_outputs["homodyne"], rtol=rtol, atol=rtol)
    for name, value in summaries.items():
        # the error summaries are differences of nearly equal numbers: compared absolutely
        assert np.allclose(value, expected_summaries[name], rtol=10 * rtol, atol=10 * rtol), name


def test_tensorflow_traces_once_for_every_batch_size():
    spec = make_spec(OUTPUTS, 3, (0.0, 0.4), default_grid_range(4), 100)
    sampler = Sampler(spec, 2, 4, "complex64", 1, TENSORFLOW)
    for count in (5, 8, 3):
        sampler.sample(TENSORFLOW.asarray(random_kets(count, 2, 4, "complex64"), "complex64"), 0)
    assert sampler._draw.experimental_get_tracing_count() == 1


def test_complex64_keeps_single_precision_outputs():
    kets = random_kets(4, 2, 5, "complex64")
    outputs, summaries = sample(NUMPY, kets, 2, 5, "complex64")
    assert outputs["homodyne"].dtype == np.float32
    assert outputs["fock_samples"].dtype == outputs["threshold_samples"].dtype == np.uint8
    assert summaries["homodyne_density"].dtype == np.float32
    assert summaries["homodyne_pair_moment"].dtype == np.float32
    assert summaries["homodyne_mass_error"].dtype == np.float32
    assert summaries["homodyne_interpolation_error"].dtype == np.float32
    assert summaries["fock_marginals"].dtype == np.float64


def test_numpy_sampler_does_not_import_tensorflow():
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from cvgen.sampling import Sampler, default_grid_range, make_spec

        spec = make_spec(
            ("homodyne", "fock_samples", "threshold_samples"), 4, (0.0, 0.5),
            default_grid_range(5), 200,
        )
        kets = np.zeros((3, 5, 5), dtype="complex64")
        kets[:, 1, 0] = 1
        outputs, _ = Sampler(spec, 2, 5, "complex64", 1).sample(kets, 0)
        assert outputs["homodyne"].shape == (3, 4, 2)
        assert "tensorflow" not in sys.modules, "numpy sampling imported TensorFlow"
        """
    )
    source = str(Path(cvgen.__file__).parents[1])  # the cvgen under test, not another install
    path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
