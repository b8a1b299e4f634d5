"""docs/course: every chapter runs from top to bottom (on a sample of the data), its notebook
holds the same cells as the jupytext Markdown file it is made from, and what the committed
notebook shows is what the chapter prints now.

A chapter states its checked facts in words and asserts them in its code, so a change that
breaks one fails the run. The committed outputs were made on the whole dataset and another
machine, so they are compared with the fresh run's with every number masked: the words, the
lines and the figures must be the same, the digits may differ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

COURSE = Path(__file__).resolve().parents[1] / "docs" / "course"
CHAPTERS = sorted(COURSE.glob("[0-9][0-9]-*.md"))
PATH = re.compile(r"(?:[\w.~-]*/)+[\w.-]*")  # the data's and temporary folders' paths
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?%?", re.IGNORECASE)
SAMPLE = "2000"


def shown(cell: Any) -> list[str]:
    """What a code cell shows, numbers and paths masked: its printed lines, and [figure] for
    each image."""
    lines: list[str] = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if "image/png" in data or "image/svg+xml" in data:
            lines.append("[figure]")
            continue
        text = out.get("text") or data.get("text/plain") or out.get("evalue") or ""
        text = "".join(text) if isinstance(text, list) else text
        for line in text.splitlines():
            line = " ".join(NUMBER.sub("#", PATH.sub("<path>", line)).split())
            line = re.sub(r"([\[(]) ", r"\1", re.sub(r" ([\])])", r"\1", line))  # array padding
            if line and not line.startswith("<Figure"):
                lines.append(line)
    return lines


def test_there_are_eight_chapters_in_order() -> None:
    assert [p.name[:2] for p in CHAPTERS] == [f"{i:02d}" for i in range(1, 9)], CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_each_notebook_is_its_markdown_file(chapter: Path) -> None:
    import jupytext
    import nbformat

    text = jupytext.read(chapter)
    book = nbformat.read(chapter.with_suffix(".ipynb"), as_version=4)
    assert [(c.cell_type, c.source) for c in text.cells] == \
        [(c.cell_type, c.source) for c in book.cells], (
        f"{chapter.with_suffix('.ipynb').name} differs from {chapter.name}: run "
        f"jupytext --to ipynb --execute {chapter.relative_to(COURSE.parents[1])}")
    executed = [c for c in book.cells if c.cell_type == "code"]
    assert executed and all(c.get("execution_count") for c in executed), \
        f"{chapter.with_suffix('.ipynb').name} is not executed: its outputs must be committed"
    errors = [o for c in executed for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{chapter.name}'s committed outputs hold an error: {errors[0]['ename']}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapter_runs_and_shows_what_its_committed_notebook_shows(
        chapter: Path, tibetan_path: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("NUMERAL_DATA", str(tibetan_path.resolve()))  # the kernel runs elsewhere
    monkeypatch.setenv("NUMERAL_COURSE_SAMPLE", SAMPLE)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = jupytext.read(chapter)
    NotebookClient(book, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    committed = nbformat.read(chapter.with_suffix(".ipynb"), as_version=4)
    pairs = zip([c for c in book.cells if c.cell_type == "code"],
                [c for c in committed.cells if c.cell_type == "code"], strict=True)
    for i, (fresh, old) in enumerate(pairs):
        assert shown(fresh) == shown(old), (
            f"{chapter.name}, code cell {i + 1}: the committed outputs no longer match what it "
            f"prints (numbers masked); run jupytext --to ipynb --execute on it")
