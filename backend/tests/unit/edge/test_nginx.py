"""The purger's side of nginx's edge cache: where a copy's file lies, and the switch."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest

from app.edge.nginx import Edge, PurgeFailed, copy_file

TEMPLATE = Path(__file__).resolve().parents[4] / "nginx" / "nginx.conf.template"


def test_a_copy_lies_where_nginx_puts_it_for_the_template_s_key_and_levels() -> None:
    text = TEMPLATE.read_text()
    # The purger's path rule holds only for these two settings of the edge.
    assert re.search(r"proxy_cache_path \S+/edge levels=1:2 keys_zone=edge:", text)
    assert "proxy_cache_key $uri;" in text
    name = hashlib.md5(b"/api/users/7", usedforsecurity=False).hexdigest()
    assert copy_file(Path("/c"), "/api/users/7") == Path("/c") / name[-1] / name[-3:-1] / name


def test_a_purge_deletes_the_copy_and_says_whether_there_was_one(tmp_path: Path) -> None:
    edge = Edge(str(tmp_path / "edge"), str(tmp_path / "following"))
    copy = copy_file(tmp_path / "edge", "/api/users/7")
    copy.parent.mkdir(parents=True)
    copy.write_text("KEY: /api/users/7")
    assert edge.purge("/api/users/7") is True
    assert not copy.exists()
    assert edge.purge("/api/users/7") is False


def test_a_purge_that_cannot_delete_fails_loudly(tmp_path: Path) -> None:
    edge = Edge(str(tmp_path / "edge"), str(tmp_path / "following"))
    copy = copy_file(tmp_path / "edge", "/api/users/7")
    copy.mkdir(parents=True)  # a folder where the file should be: unlink fails, not ENOENT
    with pytest.raises(PurgeFailed):
        edge.purge("/api/users/7")


def test_the_switch_is_a_lease_of_the_next_seconds_named_as_nginx_s_clock(tmp_path: Path) -> None:
    edge = Edge(str(tmp_path / "edge"), str(tmp_path / "following"))
    edge.serve(True, lease_s=3)
    leased = sorted(p.name for p in tmp_path.glob("following-*"))
    assert len(leased) == 4  # this second and the next three
    # nginx's $time_iso8601: local time with its offset, as 2026-12-06T21:44:31+00:00 (that
    # nginx finds them is what the integration tests show: the edge serves)
    iso = r"following-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"
    assert all(re.fullmatch(iso, name) for name in leased), leased
    assert edge.serving
    edge.serve(False)
    assert not list(tmp_path.glob("following-*"))
    assert not edge.serving


def test_a_lease_not_renewed_runs_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edge = Edge(str(tmp_path / "edge"), str(tmp_path / "following"))
    edge.serve(True, lease_s=2)
    later = time.time() + 3
    monkeypatch.setattr(time, "time", lambda: later)
    assert not edge.serving  # a frozen purger renews nothing: nginx stops serving copies
