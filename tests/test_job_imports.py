"""A compiled-engine job on numpy runs on the op list in params.h5: no TF, SF, thewalrus, sympy."""

import subprocess
import sys
import textwrap

import pytest

from conftest import tiny_config
from cvgen.shards import read_params_file
from cvgen.stages import prepare_params

HEAVY = ("tensorflow", "strawberryfields", "thewalrus", "sympy", "blackbird")
BLACKBIRD = """name c
version 1.0

CXgate(0.3) | [0, 1]
Xgate({a}) | 0
Zgate({a} * 2) | 1
Sgate({b}, 0.3) | 1
BSgate(0.4, {b}) | [0, 1]
"""


def job_modules(params, output) -> set[str]:
    """The modules a generate_shard process imported, run the way a rule script runs it."""
    script = textwrap.dedent(
        f"""
        import sys
        from cvgen.stages import generate_shard
        generate_shard({str(params)!r}, 0, {str(output)!r})
        print(" ".join(sorted(sys.modules)))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(result.stdout.split())


@pytest.mark.parametrize("blackbird", [False, True], ids=["template", "blackbird"])
def test_numpy_job_imports_no_tensorflow_sf_or_sympy(tmp_path, blackbird):
    overrides = {"backend": "numpy", "engine": "compiled"}
    if blackbird:
        (tmp_path / "c.xbb").write_text(BLACKBIRD)
        rules = [{"match": "*", "distribution": "normal", "std": 0.1}]
        overrides.update(circuit={"blackbird": str(tmp_path / "c.xbb")}, parameters=rules)
    prepare_params(tiny_config(**overrides), tmp_path / "params.h5")
    ops = read_params_file(tmp_path / "params.h5").plan.circuit.ops
    assert ops and {op.name for op in ops} <= {"Dgate", "Sgate", "BSgate", "Rgate", "Kgate"}
    if blackbird:  # SF decomposed CXgate (into Sgates and BSgates) in prepare_params
        assert "CXgate" not in {op.name for op in ops}
    modules = job_modules(tmp_path / "params.h5", tmp_path / "0.h5")
    assert "cvgen.engines.compiled" in modules
    assert not {name.split(".")[0] for name in modules} & set(HEAVY)
    assert (tmp_path / "0.h5").exists()


def test_gaussian_job_imports_no_tensorflow_sf_or_sympy(tmp_path):
    """A Gaussian job (this Blackbird script, engine auto) runs on its stored op list too, and
    its photon-number sampler needs numba but none of the heavy imports."""
    (tmp_path / "c.xbb").write_text(BLACKBIRD)
    rules = [{"match": "*", "distribution": "normal", "std": 0.1}]
    config = tiny_config(
        circuit={"blackbird": str(tmp_path / "c.xbb")},
        parameters=rules,
        outputs=["quad_x", "means", "fock_samples", "homodyne", "heterodyne"],
    )
    prepare_params(config, tmp_path / "params.h5")
    plan = read_params_file(tmp_path / "params.h5").plan
    assert plan.engine == "gaussian"
    assert {op.name for op in plan.circuit.ops} == {"CXgate", "Xgate", "Zgate", "Sgate", "BSgate"}
    modules = job_modules(tmp_path / "params.h5", tmp_path / "0.h5")
    assert {"cvgen.engines.gaussian", "numba"} <= modules
    assert not {name.split(".")[0] for name in modules} & set(HEAVY)
