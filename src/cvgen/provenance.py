"""Where a file came from: package versions, git commit, host. Stored with every output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "cvgen",
    "strawberryfields",
    "tensorflow",
    "numpy",
    "scipy",
    "thewalrus",
    "h5py",
    "snakemake",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that determine a dataset's numbers."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def git_commit(folder: str | Path | None = None) -> str:
    """The commit of the cvgen checkout (with `-dirty` if modified), or '' outside git."""
    folder = Path(folder) if folder else Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


def provenance_attrs() -> dict[str, str]:
    """Attributes recorded in every file cvgen writes."""
    return {
        "versions": json.dumps(package_versions(), sort_keys=True),
        "git_commit": git_commit(),
        "host": platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),  # empty outside a Slurm job
    }
