"""The API's operator CLI from the launcher, and API keys for the project's own clients.

Each is created once through the API's CLI and kept in the stack's state dir (readable by its
owner only), so repeated runs reuse it instead of piling up keys; `make clean` removes them.
"""

from __future__ import annotations

import os
import subprocess

from stack.install import venv_bin
from stack.settings import REPO, Stack


def app_cli(stack: Stack, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the API's operator CLI (python -m app.processes.cli: keys, breakers) with the stack's
    settings."""
    return subprocess.run(
        [str(venv_bin(stack, "python")), "-m", "app.processes.cli", *args],
        cwd=REPO / "backend",
        env={**os.environ, **stack.api_env()},
        capture_output=capture,
        text=True,
        check=False,
    )


def create_key(stack: Stack, name: str, tier: str) -> str:
    """A new key of TIER named NAME (the whole key, as the CLI prints it once)."""
    return key_printed(
        app_cli(stack, "keys", "create", "--tier", tier, "--name", name, capture=True)
    )


def key_printed(result: subprocess.CompletedProcess[str]) -> str:
    """The key `python -m app.processes.cli keys create` printed (its last line), or a clear
    exit."""
    key = result.stdout.strip().splitlines()[-1] if result.returncode == 0 else ""
    if not key.startswith("zk_"):
        raise SystemExit(f"could not create an API key: {result.stderr.strip()[-500:]}")
    return key


def ensure_key(stack: Stack, name: str, tier: str = "critical") -> str:
    """The stored key NAME of this stack, created on first use."""
    path = stack.state / "keys" / f"{name}.key"
    if path.exists():
        return path.read_text().strip()
    key = create_key(stack, name, tier)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key
