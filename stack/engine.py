"""The container engine under `make compose-up`: found, or installed and started here, and stopped
only when this project started it; plus the compose CLI and the one base image every image uses.

Never replaces an engine the user has: when `docker info` answers, that engine is used as it is.
Otherwise, on Debian/Ubuntu as root, Debian's docker.io is installed (never over docker-ce) and
its dockerd started in the background with a pid file in the stack's state dir.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from stack.install import apt_install, command_exists
from stack.settings import REPO
from stack.ui import step
from stack.waiting import until

BASE_IMAGE = "debian:bookworm-slim"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org")
# The official image's apt sources: the release, its updates and its security updates.
BASE_SOURCES = f"""Types: deb
URIs: {DEBIAN_MIRROR}/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {DEBIAN_MIRROR}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
# What makes the official image "slim" and keeps layers small: no docs, man pages or locales,
# and no package caches left behind by apt.
SLIM_DPKG = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
"""
CLEAN = "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"
SLIM_APT = f"""DPkg::Post-Invoke {{ "{CLEAN}"; }};
APT::Update::Post-Invoke {{ "{CLEAN}"; }};
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""
PLUGIN_DIR = Path("/usr/local/lib/docker/cli-plugins")
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
# Build contexts whose images pip-install (they trust certs/*.crt in their build stage only).
CERT_DIRS = (REPO / "backend" / "certs", REPO / "loadtest" / "certs")


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; the result is returned, never raised."""
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def engine_answers() -> bool:
    """Whether a container engine answers the docker CLI."""
    try:
        return command_exists("docker") and docker("info", timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def pid_file(state: Path) -> Path:
    return state / "docker" / "dockerd.pid"


def ensure_engine(state: Path) -> bool:
    """A working engine: the one that answers, or Debian's docker.io started here (-> True)."""
    if engine_answers():
        step("container engine", "running (not started by this project; left as it is)")
        return False
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise SystemExit("no container engine answers `docker info`: start Docker and retry")
    if not command_exists("dockerd"):
        if subprocess.run(["dpkg", "-s", "docker-ce"], capture_output=True).returncode == 0:
            raise SystemExit("docker-ce is installed but its engine is not running: start it")
        step("container engine", "installing Debian's docker.io")
        apt_install(["docker.io"])
    start_dockerd(state)
    return True


def start_dockerd(state: Path, timeout: float = 60) -> None:
    """Start dockerd in the background (its own session), with a pid file and a log in STATE."""
    pid_path = pid_file(state)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    log = (state / "logs").resolve()
    log.mkdir(parents=True, exist_ok=True)
    dockerd = shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    with open(log / "dockerd.log", "ab") as out:
        subprocess.Popen(
            [str(dockerd), "--pidfile", str(pid_path), "--log-opt", "max-size=10m"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    until(engine_answers, timeout, f"dockerd answering (see {log})", 0.3)
    step("container engine", f"dockerd started (pid file {pid_path})")


def started_pid(state: Path) -> int | None:
    """The pid of the dockerd this project started, if it still runs."""
    try:
        pid = int(pid_file(state).read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == "dockerd" else None


def stop_engine(state: Path, timeout: float = 60) -> None:
    """Stop the dockerd this project started, unless containers still run on it."""
    pid = started_pid(state)
    if pid is None:
        return
    running = docker("ps", "-q").stdout.split()
    if running:
        step("container engine", f"left running: {len(running)} container(s) still on it")
        return
    os.kill(pid, signal.SIGTERM)
    until(lambda: not alive(pid), timeout, "dockerd stopping", 0.2, required=False)
    step("container engine", "dockerd stopped (started by this project)")


def alive(pid: int) -> bool:
    """Whether PID still runs; a dockerd this very process started is reaped once it exits."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def ensure_compose_cli(venv: Path) -> None:
    """`docker compose` (v2): the user's, or the pinned one from the venv as a CLI plugin."""
    if docker("compose", "version").returncode == 0:
        return
    PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy2(venv / "bin" / "docker-compose", PLUGIN_DIR / "docker-compose")
    step("compose CLI", f"installed the pinned docker compose into {PLUGIN_DIR}")


def ensure_base_image(state: Path) -> None:
    """debian:bookworm-slim: present, pulled, or made by debootstrap where nothing can be pulled."""
    if docker("image", "inspect", BASE_IMAGE).returncode == 0:
        step("base image", f"{BASE_IMAGE} present")
        return
    if docker("pull", "-q", BASE_IMAGE, timeout=600).returncode == 0:
        step("base image", f"{BASE_IMAGE} pulled")
        return
    step("base image", f"no registry: making {BASE_IMAGE} with debootstrap (about a minute)")
    if not command_exists("debootstrap"):
        apt_install(["debootstrap"])
    state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=state, prefix="rootfs-") as rootfs:
        debootstrap(Path(rootfs))
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE
        )
        imported = subprocess.run(
            ["docker", "import", "--change", 'CMD ["bash"]', "-", BASE_IMAGE],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise SystemExit(f"docker import failed: {imported.stderr.strip()}")
    step("base image", f"{BASE_IMAGE} imported")


def debootstrap(rootfs: Path) -> None:
    """A minimal bookworm into ROOTFS with the official image's apt sources; progress shown."""
    command = [
        "debootstrap",
        "--variant=minbase",
        "bookworm",
        str(rootfs),
        f"{DEBIAN_MIRROR}/debian",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as run:
        assert run.stdout is not None
        for line in run.stdout:
            if line.startswith(("I: Retrieving", "I: Extracting", "I: Installing", "I: Base")):
                print(f"    {line.rstrip()}", flush=True)
    if run.returncode != 0:
        raise SystemExit(f"debootstrap failed ({run.returncode})")
    (rootfs / "etc" / "apt" / "sources.list").unlink(missing_ok=True)
    (rootfs / "etc" / "apt" / "sources.list.d" / "debian.sources").write_text(BASE_SOURCES)
    (rootfs / "etc" / "dpkg" / "dpkg.cfg.d" / "slim").write_text(SLIM_DPKG)
    (rootfs / "etc" / "apt" / "apt.conf.d" / "docker-clean").write_text(SLIM_APT)
    subprocess.run(["chroot", str(rootfs), "apt-get", "clean"], check=True)
    shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (rootfs / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)


def ensure_build_certs() -> None:
    """Copy the host's extra CAs into the build contexts that pip-install (git-ignored)."""
    wanted = {path.name: path for path in HOST_EXTRA_CAS.glob("*.crt")}
    for folder in CERT_DIRS:
        for stale in folder.glob("*.crt"):
            if stale.name not in wanted:
                stale.unlink()
        for name, path in wanted.items():
            shutil.copyfile(path, folder / name)
    if wanted:
        step("build CAs", f"{len(wanted)} extra CA(s) from {HOST_EXTRA_CAS} trusted by pip builds")
