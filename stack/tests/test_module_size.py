"""A module a newcomer can read in one sitting: none of the project's own (tests aside) is over
MAX_LINES lines. A module that grows past it is split by what its parts do (loadtest/harness/ and
the packages of `make bench` and `make chaos` are how the load tools were)."""

from __future__ import annotations

from stack.settings import REPO

MAX_LINES = 300
PACKAGES = ("backend/app", "stack", "loadtest")


def test_no_module_is_over_300_lines() -> None:
    modules = [
        path
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "tests" not in path.relative_to(REPO).parts
    ]
    assert len(modules) > 100
    long = {
        str(path.relative_to(REPO)): lines
        for path in modules
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
