"""The crash that `make chaos` and the tests inject: the process is killed only once supervisord
is stopping it, so supervisord does not restart it, and a crash that did not keep it down fails."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from stack import supervisor
from stack.settings import REPO, Stack, read_env_file


class Supervisord:
    """Answers supervisorctl as supervisord would: a stop request is seen only after a few status
    polls (supervisorctl starting up), and the stop ends when the process dies."""

    def __init__(self, after_kill: str = "STOPPED") -> None:
        self.state, self.after_kill = "RUNNING", after_kill
        self.stop_asked, self.killed = threading.Event(), threading.Event()
        self.polls_until_stopping = 3
        self.signals: list[tuple[int, str]] = []  # (signal, the state when it was sent)

    def ctl(
        self, _stack: Stack, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if args[0] == "stop":
            self.stop_asked.set()
            assert self.killed.wait(5), "never killed"
            self.state = self.after_kill
            return subprocess.CompletedProcess(args, 0, f"{args[1]}: stopped\n", "")
        assert args[0] == "status"
        if self.stop_asked.is_set() and self.state == "RUNNING":
            self.polls_until_stopping -= 1
            if self.polls_until_stopping <= 0:
                self.state = "STOPPING"
        return subprocess.CompletedProcess(args, 0, f"{args[1]}  {self.state}  pid 42\n", "")

    def kill(self, _pid: int, sig: int) -> None:
        self.signals.append((sig, self.state))
        if sig == signal.SIGKILL:
            self.killed.set()


@pytest.fixture
def stack() -> Stack:
    return Stack(read_env_file(REPO / ".env.example"))


def crash_with(monkeypatch: pytest.MonkeyPatch, fake: Supervisord, stack: Stack) -> None:
    monkeypatch.setattr(supervisor, "ctl", fake.ctl)
    monkeypatch.setattr(supervisor.os, "kill", fake.kill)
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    supervisor.crash(stack, "mysql-primary", 42)


def test_the_process_is_frozen_first_and_killed_only_while_supervisord_stops_it(
    monkeypatch: pytest.MonkeyPatch, stack: Stack
) -> None:
    fake = Supervisord()
    crash_with(monkeypatch, fake, stack)
    assert fake.signals == [(signal.SIGSTOP, "RUNNING"), (signal.SIGKILL, "STOPPING")]


def test_a_program_that_is_not_stopped_after_the_kill_fails_the_crash(
    monkeypatch: pytest.MonkeyPatch, stack: Stack
) -> None:
    fake = Supervisord(after_kill="STARTING")  # restarted: not the fault asked for
    with pytest.raises(SystemExit, match="STARTING after the kill"):
        crash_with(monkeypatch, fake, stack)


def test_a_stop_that_never_begins_fails_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch, stack: Stack
) -> None:
    fake = Supervisord()
    fake.polls_until_stopping = 10**9
    clock = iter(range(0, 10**6, 10))
    monkeypatch.setattr(supervisor.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(SystemExit, match="supervisord starting to stop mysql-primary: not within"):
        crash_with(monkeypatch, fake, stack)
    fake.killed.set()  # let the stop thread end
