"""docs/tutorial: the notebook runs from top to bottom (on a sample of the data), and the
.ipynb holds the same cells as the jupytext .md it is made from."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_notebook_is_the_markdown_file() -> None:
    import jupytext
    import nbformat

    text = jupytext.read(DOCS / "tutorial.md")
    book = nbformat.read(DOCS / "tutorial.ipynb", as_version=4)
    pairs = [(c.cell_type, c.source) for c in text.cells]
    assert pairs == [(c.cell_type, c.source) for c in book.cells], (
        "docs/tutorial.ipynb differs from docs/tutorial.md: run jupytext --sync docs/tutorial.md")


def test_the_tutorial_runs(tibetan_path: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    import jupytext
    from nbclient import NotebookClient

    monkeypatch.setenv("NUMERAL_DATA", str(tibetan_path.resolve()))  # the kernel runs elsewhere
    monkeypatch.setenv("NUMERAL_TUTORIAL_SAMPLE", "2500")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = jupytext.read(DOCS / "tutorial.md")
    NotebookClient(book, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(out.get("text", "") for cell in book.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []))
    assert "identical up to rounding: True" in printed  # zero initialisation's failure
    assert "identical units: False" in printed
    assert "relative error, finite differences vs back-propagation" in printed
    differences = [float(line.rsplit(" ", 1)[1]) for line in printed.splitlines()
                   if "largest difference:" in line]
    assert len(differences) == 4 and max(differences) < 1e-12  # by hand == numeral
