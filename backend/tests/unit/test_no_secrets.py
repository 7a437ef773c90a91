"""No secret in code: the development secrets of .env.example appear nowhere else in the repo.

The one deliberate exception is the deny-list in app/config.py, which refuses them in production.
"""

from __future__ import annotations

import subprocess

from stack.settings import REPO, read_env_file

SECRET_SUFFIXES = ("PASSWORD", "SECRET_KEY")
ALLOWED = {".env.example", "backend/app/config.py"}


def test_development_secrets_live_only_in_env_example() -> None:
    env = read_env_file(REPO / ".env.example")
    secrets = {name: value for name, value in env.items() if name.endswith(SECRET_SUFFIXES)}
    assert secrets, "no secrets found in .env.example"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    leaks = []
    for path in tracked:
        tests = path.startswith(("backend/tests/", "stack/tests/", "loadtest/tests/"))
        if path in ALLOWED or tests or path.endswith(".png"):
            continue
        text = (REPO / path).read_text(errors="ignore")
        leaks += [f"{path}: {name}" for name, value in secrets.items() if value in text]
    assert not leaks
