"""The launcher finds its processes through their pid files, stops orphans by pid, and refuses to
delete a state dir that a server of the stack still uses. Real processes, made to look like the
stack's servers (an executable named redis-server is a symlink to Python)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import __main__ as launcher
from stack import processes, supervisor
from stack.settings import REPO, Stack, read_env_file

SLEEPER = "import time\ntime.sleep(60)"
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack({**read_env_file(REPO / ".env.example"), "STACK_DIR": str(tmp_path / "state")})


def redis_lookalike(stack: Stack, tmp_path: Path, code: str) -> subprocess.Popen[bytes]:
    """A process named redis-server running CODE, the leader of its own group, with the pid
    file the stack's redis writes."""
    executable = tmp_path / "redis-server"
    executable.symlink_to(sys.executable)
    process = subprocess.Popen([str(executable), "-c", code], start_new_session=True)
    (stack.state / "run").mkdir(parents=True)
    (stack.state / "run" / "redis.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + 10
    while not processes.stack_processes(stack) and time.monotonic() < deadline:
        time.sleep(0.01)  # until it runs under its new name
    return process


@pytest.fixture(params=[SLEEPER])
def fake_redis(
    stack: Stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[subprocess.Popen[bytes]]:
    """A redis lookalike that dies on TERM (or, parametrized with STUBBORN, ignores it)."""
    process = redis_lookalike(stack, tmp_path, request.param)
    yield process
    process.kill()
    process.wait()


def test_a_server_of_the_stack_is_found_through_its_pid_file(
    stack: Stack, fake_redis: subprocess.Popen[bytes]
) -> None:
    found = processes.stack_processes(stack)
    assert [(p.pid, p.program) for p in found] == [(fake_redis.pid, "redis")]
    assert processes.orphans(stack) == found  # no supervisord watches it


def test_a_pid_file_naming_another_program_finds_nothing(stack: Stack) -> None:
    (stack.state / "run").mkdir(parents=True)
    (stack.state / "run" / "redis.pid").write_text(f"{os.getpid()}\n")  # this pytest, no redis
    assert processes.stack_processes(stack) == []


@pytest.mark.parametrize("fake_redis", [STUBBORN], indirect=True)
def test_an_orphan_that_ignores_term_is_killed(
    stack: Stack, fake_redis: subprocess.Popen[bytes]
) -> None:
    assert processes.stop(processes.orphans(stack), timeout=0.5) == []
    fake_redis.wait(timeout=5)
    assert processes.stack_processes(stack) == []


def test_clean_refuses_while_a_server_of_the_stack_runs(
    stack: Stack, fake_redis: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "shutdown", lambda stack: None)  # as if it could not stop it
    with pytest.raises(SystemExit, match="refusing to delete"):
        launcher.clean(stack)
    assert stack.state.exists()


def test_clean_stops_orphans_before_it_deletes(
    stack: Stack, fake_redis: subprocess.Popen[bytes]
) -> None:
    launcher.clean(stack)
    assert fake_redis.wait(timeout=5) is not None
    assert not stack.state.exists()


@pytest.mark.parametrize(
    ("status", "body", "missing"),
    [
        (200, b'{"status": "ok"}', ""),
        (
            503,
            b'{"status": "starting", "problem": "cannot follow the stream yet"}',
            "cannot follow the stream yet",
        ),
        (503, b'{"status": "starting"}', "starting"),
        (502, b"<html>bad gateway</html>", "HTTP 502"),
    ],
)
def test_make_up_waits_until_a_push_process_follows_the_stream(
    status: int, body: bytes, missing: str
) -> None:
    assert launcher.following(status, body) == missing


def test_a_url_that_never_gets_ready_ends_make_up_with_what_was_missing(tmp_path: Path) -> None:
    stack = Stack(read_env_file(REPO / ".env.example") | {"STACK_DIR": str(tmp_path)})
    with pytest.raises(SystemExit, match=r"ready \(see .*logs\): not within 0s \(.*refused.*\)"):
        launcher.wait_for_url(stack, "http://127.0.0.1:9/", lambda *_: "", timeout=0)
