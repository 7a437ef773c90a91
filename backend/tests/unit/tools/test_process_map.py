"""The processes diagram is the source's: regenerated, it is what is committed; and it shows
what test_layers.py enforces: only the API process reaches Flask."""

from __future__ import annotations

from tools import process_map, request_path


def test_the_committed_processes_diagram_is_what_the_source_draws() -> None:
    assert process_map.OUT.read_text() == process_map.dot(process_map.graph()), (
        "docs/diagrams/processes.dot is out of date: run make diagrams"
    )


def test_every_process_is_drawn_and_only_the_api_reaches_flask() -> None:
    edges = process_map.graph()
    drawn = {p.stem for p in (request_path.APP / "processes").glob("*.py") if p.stem != "__init__"}
    assert {p.removeprefix("app.processes.") for p in process_map.PROCESSES} == drawn

    def reaches(part: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found = set(edges.get(part, ()))
        for target in edges.get(part, ()):
            if target not in seen:
                found |= reaches(target, seen | {part})
        return found

    with_flask = {p for p in process_map.PROCESSES if process_map.FLASK in reaches(p)}
    assert with_flask == {"app.processes.api"}
