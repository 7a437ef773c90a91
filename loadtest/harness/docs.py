"""Generated sections of the docs: each command rewrites its own section and nothing else.

A section sits between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->``; the text around
it is written by hand and kept. A section that is not there yet is added at the end.
"""

from __future__ import annotations

from pathlib import Path


def replace_section(doc: Path, name: str, body: str) -> None:
    """Put BODY into DOC's section NAME."""
    begin, end = f"<!-- generated: {name} -->", f"<!-- end: {name} -->"
    text = doc.read_text() if doc.exists() else ""
    block = f"{begin}\n\n{body.strip()}\n\n{end}"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1]
        doc.write_text(f"{before}{block}{after}")
    else:
        doc.write_text(f"{text.rstrip()}\n\n{block}\n")
