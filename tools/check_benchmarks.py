"""Check that every number in BENCHMARKS.md's summary table comes from its committed result file.

Usage: python tools/check_benchmarks.py [BENCHMARKS.md]   (exit 1, listing each number not found)

The summary table's last column names each row's result JSON (``benchmarks/results/<file>``). A number in
the "ours" column counts as found when some number in that JSON (any value, at any depth, or a list's
length) equals it at the number's own precision, as written or as a percentage of a fraction: "98.2%"
matches 0.98213, "−0.18" matches -0.1816.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"(?<![\w.])([−+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(%?)")


def leaves(value) -> list[float]:
    """Every number in a JSON value, and the length of every list in it."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [float(len(value))] + [x for v in value for x in leaves(v)]
    return []


def numbers(cell: str) -> list[tuple[str, float, int, bool]]:
    """(text, value, decimals, is a percentage) of each number written in a table cell."""
    out = []
    for text, pct in NUMBER.findall(cell):
        clean = text.replace("−", "-").replace(",", "")
        decimals = len(clean.split(".")[1]) if "." in clean else 0
        out.append((text + pct, float(clean), decimals, bool(pct)))
    return out


def found(value: float, decimals: int, pct: bool, pool: list[float]) -> bool:
    """Whether some number of ``pool`` rounds to ``value`` (or, for a percentage, 100× it does)."""
    half = 0.5 * 10 ** -decimals + 1e-9
    return any(abs(scaled - value) <= half for v in pool for scaled in (v, 100 * v))


def summary_rows(text: str) -> list[list[str]]:
    """The cells of the summary table (the first table after the "## Summary" heading)."""
    body = text.split("## Summary", 1)[1]
    rows = [line for line in body.splitlines() if line.startswith("|")]
    end = next((i for i, line in enumerate(body.splitlines()) if line.startswith("## ")), None)
    if end is not None:
        rows = [line for line in body.splitlines()[:end] if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows[2:]]


def check(path: Path) -> list[str]:
    """The numbers of the summary table not found in their row's result file, one line each."""
    problems = []
    for cells in summary_rows(path.read_text()):
        claim, ours, source = cells[0], cells[2], cells[-1].strip("` ")
        result = ROOT / "benchmarks" / "results" / source
        if not result.is_file():
            problems.append(f"{claim}: result file {result} does not exist")
            continue
        pool = leaves(json.loads(result.read_text()))
        for text, value, decimals, pct in numbers(ours):
            if not found(value, decimals, pct, pool):
                problems.append(f"{claim}: {text} is not in {source}")
    return problems


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "BENCHMARKS.md"
    problems = check(path)
    for p in problems:
        print(p)
    verdict = "every summary number found in its result file" if not problems else f"{len(problems)} not found"
    print(f"{path.name}: {verdict}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
