"""gunicorn's config keeps the app out of the master, so a reload (SIGHUP) loads new code."""

from __future__ import annotations

import subprocess
import sys

from stack.settings import REPO

CHECK = """
import runpy, sys
runpy.run_path("gunicorn.conf.py")
leaked = sorted(m for m in sys.modules if m == "app" or m.startswith("app."))
assert not leaked, leaked
"""


def test_reading_the_gunicorn_config_imports_nothing_of_the_app() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=REPO / "backend",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
