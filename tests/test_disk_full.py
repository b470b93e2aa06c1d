"""A full disk is one line naming the folder, what was written and what is free; nothing stays."""

import errno
import os
import subprocess
import uuid

import pytest

from conftest import tiny_config
from cvgen.errors import CvgenError
from cvgen.shards import atomic_file
from cvgen.stages import prepare_params

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


def test_params_on_a_full_filesystem(tiny_filesystem):
    config = tiny_config(samples_per_circuit=3000, shard_size=3000)
    with pytest.raises(CvgenError, match=MESSAGE + ".*nothing was written"):
        prepare_params(config, tiny_filesystem / "params.h5")
    assert list(tiny_filesystem.iterdir()) == []
