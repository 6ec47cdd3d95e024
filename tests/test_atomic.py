"""Atomic writes: no partial file under the final name, ever; inputs are never overwritten."""

from __future__ import annotations

import pytest

from conftest import pair_paths
from fusekit.errors import FusekitError
from fusekit.io.atomic import TEMP_PREFIX, atomic_write, check_not_input, write_bytes


def test_failure_inside_the_block_leaves_nothing(tmp_path):
    target = tmp_path / "result.bin"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as stream:
            stream.write(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_replaced_only_on_success(tmp_path):
    target = tmp_path / "result.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as stream:
            stream.write(b"new")
            raise RuntimeError
    assert target.read_bytes() == b"old"
    write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_creates_missing_folders(tmp_path):
    write_bytes(tmp_path / "a" / "b" / "c.txt", b"x")
    assert (tmp_path / "a" / "b" / "c.txt").read_bytes() == b"x"


def test_refuses_to_write_over_an_input(tmp_path):
    source = pair_paths("IVF", "MSRS", "00040N")[0]
    with pytest.raises(FusekitError, match="also an input"):
        check_not_input(source, [source])
    link = tmp_path / "link.png"
    link.symlink_to(source)
    with pytest.raises(FusekitError, match="also an input"):
        check_not_input(link, [source])
    check_not_input(tmp_path / "other.png", [source])
