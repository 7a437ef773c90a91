"""The request path flows one way: api -> services -> (cache | db) -> engines. These rules keep
it so; each fails, naming the module and the import, when a change breaks it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tools import request_path

APP = Path(__file__).resolve().parents[2] / "app"

# Layer (a package or module of app) -> what no module in it may import.
FORBIDDEN = {
    # Routes parse, call the application layer and shape answers: no router, monitor, engine,
    # SQL or cache of their own.
    "app.api": ("app.db", "app.cache"),
    # The application layer and everything below it know nothing of HTTP.
    "app.services": ("flask", "werkzeug", "app.api"),
    "app.cache": ("flask", "werkzeug", "app.api", "app.services"),
    "app.db": ("flask", "werkzeug", "app.api", "app.services", "app.cache"),
    "app.resilience": ("flask", "werkzeug", "app.api", "app.services", "app.cache"),
    "app.errors": ("flask", "werkzeug", "app.api", "app.services", "app.db", "app.cache"),
    "app.gtid": ("flask", "werkzeug", "app.api", "app.services", "app.db", "app.cache"),
    "app.metrics": ("flask", "werkzeug", "app.api", "app.services", "app.db", "app.cache"),
    # What an event is knows nothing of who records, carries or applies it.
    "app.events": ("flask", "werkzeug", "app.api", "app.services", "app.db", "app.cache"),
    # The relay and the workers are another entry point beside HTTP: they call the application
    # layer (or, the relay, the outbox's SQL), never the routes.
    "app.queue": ("flask", "werkzeug", "app.api"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module PATH imports, by absolute name."""
    found: set[str] = set()
    for node in ast.walk(request_path.parse(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations() -> list[str]:
    found = []
    for path in sorted(APP.rglob("*.py")):
        module = module_name(path)
        for layer, forbidden in FORBIDDEN.items():
            if not within(module, layer):
                continue
            found += [
                f"{module} imports {name}"
                for name in sorted(imports(path))
                if any(within(name, banned) for banned in forbidden)
            ]
    return found


def test_every_import_points_down_the_request_path() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("app.api.users", "from app.db.routing import Router"),
        ("app.api.users", "import app.cache"),
        ("app.services.units", "from flask import g"),
        ("app.db.routing", "from app.services.consistency import Token"),
    ],
)
def test_the_rule_catches_an_import_that_points_up(
    module: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_app = tmp_path / "app"
    target = fake_app.joinpath(*module.split(".")[1:]).with_suffix(".py")
    target.parent.mkdir(parents=True)
    target.write_text(line + "\n")
    monkeypatch.setattr(f"{__name__}.APP", fake_app)
    assert f"{module} imports {line.split()[1]}" in violations()
