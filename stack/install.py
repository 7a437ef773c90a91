"""Installs what the stack needs and is missing: Debian packages and the pinned Python venv."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from stack.settings import REPO, Stack
from stack.ui import step

# Debian package that provides each command the stack runs.
SYSTEM_PACKAGES = {
    "mariadbd": "mariadb-server",
    "mariadb": "mariadb-client",
    "redis-server": "redis-server",
    "nginx": "nginx",
    "shellcheck": "shellcheck",
    "wrk": "wrk",
}
REQUIREMENTS = REPO / "backend" / "requirements-dev.txt"


def command_exists(name: str) -> bool:
    """True when NAME is on PATH (or in /usr/sbin, where Debian puts daemons)."""
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is not None


def ensure_system_packages() -> None:
    """apt-get install the packages whose commands are missing."""
    missing = sorted({pkg for cmd, pkg in SYSTEM_PACKAGES.items() if not command_exists(cmd)})
    if not missing:
        step("system packages", "already installed")
        return
    if os.geteuid() != 0:
        raise SystemExit(f"missing packages {missing}: run as root or install them first")
    step("system packages", f"installing {' '.join(missing)}")
    apt_install(missing)


def apt_install(packages: list[str]) -> None:
    """apt-get update, then install PACKAGES without their recommends."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def requirements_digest() -> str:
    """A digest of every requirements file, so the venv is rebuilt when a pin changes."""
    digest = hashlib.sha256()
    for path in sorted(REQUIREMENTS.parent.glob("requirements*.txt")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv(stack: Stack) -> None:
    """Create .venv and install the pinned packages unless it is already up to date."""
    marker = stack.venv / ".requirements.sha256"
    wanted = requirements_digest()
    if marker.exists() and marker.read_text() == wanted:
        step("python venv", "up to date")
        return
    step("python venv", f"installing pinned packages into {stack.venv}")
    if not (stack.venv / "bin" / "python").exists():
        ensure_venv_module()
        subprocess.run([sys.executable, "-m", "venv", str(stack.venv)], check=True)
    pip = [str(stack.venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run([*pip, "-r", str(REQUIREMENTS)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"pip install failed:\n{result.stdout}{result.stderr}")
    marker.write_text(wanted)


def ensure_venv_module() -> None:
    """Debian's own python3 needs python3-venv before it can create a venv."""
    probe = subprocess.run([sys.executable, "-c", "import ensurepip"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "python3-venv"], check=True)


def ensure_installed(stack: Stack) -> None:
    """Everything the stack and its tests need, installed once."""
    ensure_system_packages()
    ensure_venv(stack)


def venv_bin(stack: Stack, name: str) -> Path:
    """Path of a console script inside the venv."""
    return stack.venv / "bin" / name
