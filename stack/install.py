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
    "nats-server": "nats-server",
    # The certificate of the HTTPS listener when NGINX_TLS=on and none is given (stack/nginx.py).
    "openssl": "openssl",
    "shellcheck": "shellcheck",
    "wrk": "wrk",
    # The live page's test drives a real headless browser (tests/integration/test_live_page.py).
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
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


def venv_interpreter(stack: Stack) -> str:
    """The python the venv is built on: VENV_PYTHON (Debian's /usr/bin/python3) where it
    exists, else the one running the launcher.

    The servers run as an unprivileged user (stack/account.py), who must be able to execute the
    venv's interpreter: a python under root's home (pyenv's, for one) is out of its reach.
    """
    wanted = stack.env.get("VENV_PYTHON", "")
    return wanted if wanted and os.access(wanted, os.X_OK) else sys.executable


def ensure_venv(stack: Stack) -> None:
    """Create .venv and install the pinned packages unless it is already up to date (the
    same pins on the same interpreter)."""
    marker = stack.venv / ".requirements.sha256"
    interpreter = venv_interpreter(stack)
    wanted = f"{requirements_digest()} {interpreter}"
    if marker.exists() and marker.read_text() == wanted:
        step("python venv", "up to date")
        return
    if marker.exists() and not marker.read_text().endswith(f" {interpreter}"):
        shutil.rmtree(stack.venv)  # built on another interpreter (or by an older launcher)
    step("python venv", f"installing pinned packages into {stack.venv} ({interpreter})")
    if not (stack.venv / "bin" / "python").exists():
        ensure_venv_module(interpreter)
        subprocess.run([interpreter, "-m", "venv", str(stack.venv)], check=True)
    pip = [str(stack.venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run([*pip, "-r", str(REQUIREMENTS)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"pip install failed:\n{result.stdout}{result.stderr}")
    marker.write_text(wanted)


def ensure_venv_module(interpreter: str) -> None:
    """Debian's own python3 needs python3-venv before it can create a venv."""
    probe = subprocess.run([interpreter, "-c", "import ensurepip"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "python3-venv"], check=True)


def ensure_installed(stack: Stack) -> None:
    """Everything the stack and its tests need, installed once."""
    ensure_system_packages()
    ensure_venv(stack)


def venv_bin(stack: Stack, name: str) -> Path:
    """Path of a console script inside the venv."""
    return stack.venv / "bin" / name
