"""Check BENCHMARKS.md's summary table against its committed result files, number by number and verdict by verdict.

Usage: python tools/check_benchmarks.py [BENCHMARKS.md]   (exit 1, listing each mismatch)

``benchmarks/summary.toml`` keys every row (by the start of its claim): the numbers of the "ours" column, in the
order written, each read from its key in the row's result file (the last column: ``benchmarks/results/<file>``,
or a path under ``benchmarks/`` such as ``studies/<study>/study.json``)
and compared at the number's own precision, as written or as a percentage of a fraction ("98.2%" matches
0.98213, "−0.18" matches -0.1816, "10⁴" is 10000); and each "label: word" segment of the "met?" column (segments
split by ";", a segment without a label has the label "") against the value its key computes: a boolean is "yes" /
"no" / "n/a", a study verdict is its own word, "A OP B" compares two keys or numbers. Numbers inside a metric's
name ("P@5%", "best-5", "top-1") are labels, not results.
"""

from __future__ import annotations

import json
import operator
import re
import sys
from pathlib import Path

try:  # Python ≥ 3.11
    import tomllib
except ModuleNotFoundError:  # 3.10: the same parser, as a package
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
NUMBER = re.compile(r"(?<![\w.@])(?<!\w-)(?<!\w−)([−+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)([⁰¹²³⁴⁵⁶⁷⁸⁹]*)(%?)")
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
WORDS = {True: "yes", False: "no", None: "n/a"}


def numbers(cell: str) -> list[tuple[str, float, int, bool]]:
    """(text, value, decimals, is a percentage) of each result number written in a table cell."""
    out = []
    for text, sup, pct in NUMBER.findall(cell):
        clean = text.replace("−", "-").replace(",", "")
        decimals = len(clean.split(".")[1]) if "." in clean else 0
        value = float(clean) ** int(sup.translate(SUPERSCRIPT)) if sup else float(clean)
        out.append((text + sup + pct, value, 0 if sup else decimals, bool(pct)))
    return out


def found(value: float, decimals: int, pct: bool, pool: list[float]) -> bool:
    """Whether some number of ``pool`` rounds to ``value`` (or, for a percentage, 100× it does)."""
    half = 0.5 * 10 ** -decimals + 1e-9
    return any(abs(scaled - value) <= half for v in pool for scaled in (v, 100 * v))


def summary_rows(text: str) -> list[list[str]]:
    """The cells of the summary table (the first table after the "## Summary" heading)."""
    body = text.split("## Summary", 1)[1].splitlines()
    end = next((i for i, line in enumerate(body) if line.startswith("## ")), len(body))
    rows = [line for line in body[:end] if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows[2:]]


def lookup(data: dict, key: str):
    """The value at ``key`` (dotted; list items by index; ``len:``; ``FILE.json:`` another result file)."""
    if re.match(r"^[\w.-]+\.json:", key):
        name, key = key.split(":", 1)
        data = json.loads((RESULTS / name).read_text())
    length = key.startswith("len:")
    node = data
    for part in key.removeprefix("len:").split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return len(node) if length else node


def operand(data: dict, text: str) -> float:
    """A number, a key's value, or ``N * KEY``."""
    if "*" in text:
        factor, key = (t.strip() for t in text.split("*", 1))
        return float(factor) * float(lookup(data, key))
    try:
        return float(text)
    except ValueError:
        return float(lookup(data, text))


def computed(data: dict, rule: str):
    """What a met? rule evaluates to: a boolean, a verdict word or None."""
    for sym in (">=", "<=", ">", "<"):
        if f" {sym} " in rule:
            left, right = rule.split(f" {sym} ", 1)
            return OPS[sym](operand(data, left.strip()), operand(data, right.strip()))
    return lookup(data, rule)


def check_row(cells: list[str], spec: dict) -> list[str]:
    """The mismatches of one summary row with its keys."""
    claim, ours, met, source = cells[0], cells[2], cells[3], cells[-1].strip("` ")
    result = ROOT / "benchmarks" / source if "/" in source else RESULTS / source
    if not result.is_file():
        return [f"{claim}: result file {result} does not exist"]
    data = json.loads(result.read_text())
    problems = []
    written, keys = numbers(ours), spec.get("numbers", [])
    if len(written) != len(keys):
        problems.append(f"{claim}: {len(written)} numbers written, {len(keys)} keyed in benchmarks/summary.toml")
    for (text, value, decimals, pct), key in zip(written, keys):
        try:
            if key.startswith("text:"):
                pool = [v for _, v, _, _ in numbers(str(lookup(data, key[5:])))]
            else:
                pool = [float(lookup(data, key))]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            problems.append(f"{claim}: {text}: key {key} not in {source} ({exc!r})")
            continue
        if not found(value, decimals, pct, pool):
            problems.append(f"{claim}: {text} is not {key} ({pool[0] if len(pool) == 1 else pool}) in {source}")
    rules = spec.get("met", {})
    seen = set()
    for segment in (s.strip() for s in met.split(";") if s.strip()):
        label, word = (segment.split(":", 1) if ":" in segment else ("", segment))
        label, word = label.strip(), (word.split() or [""])[0].strip(".,()")
        if label not in rules:
            problems.append(f"{claim}: met? segment {segment!r} has no rule in benchmarks/summary.toml")
            continue
        seen.add(label)
        try:
            value = computed(data, rules[label])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            problems.append(f"{claim}: {label!r}: rule {rules[label]!r} fails ({exc!r})")
            continue
        expected = WORDS.get(value, value) if isinstance(value, bool) or value is None else str(value)
        if word != expected:
            problems.append(f"{claim}: met? says {word!r} for {label!r}, the result file computes {expected!r}")
    for label in set(rules) - seen:
        problems.append(f"{claim}: the met? column has no segment {label!r} (benchmarks/summary.toml keys it)")
    return problems


def check(path: Path, keys: Path | None = None) -> list[str]:
    """Every mismatch between the summary table and its keyed result files, one line each."""
    spec = tomllib.loads((keys or ROOT / "benchmarks" / "summary.toml").read_text())
    rows = spec.get("row", [])
    problems = []
    for cells in summary_rows(path.read_text()):
        match = [r for r in rows if cells[0].startswith(r["claim"])]
        if not match:
            problems.append(f"{cells[0]}: no row keys it in benchmarks/summary.toml")
            continue
        problems += check_row(cells, match[0])
    return problems


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "BENCHMARKS.md"
    problems = check(path)
    for p in problems:
        print(p)
    verdict = "every summary number and verdict matches its result file" if not problems else \
        f"{len(problems)} mismatch(es)"
    print(f"{path.name}: {verdict}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
