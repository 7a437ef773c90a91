"""gunicorn's config keeps the app out of the master, so a reload (SIGHUP) loads new code, and
makes each answer one write (backend/onewrite.py)."""

from __future__ import annotations

import subprocess
import sys

from gunicorn.http import wsgi  # type: ignore[import-untyped]

from stack.settings import REPO

CHECK = """
import runpy, sys
runpy.run_path("gunicorn.conf.py")
leaked = sorted(m for m in sys.modules if m == "app" or m.startswith("app."))
assert not leaked, leaked
"""

ONE_WRITE = """
import runpy
from gunicorn.http import wsgi
runpy.run_path("gunicorn.conf.py")
from onewrite import OneWriteResponse
assert wsgi.Response is OneWriteResponse, wsgi.Response
"""


def read_config(check: str) -> subprocess.CompletedProcess[str]:
    """Read gunicorn.conf.py as gunicorn's master does, in a fresh interpreter, then CHECK."""
    return subprocess.run(
        [sys.executable, "-c", check],
        cwd=REPO / "backend",
        capture_output=True,
        text=True,
        check=False,
    )


def test_reading_the_gunicorn_config_imports_nothing_of_the_app() -> None:
    result = read_config(CHECK)
    assert result.returncode == 0, result.stderr


def test_the_config_makes_every_response_a_one_write_response() -> None:
    """gunicorn's sync worker builds responses through wsgi.create, which looks Response up in
    its module (backend/onewrite.py): a gunicorn that stops doing so fails here."""
    assert wsgi.create.__defaults__ == (None, ())  # response_class: None means wsgi.Response
    result = read_config(ONE_WRITE)
    assert result.returncode == 0, result.stderr
