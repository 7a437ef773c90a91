"""The request path flows one way: api -> services -> (cache | db) -> engines. These rules keep
it so; each fails, naming the module and the import, when a change breaks it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tools import request_path

APP = Path(__file__).resolve().parents[2] / "app"

WEB_AND_ROUTES = ("flask", "werkzeug", "app.api")
# Everything above the shared leaves but resilience/ and messaging/.
LAYERS_ABOVE_LEAVES = ("app.services", "app.cache", "app.db", "app.wiring", "app.processes")


def other_processes(own: str) -> tuple[str, ...]:
    """The parts of every process but OWN's, and every entry point."""
    parts = ("app.queue", "app.push", "app.edge", "app.wiring", "app.processes")
    return tuple(part for part in parts if part != own)


# Layer (a package or module of app) -> what no module in it may import.
FORBIDDEN = {
    # Routes parse, call the application layer and shape answers: no router, monitor, engine,
    # SQL or cache of their own.
    "app.api": ("app.db", "app.cache"),
    # The application layer and everything below it know nothing of HTTP.
    "app.services": ("flask", "werkzeug", "app.api", *other_processes("")),
    "app.cache": ("flask", "werkzeug", "app.api", "app.services"),
    "app.db": ("flask", "werkzeug", "app.api", "app.services", "app.cache"),
    "app.resilience": ("flask", "werkzeug", "app.api", "app.services", "app.cache", "app.db"),
    "app.errors": ("flask", "werkzeug", "app.api", "app.services", "app.db", "app.cache"),
    "app.gtid": ("flask", "werkzeug", "app.api", "app.services", "app.db", "app.cache"),
    "app.metrics": ("flask", "werkzeug", "app.api", "app.services", "app.db", "app.cache"),
    # What an event is knows nothing of who records, carries or applies it.
    "app.messaging.events": ("flask", "werkzeug", "app.api", "app.services", "app.db", "app.cache"),
    # The relay and the workers are another entry point beside HTTP: they call the application
    # layer (or, the relay, the outbox's SQL), never the routes, and no other process's parts.
    "app.queue": (*WEB_AND_ROUTES, "app.wiring", *other_processes("app.queue")),
    # The event contract and the broker: below every process that records or follows events.
    "app.messaging": (*WEB_AND_ROUTES, *LAYERS_ABOVE_LEAVES, "app.resilience"),
    # The push service and the edge purger: the broker and their own parts, nothing of the API.
    "app.push": (*WEB_AND_ROUTES, *LAYERS_ABOVE_LEAVES, *other_processes("app.push")),
    "app.edge": (*WEB_AND_ROUTES, *LAYERS_ABOVE_LEAVES, *other_processes("app.edge")),
    # The assembly of an API worker (and of a queue worker's units of work).
    "app.wiring": (*WEB_AND_ROUTES, *other_processes("app.wiring")),
    # Leaves every layer reads import no layer.
    **{
        leaf: (*WEB_AND_ROUTES, *LAYERS_ABOVE_LEAVES, "app.resilience", "app.messaging")
        for leaf in ("app.config", "app.logs", "app.schemas", "app.models", "app.ids")
    },
}


# Where the processes start (app/processes): nothing else imports them.
PROCESSES = "app.processes"
# The one process that serves HTTP with Flask; every other process loads no web framework.
FLASK_PROCESS = "app.processes.api"
WEB = ("flask", "werkzeug")


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


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(APP.rglob("*.py"))}


def test_no_module_imports_a_process_entry_point() -> None:
    found = [
        f"{module} imports {name}"
        for module, path in modules().items()
        if not within(module, PROCESSES)
        for name in sorted(imports(path))
        if within(name, PROCESSES)
    ]
    assert found == []


def chain_to_web(start: str, known: dict[str, Path]) -> list[str]:
    """The import chain from module START to Flask or Werkzeug (through app modules, and the
    package __init__ of each module on the way, as Python runs them); [] when there is none."""
    parents: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for name in sorted(imports(known[module])):
            if any(within(name, web) for web in WEB):
                chain: list[str] = [name]
                at: str | None = module
                while at is not None:
                    chain.append(at)
                    at = parents[at]
                return chain[::-1]
            parts = name.split(".")
            # "from app.x import y" may name a module app.x.y or a thing in app.x; and importing
            # app.x.y runs app/__init__, app/x/__init__ first.
            for size in range(1, len(parts) + 1):
                candidate = ".".join(parts[:size])
                if candidate in known and candidate not in parents:
                    parents[candidate] = module
                    queue.append(candidate)
    return []


@pytest.mark.parametrize(
    "process",
    sorted(m for m in modules() if within(m, PROCESSES) and m not in (PROCESSES, FLASK_PROCESS)),
)
def test_only_the_api_process_loads_flask(process: str) -> None:
    """Directly or through any import on the way (the relay, workers, heartbeat, push and purger
    processes load no web framework). Checked in the source (naming the chain) and by importing
    the process in an interpreter of its own."""
    assert chain_to_web(process, modules()) == []
    probe = f"import sys, {process}; print(sorted(set(sys.modules) & {set(WEB)}))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=APP.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_the_api_process_does_load_flask() -> None:
    """The check above can find a chain: the API process has one."""
    assert chain_to_web(FLASK_PROCESS, modules())[-1] in WEB


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
