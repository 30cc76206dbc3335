"""Keep the docs' quotes of generated reports word for word what the reports say.

Usage: python tools/quotes.py [--write]   (check: exit 1, listing each stale quote; --write: refresh them)

A quote in BENCHMARKS.md, README.md or docs/**/*.md is a block

    <!-- quote benchmarks/studies/nb201_confirmatory/report.md#Comparisons: Kendall τ -->
    ...the section's text...
    <!-- /quote -->

whose text must be the named section of the named file (a path from the repository's root): the lines after the
heading that starts with the text after ``#``, up to the next heading of the same or a higher level, blank lines at
either end left out. A report that still says "Interim" cannot be quoted: its verdicts are not final.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from wpl.fileio import write_text  # noqa: E402
from wpl.nas.spaces.nb201.study.report import INTERIM  # noqa: E402

BLOCK = re.compile(r"^<!-- quote (?P<src>[^#\s]+)#(?P<heading>[^\n]*?) -->\n(?P<body>.*?)^<!-- /quote -->$",
                   re.M | re.S)


def docs(root: Path) -> list[Path]:
    """The Markdown files that may quote: BENCHMARKS.md, README.md and everything under docs/."""
    tops = [p for p in (root / "BENCHMARKS.md", root / "README.md") if p.exists()]
    return tops + sorted((root / "docs").rglob("*.md"))


def section(root: Path, src: str, heading: str) -> str:
    """The text under ``heading`` in ``root/src`` (ValueError naming what is missing or not quotable)."""
    path = root / src
    if not path.is_file():
        raise ValueError(f"{src}: no such file")
    lines = path.read_text(encoding="utf-8").splitlines()
    if any(line.startswith(INTERIM) for line in lines):
        raise ValueError(f"{src} is an interim report: its verdicts are not final, so it is not quoted yet")
    heads = [(i, len(m.group(1))) for i, line in enumerate(lines) if (m := re.match(r"(#+) ", line))]
    start = next(((i, level) for i, level in heads if lines[i][level + 1:].startswith(heading)), None)
    if start is None:
        raise ValueError(f"{src}: no heading starts with {heading!r}")
    i, level = start
    end = next((j for j, lv in heads if j > i and lv <= level), len(lines))
    return "\n".join(lines[i + 1:end]).strip("\n")


def refresh(root: Path, path: Path, write: bool) -> list[str]:
    """The stale or broken quotes of ``path``, one line each; with ``write``, the stale ones rewritten in place."""
    text, problems = path.read_text(encoding="utf-8"), []

    def fresh(m: re.Match) -> str:
        name = f"{path.relative_to(root)}: quote of {m['src']}#{m['heading']}"
        try:
            want = section(root, m["src"], m["heading"])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            return m.group(0)
        if m["body"].strip("\n") != want:
            problems.append(f"{name} differs from it" + (" (rewritten)" if write else
                                                          "; run python tools/quotes.py --write"))
        return f"<!-- quote {m['src']}#{m['heading']} -->\n{want}\n<!-- /quote -->"

    new = BLOCK.sub(fresh, text)
    if write and new != text:
        write_text(path, new)
    return problems


def check(root: Path = ROOT, write: bool = False) -> list[str]:
    """Every stale or broken quote under ``root``, one line each."""
    return [p for path in docs(root) for p in refresh(root, path, write)]


def main() -> int:
    write = "--write" in sys.argv[1:]
    problems = check(ROOT, write)
    for p in problems:
        print(p)
    broken = [p for p in problems if not p.endswith("(rewritten)")]
    print(f"quotes: {'every quote is its source word for word' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
