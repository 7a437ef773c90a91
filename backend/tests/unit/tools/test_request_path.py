"""The request-path diagram is the source's: regenerated, it is what is committed."""

from __future__ import annotations

from tools import request_path


def test_the_committed_diagram_is_what_the_source_draws() -> None:
    assert request_path.OUT.read_text() == request_path.dot(request_path.graph()), (
        "docs/diagrams/request-path.dot is out of date: run make diagrams"
    )


def test_every_arrow_points_down_the_layers() -> None:
    order = [layer for layer, _, _ in request_path.LAYERS]

    def rank(module: str) -> int:
        return next(i for i, layer in enumerate(order) if module.startswith(layer + "."))

    upward = [
        f"{source} -> {target}"
        for source, targets in request_path.graph().items()
        for target in targets
        if rank(target) < rank(source)
    ]
    assert upward == []
