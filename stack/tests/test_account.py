"""Handing the state dir over to the servers' account: robust to a server removing files."""

from __future__ import annotations

import os
from pathlib import Path

from stack.account import Account, chown


def test_a_file_removed_by_a_running_server_is_skipped(tmp_path: Path) -> None:
    me = Account("me", os.getuid(), os.getgid())
    chown(tmp_path / "removed-by-nginx-meanwhile", me)  # no error: nothing to hand over


def test_a_file_is_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "kept"
    path.write_text("x")
    chown(path, Account("me", os.getuid(), os.getgid()))
    assert (path.stat().st_uid, path.stat().st_gid) == (os.getuid(), os.getgid())
