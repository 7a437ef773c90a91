"""Every process the launcher and the load tools start names a module that exists: `make bench`
started its single server as `app:create_app()` for a day after the entry points moved to
app.processes, and nothing but a bench run would have said so."""

from __future__ import annotations

import importlib
import re

import pytest

from stack.settings import REPO

SOURCES = sorted(
    [
        *REPO.glob("loadtest/*.py"),
        *REPO.glob("stack/*.py"),
        *REPO.glob("k8s/*.yaml"),
        *REPO.glob("*/Dockerfile"),
        REPO / "docker-compose.yml",
        REPO / "Makefile",
    ]
)
APP = re.compile(r"app\.processes\.[a-z_]+(?::[a-z_]+\(\))?|\bapp:[a-z_]+\(\)")


def named() -> set[str]:
    """Every app module (or module:factory()) the sources name for a process to run."""
    return {m for path in SOURCES for m in APP.findall(path.read_text())}


def test_the_sources_name_processes() -> None:
    assert "app.processes.api:create_app()" in named()


@pytest.mark.parametrize("target", sorted(named()))
def test_every_named_process_exists(target: str) -> None:
    module, _, factory = target.partition(":")
    loaded = importlib.import_module(module)
    if factory:
        assert callable(getattr(loaded, factory.removesuffix("()"), None)), target
