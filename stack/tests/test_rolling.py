"""`make up` on a running stack: which API replicas get their workers rolled, which get HUP, and
which need nothing; and a roll's order of signals (the integration test runs a real one)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from stack import rolling
from stack.settings import REPO, Stack, read_env_file


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack({**read_env_file(REPO / ".env.example"), "STACK_DIR": str(tmp_path / "state")})


def said_ready(stack: Stack, name: str, pids: set[int], read_at: float) -> None:
    """Replica NAME's master read its config at READ_AT and its workers PIDS are ready."""
    folder = rolling.ready_dir(stack, name)
    folder.mkdir(parents=True)
    for pid in pids:
        (folder / str(pid)).touch()
    (folder / rolling.CONFIG_READ).touch()
    os.utime(folder / rolling.CONFIG_READ, (read_at, read_at))


def test_each_replica_is_rolled_hupped_or_left_as_it_needs(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    now, up_began = time.time(), time.time() - 5
    config = stack.state.parent / "gunicorn.conf.py"  # edited long before any of this
    config.touch()
    os.utime(config, (up_began - 120, up_began - 120))
    monkeypatch.setattr(rolling, "CONFIG", config)
    workers = {1: {11, 12}, 2: {21, 22}, 3: {31, 32}, 4: {41, 42}}
    said_ready(stack, "api-1", {11, 12}, up_began - 60)  # ready, config read before: rolled
    said_ready(stack, "api-2", {21}, up_began - 60)  # a worker not ready (restarting): HUP
    said_ready(stack, "api-3", {31, 32}, now)  # started by this `up`: nothing to do
    # api-4 never said anything (a master of an older version): HUP
    rolled, hupped = [], []
    monkeypatch.setattr(rolling, "workers_of", lambda master: workers[master])
    monkeypatch.setattr(rolling, "roll", lambda name, *_: rolled.append(name))
    monkeypatch.setattr(rolling.processes, "signal_pid", lambda pid, sig: hupped.append((pid, sig)))
    masters = {"api-1": 1, "api-2": 2, "api-3": 3, "api-4": 4}
    rolling.reload(stack, masters, up_began)
    assert rolled == ["api-1"]
    assert sorted(hupped) == [(2, signal.SIGHUP), (4, signal.SIGHUP)]


def test_a_changed_gunicorn_config_is_read_again_with_hup(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    said_ready(stack, "api-1", {11, 12}, rolling.CONFIG.stat().st_mtime - 1)
    monkeypatch.setattr(rolling, "workers_of", lambda master: {11, 12})
    assert not rolling.can_roll(1, rolling.ready_dir(stack, "api-1"))
    os.utime(rolling.ready_dir(stack, "api-1") / rolling.CONFIG_READ)  # read now
    assert rolling.can_roll(1, rolling.ready_dir(stack, "api-1"))


class Master:
    """A gunicorn master as the roll sees it: TTIN forks a worker that is ready at once, TTOU
    stops the oldest."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.workers, self.next_pid, self.sent = folder, [11, 12], 100, list[int]()
        folder.mkdir(parents=True)
        for pid in self.workers:
            (folder / str(pid)).touch()

    def kill(self, _pid: int, sig: int) -> None:
        self.sent.append(sig)
        if sig == signal.SIGTTIN:
            self.workers.append(self.next_pid)
            (self.folder / str(self.next_pid)).touch()
            self.next_pid += 1
        elif sig == signal.SIGTTOU:
            (self.folder / str(self.workers.pop(0))).unlink()


def test_a_roll_adds_every_new_worker_before_it_stops_an_old_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = Master(rolling.ready_dir(stack, "api-1"))
    monkeypatch.setattr(rolling, "workers_of", lambda _master: set(master.workers))
    monkeypatch.setattr(rolling.os, "kill", master.kill)
    rolling.roll("api-1", 1, rolling.ready_dir(stack, "api-1"), timeout=5)
    assert master.sent == [signal.SIGTTIN, signal.SIGTTIN, signal.SIGTTOU, signal.SIGTTOU]
    assert master.workers == [100, 101]
