"""Every process of the native stack, found through the pid files its servers write: never by name.

supervisord starts each program as the leader of a process group of its own, and each server
writes its pid file into the state dir (supervisord, every mariadbd, redis, the heartbeat, every
gunicorn master, nginx's master). A process belongs to the stack when it is in the process group
of one of those pids and runs that program's executable: an nginx worker whose master was killed
is still in its master's group, and is found. A process whose command line names this stack's
state dir belongs to it too (a mariadbd whose pid file is gone).

A process of the stack that does not descend from the running supervisord is an *orphan*: left
behind by a supervisord or a master that was killed. Orphans hold ports and datadir locks that the
supervised programs need, so the launcher stops them (by pid) before it starts anything, refuses
to delete the state dir while any of its processes runs, and says "ready" only when every port
is held by a supervised process.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from stack import stages
from stack.settings import Stack
from stack.waiting import until

PROC = Path("/proc")
# Executables that name this stack's state dir on their command line (none of them rewrites it).
SERVERS_BY_COMMAND_LINE = ("mariadbd", "mysqld", "nginx", "nats-server", "supervisord")
# Program (by the start of its name) -> the executables (/proc/<pid>/comm) it runs.
EXECUTABLES = {
    "supervisord": ("supervisord",),
    "mysql-": ("mariadbd", "mysqld"),
    "redis": ("redis-server",),
    "heartbeat": ("python", "python3"),
    "edge-purger": ("python", "python3"),
    "nats-": ("nats-server",),
    "relay-": ("python", "python3"),
    "worker-": ("python", "python3"),
    "api-": ("gunicorn", "python", "python3"),
    "push-": ("gunicorn", "python", "python3"),
    "nginx": ("nginx",),
}


@dataclass(frozen=True)
class Process:
    """One process of the stack."""

    pid: int
    ppid: int
    pgid: int
    comm: str
    program: str


def pid_files(stack: Stack) -> dict[str, Path]:
    """Program -> the pid file it writes (see stack/render.py)."""
    run = stack.state / "run"
    files = {
        "supervisord": stack.state / "supervisor" / "supervisord.pid",  # root's own folder
        "redis": run / "redis.pid",
    }
    mysql = stack.state / "mysql"
    files |= {f"mysql-{db.name}": mysql / db.name / "mysqld.pid" for db in stack.databases}
    files |= {"heartbeat": run / "heartbeat.pid", "nginx": run / "nginx.pid"}
    files["edge-purger"] = run / "edge-purger.pid"
    files |= {node.name: run / f"{node.name}.pid" for node in stack.nats_nodes}
    files |= {name: run / f"{name}.pid" for name in [*stack.relays, *stack.workers]}
    files |= {api.name: run / f"{api.name}.pid" for api in stack.apis}
    files |= {push.name: run / f"{push.name}.pid" for push in stack.pushes}
    return files


def scan() -> dict[int, tuple[int, int, str]]:
    """Every live process of the machine (zombies are gone already): pid -> (ppid, pgid, comm)."""
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), int(fields[2]), comm)
    return found


def read_pid(path: Path) -> int | None:
    """The pid in PATH, if any."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    """PID's command line, spaces between its words ('' when it is gone)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def runs(program: str, comm: str) -> bool:
    """Does a process named COMM run PROGRAM?"""
    return any(
        program.startswith(prefix) and comm in names for prefix, names in EXECUTABLES.items()
    )


def stack_processes(stack: Stack) -> list[Process]:
    """Every live process of this stack (see the module docstring)."""
    table = scan()
    own: dict[int, Process] = {}
    for program, path in pid_files(stack).items():
        leader = read_pid(path)
        if leader is None or leader <= 1:
            continue
        for pid, (ppid, pgid, comm) in table.items():
            if (pgid == leader or pid == leader) and runs(program, comm):
                own[pid] = Process(pid, ppid, pgid, comm, program)
    marker = str(stack.state.resolve())
    for pid, (ppid, pgid, comm) in table.items():
        if pid in own or pid == os.getpid():
            continue
        line = cmdline(pid)
        if comm in SERVERS_BY_COMMAND_LINE and marker + "/" in line:
            own[pid] = Process(pid, ppid, pgid, comm, comm)
        elif f"-m stack.logrotate {marker}/" in line:  # the one program without a pid file
            own[pid] = Process(pid, ppid, pgid, comm, "logrotate")
    return sorted(own.values(), key=lambda p: p.pid)


def descends_from(pid: int, ancestor: int, table: dict[int, tuple[int, int, str]]) -> bool:
    """Is PID ANCESTOR or one of its descendants?"""
    seen = set()
    while pid > 1 and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        pid = table.get(pid, (0, 0, ""))[0]
    return False


def supervisord_alive(stack: Stack) -> int | None:
    """The pid of this stack's supervisord when it runs."""
    pid = read_pid(pid_files(stack)["supervisord"])
    if pid is None:
        return None
    comm = scan().get(pid, (0, 0, ""))[2]
    return pid if comm in EXECUTABLES["supervisord"] else None


def orphans(stack: Stack) -> list[Process]:
    """Processes of the stack outside the running supervisord's tree (all, without one)."""
    supervisord = supervisord_alive(stack)
    table = scan()
    return [
        p
        for p in stack_processes(stack)
        if p.program != "supervisord"
        and (supervisord is None or not descends_from(p.pid, supervisord, table))
    ]


def alive(pid: int) -> bool:
    """Is PID a live process (not a zombie)?"""
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# The order a stop follows, as supervisord's priorities do: the entry first, so that no request
# arrives at a server already gone; the queue's processes before the broker; the databases last.
# nginx's graceful stop is QUIT; nats-server's is INT (TERM stops it as cleanly, but exits 1).
STOP_ORDER = (
    "nginx",
    "api-",
    "push-",
    "relay-",
    "worker-",
    "edge-purger",
    "heartbeat",
    "nats-",
    "redis",
    "mysql-",
    "",
)
STOP_SIGNALS = {"nginx": signal.SIGQUIT, "nats-": signal.SIGINT}


def stop(processes: list[Process], timeout: float = 60) -> list[Process]:
    """Stop PROCESSES tier by tier (STOP_ORDER): each with its graceful signal (TERM: mariadbd
    shuts down cleanly, gunicorn finishes its requests; QUIT for nginx), KILL for what still runs
    at TIMEOUT. Returns the ones that survived even that."""
    tiers: list[list[Process]] = [[] for _ in STOP_ORDER]
    for process in processes:
        rank = next(i for i, prefix in enumerate(STOP_ORDER) if process.program.startswith(prefix))
        tiers[rank].append(process)
    for prefix, tier in zip(STOP_ORDER, tiers, strict=True):
        for process in tier:
            signal_pid(process.pid, STOP_SIGNALS.get(prefix, signal.SIGTERM))
        until(partial(all_gone, tier), timeout, f"{prefix} stopping", required=False)
        for process in tier:
            if alive(process.pid):
                signal_pid(process.pid, signal.SIGKILL)
    until(partial(all_gone, processes), 5, "stopping", required=False)
    return [p for p in processes if alive(p.pid)]


def all_gone(group: list[Process]) -> bool:
    """Whether every process of GROUP has exited."""
    return not any(alive(p.pid) for p in group)


def signal_pid(pid: int, number: signal.Signals) -> None:
    """Send NUMBER to PID, which may have exited meanwhile."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def describe(processes: list[Process]) -> str:
    """'nginx (pid 12), mysql-primary (pid 34)'."""
    return ", ".join(f"{p.program} (pid {p.pid}: {p.comm})" for p in processes)


def listeners(ports: set[int]) -> dict[int, set[int]]:
    """Port -> the inodes of the sockets listening on it (TCP, IPv4 and IPv6)."""
    found: dict[int, set[int]] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and port in ports:  # 0A: LISTEN
                found.setdefault(port, set()).add(int(fields[9]))
    return found


def socket_owners(pids: list[int]) -> dict[int, int]:
    """Socket inode -> the pid (among PIDS) that holds it."""
    owners = {}
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in (PROC / str(pid) / "fd").iterdir()]
        except OSError:
            continue
        for link in links:
            if link.startswith("socket:["):
                owners[int(link[8:-1])] = pid
    return owners


def strangers_on_ports(stack: Stack) -> dict[int, str]:
    """The stack's ports held by anything but the running supervisord's programs: port -> who."""
    supervisord = supervisord_alive(stack)
    table = scan()
    ports = {stack.nginx_port, stack.redis_port, *(db.port for db in stack.databases)}
    ports |= {stack.nginx_internal_port} | set(stack.nginx_tls_ports)
    ports |= set(stages.server_ports(stack))
    ports |= {api.port for api in stack.apis} | {push.port for push in stack.pushes}
    ports |= {p for n in stack.nats_nodes for p in (n.client_port, n.cluster_port)}
    ports |= set(stack.queue_metrics_ports().values())
    held = listeners(ports)
    owners = socket_owners(list(table))
    found = {}
    for port, inodes in sorted(held.items()):
        holders = {owners[i] for i in inodes if i in owners}
        for pid in holders:
            if supervisord is None or not descends_from(pid, supervisord, table):
                found[port] = f"pid {pid} ({table.get(pid, (0, 0, '?'))[2]})"
    return found
