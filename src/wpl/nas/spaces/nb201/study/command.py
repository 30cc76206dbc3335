"""``wpl study SPEC.toml``: run (or continue) a paired study of search settings against NAS-Bench-201's truth, one
supernet at a time, and write its report."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from wpl.errors import WplError
from wpl.flags import StrictParser, str2bool


def cmd_study(argv: Sequence[str]) -> int:
    """``wpl study``: the runs a spec declares, resumed where they stopped; ``study.json``, ``report.md``, figures."""
    from wpl.progress import bar

    from .report import write_report
    from .runs import (
        Diverged,
        cells_scored,
        check_arm_flags,
        failed_record,
        failed_source,
        record_path,
        score,
        time_left,
        train,
    )
    from .spec import freeze, read_spec

    p = StrictParser(prog="wpl study", epilog="example: wpl study benchmarks/studies/confirmatory.toml --data_dir "
                     "~/data", description="A paired study of search settings (arms) against NAS-Bench-201's "
                     "ground truth, with its comparisons declared in the spec before any run: per arm mean ± sd of "
                     "the ranking metrics, per comparison the paired interval, Holm-adjusted p, the smallest "
                     "detectable effect and a computed verdict (docs/study.md)")
    p.add_argument("spec", help="the study's TOML spec")
    p.add_argument("--data_dir", default="", help="the folder holding cifar10/ (needed while runs remain)")
    p.add_argument("--out", default="", help="the study's folder: its frozen spec, one record per run (commit "
                   "them), study.json, report.md, figures (default: beside the spec, named after the study)")
    p.add_argument("--work_dir", default="", help="the search runs (checkpoints; scratch; default OUT/work)")
    p.add_argument("--max_runs", type=int, default=0, help="stop after this many runs trained or scored (0: all)")
    p.add_argument("--report_only", type=str2bool, default=False, help="only recompute the report from the records")
    p.add_argument("--follow_up", default="", help="write to this new TOML file the replication a complete study "
                   "calls for (its unresolved, underpowered comparisons on fresh seeds, as many as the report's "
                   "\"pairs for\" column says); runs nothing")
    args = p.parse_args(argv)
    if args.max_runs < 0:
        raise WplError(f"--max_runs={args.max_runs}: must be >= 0 (0: every remaining run)")
    spec_path = Path(args.spec)
    spec = read_spec(spec_path)
    out = Path(args.out) if args.out else spec_path.parent / spec.name
    work = Path(args.work_dir) if args.work_dir else out / "work"
    if args.follow_up:
        return _write_follow_up(spec, spec_path, out, Path(args.follow_up))
    check_arm_flags(spec, spec_path)
    command = (f"wpl study {shlex.quote(str(spec_path))} --data_dir DIR"
               + (f" --out {shlex.quote(args.out)}" if args.out else ""))
    todo = [(s, a) for s in spec.seeds for a in spec.arms if not record_path(out, s, a.name).exists()]
    runs_now = bool(todo) and not args.report_only
    if runs_now:  # what remains needs the data
        if not args.data_dir:
            raise WplError(f"--data_dir: {len(todo)} run(s) remain; name the folder holding cifar10/")
        if not (Path(args.data_dir) / "cifar10").is_dir():
            raise WplError(f"--data_dir={args.data_dir}: no cifar10/ there (../shared/data/cifar10/get "
                           f"{args.data_dir}/cifar10 makes it)")
    freeze(spec, spec_path.read_text(), out)  # before any run; a changed spec is refused here
    if not args.out and not (out / ".gitignore").exists():
        (out / ".gitignore").write_text("work/\n")
    if runs_now:
        total = len(spec.seeds) * len(spec.arms)
        limit = args.max_runs or len(todo)
        left = time_left(spec, out, todo[:limit])
        print(f"study {spec.name}: {total - len(todo)} of {total} runs done; {min(limit, len(todo))} this time; "
              f"runs in {work}" + (f"; {_duration(left)} left at the recorded runs' pace" if left else ""),
              flush=True)
        with bar(total=total, initial=total - len(todo), desc="study", unit="run", dynamic_ncols=True) as b:
            for k, (seed, arm) in enumerate(todo[:limit]):
                t0 = time.time()
                left = time_left(spec, out, todo[k:limit])
                eta = f" (≈ {_duration(left)} left)" if left else ""
                b.set_postfix_str(f"seed {seed} {arm.name}: training{eta}" if arm.trains
                                  else f"seed {seed} {arm.name}{eta}")
                try:
                    if arm.trains:
                        train(spec, arm, seed, work, args.data_dir)
                    elif (why := failed_source(out, seed, arm)) is not None:
                        raise Diverged(why)
                    b.set_postfix_str(f"seed {seed} {arm.name}: scoring {cells_scored(spec)} cells{eta}")
                    score(spec, arm, seed, work, out, args.data_dir)
                except Diverged as exc:  # a result of the arm: recorded, its pairs left out of the statistics
                    failed_record(spec, arm, seed, out, str(exc))
                    b.write(f"seed {seed} {arm.name}: diverged ({exc})")
                b.update(1)
                b.write(f"seed {seed} {arm.name}: {time.time() - t0:.0f} s")
    r, md = write_report(spec, out, command)
    sys.stdout.write(md)
    print(f"wrote {out / 'study.json'}, {out / 'report.md'}" + (" (interim)" if not r["complete"] else ""))
    return 0


def _write_follow_up(spec, spec_path: Path, out: Path, path: Path) -> int:
    """``--follow_up``: the replication spec, from the complete study's records; nothing run, nothing overwritten."""
    from wpl.fileio import write_text

    from .follow_up import follow_up
    from .report import analyse
    from .spec import freeze, spec_toml

    if path.exists():
        raise WplError(f"--follow_up={path}: exists; a declared spec is never overwritten (name a new file)")
    if not (out / "spec.json").exists():
        raise WplError(f"{out}: no records of study {spec.name} there; run wpl study {spec_path} first (or name "
                       "its folder with --out)")
    freeze(spec, spec_path.read_text(), out)  # the records are this spec's: a changed one is refused
    new, lines = follow_up(spec, analyse(spec, out))
    print("\n".join(lines))
    if new is None:
        print(f"{spec.name}: no comparison calls for a follow-up; nothing written")
        return 0
    write_text(path, spec_toml(new, f"Written by `wpl study {out / 'spec.toml'} --follow_up {path}`: commit it "
                                    "before its first run."))
    print(f"wrote {path}: {new.name}, seeds {new.seeds[0]}-{new.seeds[-1]} ({len(new.seeds)}), arms "
          f"{', '.join(a.name for a in new.arms)}, comparisons {', '.join(c.name for c in new.comparisons)}; "
          f"commit it, then `wpl study {path} --data_dir DIR`")
    return 0


def _duration(seconds: float) -> str:
    """``seconds`` as hours (from one hour), minutes (from one minute) or seconds."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
