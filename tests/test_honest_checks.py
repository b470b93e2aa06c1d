"""A check that could not measure says so: lost states, broken precision, memory of every part."""

import json
import logging

import numpy as np
import pytest

from conftest import run_workflow, tiny_config
from cvgen.convergence import ConvergenceCheck, enforce_tolerance
from cvgen.dataset import aggregate
from cvgen.errors import CvgenError
from cvgen.plan import build_plan
from cvgen.report import build_report
from cvgen.stages import generate_shard, prepare_params

HUGE_INPUTS = [
    {"match": "input_*", "distribution": "normal", "std": 1e6, "vary": "per_sample"},
    {"match": "*", "distribution": "normal", "std": 0.1},
]


def build(tmp_path, **overrides):
    """prepare_params, every shard, aggregate and the report of a tiny dataset, in tmp_path."""
    config = tiny_config(**overrides)
    prepare_params(config, tmp_path / "params.h5")
    plan = build_plan(config)
    shards = [tmp_path / f"{i}.h5" for i in range(len(plan.shards))]
    for index, path in enumerate(shards):
        generate_shard(tmp_path / "params.h5", index, path)
    aggregate(tmp_path / "params.h5", shards, tmp_path / "dataset.h5")
    md = tmp_path / "report.md"
    build_report(tmp_path / "dataset.h5", tmp_path / "report.json", md, tmp_path / "plots")
    return json.loads((tmp_path / "report.json").read_text()), md.read_text()


def test_lost_states_make_the_convergence_check_not_measurable(tmp_path, caplog):
    """Inputs of std 1e6 displace every state out of the Fock space: every norm and output is
    0 at both cutoffs, so the outputs agree, which certifies nothing."""
    with caplog.at_level(logging.WARNING):
        report, markdown = build(tmp_path, parameters=HUGE_INPUTS, norm_threshold=0.5)
    check = report["convergence"]
    assert check["verdict"] == "not measurable" and not check["within_tolerance"]
    assert check["unmeasured_samples"] == check["samples"] > 0
    assert report["truncation"]["norm_min"] == pytest.approx(0, abs=1e-6)
    assert "**Not measurable**" in markdown and "within the tolerance" not in markdown
    assert "convergence: not measurable" in caplog.text
    assert "samples keep less than norm_threshold" in caplog.text


def test_on_truncation_fail_fails_when_the_check_cannot_measure():
    plan = build_plan(tiny_config(on_truncation="fail"))
    rows = np.arange(4)
    zeros = {"quad_x": np.zeros(4)}
    check = ConvergenceCheck(rows, np.zeros(4), np.full(4, 1e-9), 5, 9, zeros, zeros)
    with pytest.raises(CvgenError, match=r"not measurable: 4 of 4 re-run samples .* cutoff 9"):
        enforce_tolerance(check, plan, None, None)


def test_memory_estimate_covers_the_convergence_rerun():
    with pytest.raises(CvgenError, match=r"re-run at cutoff 405 .*convergence.extra_cutoff"):
        build_plan(tiny_config(convergence={"extra_cutoff": 400}))
    build_plan(tiny_config(convergence={"extra_cutoff": 400, "fraction": 0}))  # check off: fits


@pytest.mark.parametrize(
    ("dtype", "cutoff", "message"),
    [
        ("complex64", 200, r"'quad_x' is NaN or Inf .* set circuit.dtype: complex128"),
        ("complex128", 100, r"norm [\d.e+]+ > 1 for sample 0: the gate matrices lost precision"),
    ],
)
def test_precision_loss_is_refused_naming_the_cause(tmp_path, dtype, cutoff, message):
    """Displacements of 5 at high cutoffs overflow the gate recurrences: NaN in complex64,
    norms far above 1 in complex128. Neither may reach a dataset."""
    config = tiny_config(
        circuit={"modes": 1, "layers": 1, "cutoff": cutoff, "dtype": dtype},
        parameters=[{"match": "*", "distribution": "constant", "value": 5.0}],
        n_circuits=1,
        samples_per_circuit=8,
        shard_size=8,
        convergence={"fraction": 0},
    )
    prepare_params(config, tmp_path / "params.h5")
    with np.errstate(all="ignore"), pytest.raises(CvgenError, match=message):
        generate_shard(tmp_path / "params.h5", 0, tmp_path / "0.h5")
    assert not (tmp_path / "0.h5").exists()


@pytest.mark.slow
def test_warnings_reach_the_console_not_only_the_log(tmp_path):
    """Through the real workflow: the run succeeds (on_truncation: warn) and says, on the
    terminal, that the check could not measure and that the states were lost."""
    config = {"dataset": "lost", "parameters": HUGE_INPUTS, "samples_per_circuit": 16}
    result = run_workflow(
        tmp_path, "--cores", "2", config={**config, "shard_size": 8, "batch_size": 8}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in result.stderr.splitlines() if "cvgen warning:" in line]
    assert any("convergence: not measurable" in line for line in warnings)
    assert any("keep less than norm_threshold" in line for line in warnings)
    report = json.loads((tmp_path / "results/lost/report.json").read_text())
    assert report["convergence"]["verdict"] == "not measurable"


def test_nan_parameters_are_named_as_the_cause():
    from cvgen.stages import check_finite

    values = {"norm": np.array([np.nan, 1.0])}
    args = {"input_0": np.array([np.nan, 0.1]), "l0_kerr_0": np.array([0.2, 0.2])}
    with pytest.raises(CvgenError, match=r"parameter 'input_0' is NaN or Inf .* params.h5"):
        check_finite(values, 32, 34, "complex64", args)
