"""Shared test helpers: the repository root and small valid configs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cvgen.plan import DatasetPlan, build_plan, validate_config

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def tiny_plan(**overrides) -> DatasetPlan:
    """The plan of tiny_config(**overrides)."""
    return build_plan(tiny_config(**overrides))


def tiny_config(**overrides) -> dict:
    """A small valid config (2 modes, 1 layer, cutoff 5), with top-level keys overridden."""
    config = {
        "dataset": "tiny",
        "seed": 7,
        "circuit": {"template": "qnn", "modes": 2, "layers": 1, "cutoff": 5},
        "n_circuits": 2,
        "samples_per_circuit": 30,
        "shard_size": 25,
        "batch_size": 8,
    }
    config.update(overrides)
    return validate_config(config)


@pytest.fixture
def root() -> Path:
    return ROOT


def workflow_command(workdir: Path, *args, config: dict | None = None) -> list:
    """The real workflow's command line, run in `workdir` on workdir/my.yaml.

    With `config`, my.yaml is written first; without, the one already there is used.
    """
    if config is not None:
        (workdir / "my.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [SNAKEMAKE, "-s", ROOT / "Snakefile", "--directory", workdir]
    return [*command, "--configfile", workdir / "my.yaml", *args]


def run_workflow(workdir: Path, *args, config: dict | None = None, timeout: int = 900):
    """Run the real workflow (see workflow_command); return the completed process."""
    command = workflow_command(workdir, *args, config=config)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
