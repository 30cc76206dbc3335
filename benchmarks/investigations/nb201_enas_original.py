"""NAS-Bench-201, ENAS: why the original's WPL (whose penalty is exactly 0 here) ranks better than plain.

Usage: python -m benchmarks.investigations.nb201_enas_original --data_dir DIR [--seeds 0,1,2] [--work_dir W]

reproduce_nb201.py's ENAS runs, rebuilt per seed: the plain first epoch, then 3 epochs per arm, ranked on the
comparison's 200 cells (sample seed 0, 1,000 validation images). Arms:
- ``plain``: reproduce_nb201.py's plain arm (its τ is compared with the committed one: the same machine and code
  give the same number);
- ``skip4``: plain with ``--valid_skip_every=4`` — the validation stream the controller's rewards read advances one
  batch after every 4th shared step, as the original's validation Fisher pass (``--fisher_every=4``) moves it. The
  test ``test_the_originals_zero_penalty_under_enas_is_plain_with_its_reward_batches`` shows it trains the
  original's supernet and controller bit for bit, so its τ is compared with the committed original's;
- ``full``: plain with ``--valid_size=4992`` (39 × 128): no reward ever reads a short batch. With 5,000 validation
  images plain's stream reads images 4,992–4,999 alone (8 images, batch-statistics BN over 8) once per epoch; the
  original's reads 72 there. Its own plain first epoch (the split differs by 8 images).
Writes results/nb201_enas_original.json: per seed and arm τ, the controller's last-epoch entropy (its maximum,
uniform sampling, is 6·ln 5 = 9.657) and reward, and how many of the architectures plain and skip4 trained are
the same (every 10th architecture is logged in forgetting.csv), per epoch.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from benchmarks.lib.branching import Branches, events
from benchmarks.lib.common import RESULTS, paired_diff, parser, seeds
from benchmarks.reproduce.nb201 import FLAGS, ranked
from wpl.fileio import write_json

ARMS = {"plain": ("5000", ["--use_wpl=False"]), "skip4": ("5000", ["--use_wpl=False", "--valid_skip_every=4"]),
        "full": ("4992", ["--use_wpl=False"])}
COMMITTED = RESULTS / "reproduce_nb201_seeds"


def same_archs(a: Path, b: Path) -> dict[str, float]:
    """Per epoch, the share of logged training architectures (every 10th) that two runs have in common."""
    rows = [list(csv.DictReader((d / "forgetting.csv").open())) for d in (a, b)]
    out: dict[str, list[int]] = {}
    for x, y in zip(*rows, strict=True):
        out.setdefault(x["epoch"], []).append(int(x["arch"] == y["arch"] and x["step"] == y["step"]))
    return {e: sum(v) / len(v) for e, v in out.items()}


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--report_only", action="store_true", help="summarise the finished runs only (no training)")
    args = ap.parse_args()
    work = Path(args.work_dir or Path.home() / "runs" / "enas_original")
    base = [*FLAGS, "--shared_max_step=2500", f"--data_dir={args.data_dir}", "--search_strategy=enas"]
    studies = {v: Branches([*base, f"--valid_size={v}"], work / f"valid{v}", 1, 3, dataset="cifar10")
               for v in ("5000", "4992")}
    out = {}
    for s in seeds(args, "0,1,2"):
        committed = json.loads((COMMITTED / f"seed{s}.json").read_text())
        row = {"committed_plain": committed["enas-plain"]["kendall_tau"],
               "committed_original": committed["enas-original"]["kendall_tau"]}
        for arm, (valid, flags) in ARMS.items():
            if args.report_only and not (studies[valid].run_dir(s, arm) / "summary.json").exists():
                row[arm] = None
                continue
            d = studies[valid].variant(s, arm, flags)
            ctrl = [e for e in events(d, "controller") if e["epoch"] == 3]
            row[arm] = {**ranked(d, 200, 4, d.parent / f"{arm}-rank.log"),
                        "entropy_last_epoch": sum(e["entropy"] for e in ctrl) / max(len(ctrl), 1),
                        "reward_last_epoch": sum(e["reward"] for e in ctrl) / max(len(ctrl), 1)}
        row["same_archs_plain_skip4"] = same_archs(studies["5000"].run_dir(s, "plain"),
                                                   studies["5000"].run_dir(s, "skip4"))
        out[s] = row
        print(s, {k: (v.get("kendall_tau") if isinstance(v, dict) else v) for k, v in row.items()}, flush=True)
    taus = {a: [r[a]["kendall_tau"] if r[a] else None for r in out.values()] for a in ARMS}
    payload = {"command": "python " + " ".join(sys.argv), "per_seed": out,
               "skip4_minus_plain": paired_diff(taus["skip4"], taus["plain"]),
               "full_minus_plain": paired_diff(taus["full"], taus["plain"])}
    print(f"wrote {write_json(Path(args.output_dir) / 'nb201_enas_original.json', payload)}")
    print(json.dumps({k: v for k, v in payload.items() if k.endswith("plain")}, indent=1))


if __name__ == "__main__":
    main()
