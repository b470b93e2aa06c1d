"""A full disk is one line naming the folder, what was written and what is free; nothing stays."""

import errno
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import tiny_config
from cvgen.errors import CvgenError
from cvgen.shards import atomic_file

MESSAGE = r"no space left on the device holding .* MB free\): free space there"


def test_any_write_failing_with_enospc_is_one_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(CvgenError, match=MESSAGE), atomic_file(target) as temporary:
        temporary.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 64 KB tmpfs (needs root and mount, as in CI); skipped, saying why, elsewhere."""
    folder = tmp_path / f"full-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_params_on_a_full_filesystem(tiny_filesystem, tmp_path):
    """`cvgen prepare-params` onto a full file system, in its own process (HDF5's library state
    after a failed write is not fit for further use, so a job ends there): exit 1, one line."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config(samples_per_circuit=3000, shard_size=3000)))
    cvgen = Path(sys.executable).with_name("cvgen")
    output = tiny_filesystem / "params.h5"
    result = subprocess.run(
        [cvgen, "prepare-params", "--config", config, "--output", output],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("cvgen error:")]
    assert len(errors) == 1 and re.search(MESSAGE + ".*nothing was written", errors[0])
    assert list(tiny_filesystem.iterdir()) == []
