"""The README's results box: the headline of the last measurements, rendered from what the
measuring commands wrote, never typed by hand.

`make bench` writes its tables into docs/benchmarks.md (section "bench": the staircase, the hot
path, the targets) and `LOAD_SHAPE=dau-peak make loadtest` its verdict into docs/capacity.md
(section "loadtest-dau-peak"); each then calls refresh(), which reads those sections and rewrites
the README's section "results". `python -m loadtest.results_box` does the same by hand, and a
test (stack/tests/test_docs_hold.py) fails when the box and the sections disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from loadtest.harness.docs import replace_section
from stack.settings import REPO

# The rows of the bench's targets table the box shows, by their label there.
ZIPF = "Zipf reads: full stack (stage 5) ÷ peer, p99 ≤ 50 ms"
RANDOM = "random id, the full stack (edge on) ÷ peer with no cache"
EDGE_SHARE = "Zipf reads: share of stage 5's requests the edge answered"


def section(doc: Path, name: str) -> str:
    """The text of DOC's generated section NAME ('' when there is none)."""
    text = doc.read_text() if doc.exists() else ""
    begin, end = f"<!-- generated: {name} -->", f"<!-- end: {name} -->"
    if begin not in text or end not in text:
        return ""
    return text.split(begin, 1)[1].split(end, 1)[0]


def rows(text: str) -> list[list[str]]:
    """The cells of every markdown table row in TEXT."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|") and not set(line) <= set("|-: ")
    ]


def stamp(text: str) -> str:
    """The run's time as its section states it (e.g. 2026-12-06 23:03 UTC)."""
    found = re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", text)
    return found.group(0) if found else "never"


def render(repo: Path = REPO) -> str:
    """The box, from the bench's and the load test's sections."""
    bench = section(repo / "docs" / "benchmarks.md", "bench")
    peak = section(repo / "docs" / "capacity.md", "loadtest-dau-peak")
    targets = {cells[0]: cells[1:] for cells in rows(bench) if len(cells) == 4}
    lines = [
        "| last measured, on this machine | result | target |",
        "|---|---|---|",
    ]
    for label, shown in (
        (ZIPF, "Zipf-distributed reads: the full stack ÷ a naive Flask + Redis stack"),
        (RANDOM, "uniformly random (cold) reads: the full stack ÷ the naive stack"),
        (EDGE_SHARE, "share of the Zipf reads nginx's edge answered"),
    ):
        value, target, status = targets.get(label, ["–", "–", "not measured"])
        verdict = "met" if status == "met" else "**not met**"
        lines.append(f"| {shown} | {value} | {target}: {verdict} |")
    table = [cells for cells in rows(peak) if len(cells) >= 5]
    if len(table) >= 2:  # the header, then the run's row
        held = table[-1]
        verdict = "met" if held[4].startswith("met") else "**not reached**"
        lines.append(
            f"| the 1M-DAU model's peak under Locust (p99 {held[2]} ms) | {held[1]} "
            f"| {held[0]}: {verdict} |"
        )
    return (
        "\n".join(lines)
        + f"\n\nFrom `make bench` ({stamp(bench)}) and `LOAD_SHAPE=dau-peak make loadtest` "
        f"({stamp(peak)}); how they are measured, and why the targets are not met yet: "
        "[benchmarks](docs/benchmarks.md), [capacity](docs/capacity.md)."
    )


def stages(repo: Path = REPO) -> str:
    """The tutorial's table of the staircase: each stage's Zipf throughput in the last `make
    bench`, and its ratios to the stage before and to the naive stack."""
    bench = section(repo / "docs" / "benchmarks.md", "bench")
    targets = {cells[0]: cells[1:] for cells in rows(bench) if len(cells) == 4}
    lines = [
        "| stage | Zipf reads, req/s (p99 ≤ 50 ms) | ÷ the stage before | ÷ the naive stack |",
        "|---|---|---|---|",
    ]
    for cells in rows(bench):
        number = cells[0].split(".", 1)[0]
        if len(cells) == 11 and number.isdigit():
            n = int(number)
            before = targets.get(f"Zipf reads: stage {n} ÷ stage {n - 1}", ["–"])[0]
            lines.append(f"| {cells[0]} | {cells[1]} | {before} | {cells[9].strip('*')} |")
    if len(lines) == 2:
        lines.append("| (no `make bench` run yet) | – | – | – |")
    return "\n".join(lines) + (
        f"\n\nFrom `make bench` ({stamp(bench)}), on this machine. Each round measures every "
        "stage side by side; a ratio is the median of the rounds' ratios, and req/s each stage's "
        "median run, so the two may disagree when the machine's speed drifts between rounds."
    )


def refresh(repo: Path = REPO) -> None:
    """Rewrite the README's results box and the tutorial's staircase table from the docs'
    generated sections."""
    replace_section(repo / "README.md", "results", render(repo))
    replace_section(repo / "docs" / "tutorial.md", "stages", stages(repo))


if __name__ == "__main__":
    refresh()
