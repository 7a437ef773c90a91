"""The README's results box and its length (issue: a README that fits a screen or two)."""

from __future__ import annotations

from pathlib import Path

from loadtest import results_box
from stack.settings import REPO


def test_the_readme_results_box_is_what_the_last_measurements_wrote() -> None:
    """The box is rendered from docs/benchmarks.md's and docs/capacity.md's generated sections
    (make bench and make loadtest refresh it), never edited by hand."""
    assert results_box.section(REPO / "README.md", "results").strip() == results_box.render()


def test_the_box_says_not_met_for_a_target_the_bench_missed(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "benchmarks.md").write_text(
        "<!-- generated: bench -->\n\n`make bench`, 2026-01-02 03:04 UTC\n\n"
        "| ratio | value | target | status |\n|---|---|---|---|\n"
        f"| {results_box.ZIPF} | 0.70 | ≥ 2.5 | **not met** |\n"
        f"| {results_box.RANDOM} | 1.20 | ≥ 1 | met |\n\n<!-- end: bench -->\n"
    )
    box = results_box.render(tmp_path)
    assert "| 0.70 | ≥ 2.5: **not met** |" in box
    assert "| 1.20 | ≥ 1: met |" in box
    assert "| – | –: **not met** |" in box  # the edge share: not measured, never "met"
    assert "2026-01-02 03:04 UTC" in box
    assert "(never)" in box  # no load test has run


def test_the_tutorials_staircase_is_what_the_last_bench_wrote() -> None:
    tutorial = REPO / "docs" / "tutorial.md"
    assert results_box.section(tutorial, "stages").strip() == results_box.stages()
    assert "| 5. + edge cache" in results_box.stages()


def test_the_readme_fits_two_screens() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 120
