"""Generated doc sections: a command rewrites its own section and keeps everything else."""

from __future__ import annotations

from pathlib import Path

from loadtest.harness.docs import replace_section


def test_a_section_is_replaced_in_place_and_the_text_around_it_kept(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\nintro\n\n<!-- generated: a -->\n\nold\n\n<!-- end: a -->\n\nafter\n")
    replace_section(doc, "a", "new")
    assert doc.read_text() == (
        "# Title\n\nintro\n\n<!-- generated: a -->\n\nnew\n\n<!-- end: a -->\n\nafter\n"
    )


def test_a_missing_section_is_added_at_the_end(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n")
    replace_section(doc, "b", "body")
    assert doc.read_text() == "# Title\n\n<!-- generated: b -->\n\nbody\n\n<!-- end: b -->\n"


def test_the_docs_sections_survive_a_rewrite_unchanged() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    for name, section in (("benchmarks.md", "bench"), ("reliability.md", "chaos")):
        text = (docs / name).read_text()
        body = text.split(f"<!-- generated: {section} -->")[1].split(f"<!-- end: {section} -->")[0]
        assert body.startswith("\n\n## Latest run")
        assert body.endswith("\n\n")
