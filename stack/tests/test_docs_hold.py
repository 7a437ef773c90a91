"""The docs name only what exists: every `make` target they show is one of the Makefile's, every
relative link and anchor resolves, and every setting the README names is in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack.settings import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCED = re.compile(r"```.*?```", re.S)


def code(text: str) -> list[str]:
    """The fenced blocks and inline code spans of a markdown TEXT."""
    return [*FENCED.findall(text), *re.findall(r"`([^`\n]+)`", FENCED.sub("", text))]


def slug(heading: str) -> str:
    """The anchor a heading gets on GitHub: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.+)$", FENCED.sub("", path.read_text()), re.M)}


def targets() -> set[str]:
    return set(re.findall(r"^([a-zA-Z][\w-]*):", (REPO / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_make_target_a_doc_shows_exists(doc: Path) -> None:
    named = {
        m
        for span in code(doc.read_text())
        for m in re.findall(r"(?<![\w-])make ([a-z][a-z0-9-]*)", span)
    }
    assert named - targets() == set()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(doc: Path) -> None:
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", FENCED.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", link):
            continue  # http(s), mailto: outside the repo
        path, _, anchor = link.partition("#")
        target = (doc.parent / path).resolve() if path else doc
        if not target.exists() or (
            anchor and target.suffix == ".md" and anchor not in anchors(target)
        ):
            broken.append(link)
    assert broken == []


def test_every_setting_the_readme_names_is_in_env_example() -> None:
    example = (REPO / ".env.example").read_text()
    named = {
        token
        for span in code((REPO / "README.md").read_text())
        for token in re.findall(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b", span)
    }
    assert {name for name in named if not re.search(rf"\b{name}\b", example)} == set()


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """A missing target, file and anchor are found (the checks are not vacuous)."""
    assert "no-such-target" not in targets()
    assert (
        slug("The edge cache: the CDN step, in `nginx`") == "the-edge-cache-the-cdn-step-in-nginx"
    )
    doc = tmp_path / "doc.md"
    doc.write_text("# Here\n")
    assert anchors(doc) == {"here"}
