"""The compose launcher's engine handling, with no engine: what it leaves alone, what it copies."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from stack import engine
from stack.compose import Project


def test_an_engine_that_answers_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "engine_answers", lambda: True)
    monkeypatch.setattr(engine, "apt_install", lambda _: pytest.fail("nothing may be installed"))
    monkeypatch.setattr(engine, "start_dockerd", lambda _: pytest.fail("nothing may be started"))
    assert engine.ensure_engine(Path("/nonexistent")) is False


def test_an_engine_the_project_did_not_start_is_never_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(engine.os, "kill", lambda *_: pytest.fail("no signal may be sent"))
    engine.stop_engine(tmp_path)  # no pid file
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "dockerd.pid").write_text("1\n")  # pid 1 is not a dockerd
    engine.stop_engine(tmp_path)


def test_a_dockerd_that_exited_counts_as_stopped_even_as_an_unreaped_child() -> None:
    child = subprocess.Popen(["sleep", "0.2"])
    assert engine.alive(child.pid)
    deadline = time.monotonic() + 5
    while engine.alive(child.pid):
        assert time.monotonic() < deadline, "an exited child still counts as alive"
        time.sleep(0.01)


def test_build_certs_mirror_the_hosts_extra_cas(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host, context = tmp_path / "host", tmp_path / "context"
    host.mkdir()
    context.mkdir()
    (host / "proxy.crt").write_text("PEM")
    (host / "notes.txt").write_text("not a certificate")
    (context / "gone.crt").write_text("an old CA")
    (context / "README.md").write_text("kept")
    monkeypatch.setattr(engine, "HOST_EXTRA_CAS", host)
    monkeypatch.setattr(engine, "CERT_DIRS", (context,))
    engine.ensure_build_certs()
    assert sorted(p.name for p in context.iterdir()) == ["README.md", "proxy.crt"]


def test_a_compose_project_is_seen_through_its_published_ports() -> None:
    project = Project(
        "p", {"MYSQL_PRIMARY_PORT": "1", "MYSQL_REPLICA_PORT": "2", "NGINX_PORT": "3"}
    )
    stack = project.stack()
    assert [(db.name, db.port) for db in stack.databases] == [("primary", 1), ("replica-1", 2)]
    assert stack.base_url.endswith(":3")
