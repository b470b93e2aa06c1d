"""Shared test helpers: the repository root and small valid configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvgen.config import validate_config

ROOT = Path(__file__).resolve().parents[1]


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
