"""The GPU check's summary: every part's exit status and time, the environment, the gpu-marked tests (each failure
by name), search_step.py's lines and the NAS-Bench-201 ranking, in one ``check.json``."""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def tests(xml: Path) -> dict:
    """Counts and the failing tests' names (with the first line of each message) from pytest's JUnit XML."""
    if not xml.is_file():
        return {"ran": False}
    root = ET.parse(xml).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    failed = {}
    for case in suite.iter("testcase"):
        for kind in ("failure", "error"):
            el = case.find(kind)
            if el is not None:
                message = (el.get("message") or kind).splitlines()[0][:300]
                failed[f"{case.get('classname')}::{case.get('name')}"] = message
    return {"ran": True, "tests": int(suite.get("tests", 0)), "failures": int(suite.get("failures", 0)),
            "errors": int(suite.get("errors", 0)), "skipped": int(suite.get("skipped", 0)),
            "seconds": float(suite.get("time", 0)), "failed": failed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--tiny", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0)
    a = ap.parse_args(argv)
    env = _lines(a.work / "env.json")
    scale = a.out.with_name("nb201_scale.json")
    parts = _lines(a.work / "parts.jsonl")
    out = {"device": a.device, "rehearsal": bool(a.tiny), "seconds": a.seconds,
           "env": env[0] if env else None, "parts": parts, "gpu_tests": tests(a.work / "pytest.xml"),
           "search_step": _lines(a.work / "search_step.jsonl"),
           "nb201_scale": json.loads(scale.read_text()) if scale.is_file() else None,
           "ok": all(p.get("rc") == 0 for p in parts if not p.get("skipped"))}
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    failed = [p["part"] for p in parts if p.get("rc") not in (0, None)]
    skipped = [p["part"] for p in parts if p.get("skipped")]
    print(f"check: {len(parts)} parts in {a.seconds} s; failed: {', '.join(failed) or 'none'}; skipped: "
          f"{', '.join(skipped) or 'none'}; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
