"""What a new user's `make run` shows: the default dataset with sampled outcomes, a report whose
every figure has something to show, the HTML page, and a summary on the terminal."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SNAKEMAKE
from cvgen.cli import summary
from cvgen.plan import build_plan, load_config
from cvgen.report import FIGURES, PLOTS, figures_for

CVGEN = Path(sys.executable).with_name("cvgen")


def demo_config(**overrides) -> dict:
    """config.yaml, smaller: the same outputs, sampling and checks on 4 shards of 512 samples."""
    config = load_config(ROOT / "config.yaml")
    config.update(samples_per_circuit=2048, shard_size=512, **overrides)
    return config


def test_default_config_samples_outcomes_and_checks_convergence(root):
    plan = build_plan(load_config(root / "config.yaml"))
    assert {"quad_x", "quad_p", "mean_photon", "homodyne", "fock_samples"} <= set(plan.outputs)
    assert plan.sampling.shots <= 16 and plan.convergence.fraction > 0
    assert plan.engine == "compiled"
    assert figures_for(plan) == PLOTS  # every figure has something to show


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"convergence": {"fraction": 0}}, {"convergence"}),
        ({"outputs": ["quad_x", "norm"]}, {"sampling", "correlation"}),
        ({"outputs": ["norm", "fock_samples"]}, {"outputs", "correlation"}),
        ({"outputs": ["homodyne", "norm"], "circuit": {"modes": 1}}, {"outputs", "correlation"}),
    ],
)
def test_figures_with_nothing_to_show_are_left_out(overrides, missing):
    config = {**yaml.safe_load((ROOT / "config.yaml").read_text()), **overrides}
    figures = figures_for(build_plan(config))
    assert set(figures) == set(PLOTS) - missing
    assert list(figures) == [name for name in FIGURES if name in figures]  # report order


def test_gaussian_datasets_have_no_truncation_figures():
    config = {
        "circuit": {"template": "gbs"},
        "outputs": ["fock_samples", "homodyne", "means", "norm"],
        "convergence": {"fraction": 0.5},
    }
    plan = build_plan(config)
    assert plan.engine == "gaussian"
    assert figures_for(plan) == ("throughput", "timeline", "sampling", "correlation")


def test_every_figure_has_a_caption_and_a_category(root):
    for name, category in FIGURES.items():
        caption = (root / "workflow/report" / f"{name}.rst").read_text()
        assert len(caption.split()) > 15 and category


def test_make_run_builds_the_html_page_and_ends_with_the_summary(root):
    # --no-print-directory: under `make test` this make is nested and would print its folder
    commands = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "run"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert any(
        "snakemake --cores" in line
        and "--report results/demo/report.html --report-after-run" in line
        for line in commands
    )
    assert commands[-1].endswith("cvgen summary results/demo")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The default dataset (smaller) built as `make run` builds it, with its HTML page."""
    workdir = tmp_path_factory.mktemp("first_run")
    (workdir / "my.yaml").write_text(yaml.safe_dump(demo_config(), sort_keys=False))
    command = [SNAKEMAKE, "-s", ROOT / "Snakefile", "--directory", workdir, "--configfile"]
    command += [workdir / "my.yaml", "--cores", "2", "--report", "results/demo/report.html"]
    result = subprocess.run(
        [*command, "--report-after-run"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "results/demo"


@pytest.mark.slow
def test_first_run_leaves_dataset_report_figures_and_html_page(first_run):
    for name in ("dataset.h5", "report.json", "report.md", "report.html"):
        assert (first_run / name).stat().st_size > 0, name
    report = json.loads((first_run / "report.json").read_text())
    assert report["figures"] == list(PLOTS)
    assert sorted(p.stem for p in (first_run / "report").glob("*.png")) == sorted(PLOTS)
    assert report["convergence"]["verdict"] == "within tolerance"
    assert set(report["sampling"]) >= {"homodyne", "fock"}


@pytest.mark.slow
def test_report_links_every_figure_and_says_what_it_covers(first_run):
    markdown = (first_run / "report.md").read_text()
    links = re.findall(r"!\[(\w+)\]\(report/(\w+)\.png\)", markdown)
    assert [name for name, _ in links] == [stem for _, stem in links] == list(PLOTS)
    covers = next(line for line in markdown.splitlines() if line.startswith("This report covers"))
    assert "`homodyne`, `fock_samples` (4 shots per sample)" in covers
    assert "within tolerance" in covers
    for heading in ("## Performance", "## Truncation", "### Convergence check"):
        assert heading in markdown
    assert "## Expectation values" in markdown and "## Sampled outcomes" in markdown
    assert "placeholder" not in markdown and "no homodyne" not in markdown


@pytest.mark.slow
def test_report_leaves_out_sections_with_nothing_to_show(tmp_path):
    config = demo_config(outputs=["norm", "fock_samples"], convergence={"fraction": 0})
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [SNAKEMAKE, "-s", ROOT / "Snakefile", "--directory", tmp_path, "--configfile"]
    result = subprocess.run(
        [*command, tmp_path / "my.yaml", "--cores", "2"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results/demo"
    drawn = sorted(p.stem for p in (results / "report").glob("*.png"))
    assert drawn == ["norm", "sampling", "throughput", "timeline"]
    markdown = (results / "report.md").read_text()
    assert "### Convergence check" not in markdown and "## Expectation values" not in markdown
    assert "truncation error was not measured (`convergence.fraction: 0`)" in markdown
    assert "correlation.png" not in markdown and "outputs.png" not in markdown


@pytest.mark.slow
def test_summary_says_where_everything_is(first_run):
    text = summary(first_run)
    assert text.startswith("cvgen: dataset demo is built\n")
    assert f"{first_run / 'dataset.h5'}  (2,048 samples, 2 modes)" in text
    assert re.search(r"speed +[\d,]+ samples/s overall \(4 shard jobs", text)
    assert re.search(r"truncation +within tolerance: outputs move at most", text)
    assert f"report      {first_run / 'report.md'}  (7 figures" in text
    assert f"HTML page   {first_run / 'report.html'}  (self-contained" in text
    assert "sampled: homodyne, fock_samples (4 shots each)" in text


@pytest.mark.slow
def test_summary_command_prints_it_and_refuses_a_missing_build(first_run, tmp_path):
    result = subprocess.run([CVGEN, "summary", first_run], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == summary(first_run)
    result = subprocess.run([CVGEN, "summary", tmp_path], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"cvgen error: {tmp_path / 'report.json'} not found: build the dataset first "
        "(`make run`, or snakemake --cores N)"
    )
