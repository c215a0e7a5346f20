"""atomic_write: the old file or the new one, never a half-written file or a leftover temporary."""
from __future__ import annotations

import errno
import os

import pytest

from kgdistill.fileio import atomic_write


def test_replaces_the_file_in_one_step(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.pt"
    target.write_bytes(b"good checkpoint")

    def half_then_full_disk(tmp):
        tmp.write_bytes(b"half a")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    with pytest.raises(OSError) as info:
        atomic_write(target, half_then_full_disk)
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"good checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_an_interrupt_mid_write_also_cleans_up(tmp_path):
    target = tmp_path / "x.json"

    def interrupted(tmp):
        tmp.write_text("{")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert list(tmp_path.iterdir()) == []
