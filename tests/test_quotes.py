"""tools/quotes.py: a doc's quote of a generated report is checked word for word, refreshed on request, and refused
while the report is interim."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = """# Study toy

intro

## Comparisons: Kendall τ (primary)

| H1 | +0.010 | higher |

### detail

kept: a lower heading stays inside

## Comparisons: P@5% (secondary)

| H1 | +0.02 | not resolved |
"""


def _tool():
    spec = importlib.util.spec_from_file_location("quotes", ROOT / "tools" / "quotes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _repo(tmp_path: Path, body: str, report: str = REPORT) -> Path:
    (tmp_path / "studies").mkdir(parents=True)
    (tmp_path / "studies" / "report.md").write_text(report)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "Before.\n\n<!-- quote studies/report.md#Comparisons: Kendall τ -->\n" + body + "<!-- /quote -->\n\nAfter.\n")
    return tmp_path


def test_a_quote_must_be_its_section_word_for_word_and_write_refreshes_it(tmp_path) -> None:
    q = _tool()
    want = "| H1 | +0.010 | higher |\n\n### detail\n\nkept: a lower heading stays inside"
    root = _repo(tmp_path, want + "\n")
    assert q.check(root) == []
    root = _repo(tmp_path / "stale", "| H1 | +0.011 | higher |\n")
    (problem,) = q.check(root)
    assert problem.startswith("docs/page.md: quote of studies/report.md#Comparisons: Kendall τ differs")
    assert "tools/quotes.py --write" in problem
    assert q.check(root, write=True)[0].endswith("(rewritten)") and q.check(root) == []
    page = (root / "docs" / "page.md").read_text()
    assert page.startswith("Before.\n\n<!-- quote ") and page.endswith("<!-- /quote -->\n\nAfter.\n") and want in page


def test_an_interim_report_or_a_missing_section_is_named_never_quoted(tmp_path) -> None:
    q = _tool()
    interim = REPORT.replace("intro", "**Interim: 3 of 10 runs; the verdicts below are not final.**")
    root = _repo(tmp_path, "old\n", interim)
    (problem,) = q.check(root, write=True)
    assert "studies/report.md is an interim report" in problem
    assert "old\n<!-- /quote -->" in (root / "docs" / "page.md").read_text()  # left as it was
    root = _repo(tmp_path / "other", "x\n", REPORT.replace("Kendall τ", "Spearman"))
    assert "no heading starts with 'Comparisons: Kendall τ'" in q.check(root)[0]


def test_the_repository_quotes_are_current() -> None:
    assert _tool().check(ROOT) == []
