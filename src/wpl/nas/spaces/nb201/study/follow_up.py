"""The replication a complete study calls for: each declared comparison that was neither resolved nor powered
(power at ``delta`` below the spec's ``power``) tested again on fresh seeds, as many as the report's "pairs for"
column says, in a new spec written before any of its runs."""

from __future__ import annotations

from dataclasses import replace

from wpl.errors import WplError
from wpl.stats import PAIRS_MOST

from .spec import Spec

RESOLVED = ("higher", "lower", "equivalent", "identical")


def why_not(c: dict, power: float) -> str:
    """Why comparison ``c`` (a row of the primary family) needs no follow-up, or ``""`` when it does."""
    if c["verdict"] in RESOLVED:
        return f"resolved ({c['verdict']})"
    pw = c.get("power_at_delta")
    if pw is None or pw != pw:  # NaN: too few pairs, or no spread, to say
        return f"{c['verdict']}: its power cannot be computed from {c['n']} pair(s)"
    if pw >= power:
        return f"powered ({pw:.2f} at its {c['n']} pairs) and {c['verdict']}: the answer stands"
    if c.get("pairs_needed") is None:
        return f"power {pw:.2f}: more than {PAIRS_MOST:,} pairs would be needed at the observed sd ({c['sd']:.3g})"
    return ""


def follow_up(spec: Spec, result: dict) -> tuple[Spec | None, list[str]]:
    """``(the follow-up spec or None, one line per declared comparison saying what it gets)`` from ``result`` (a
    complete study's analysis): fresh seeds after the study's last, the same flags, cells and endpoints, the arms
    the repeated comparisons use, and a description naming where its size came from."""
    if not result.get("complete"):
        raise WplError(f"{spec.name}: the study is interim ({result.get('runs_done', 0)} of "
                       f"{result.get('runs_expected', '?')} runs); a follow-up is sized from the complete study, "
                       "so that no look at part of it chooses its size")
    fam = result["comparisons"][spec.primary]
    lines, again = [], []
    for d, c in zip(spec.comparisons, fam, strict=True):
        if why := why_not(c, spec.power):
            lines.append(f"{d.name} ({d.a} − {d.b}): {why}; not repeated")
        else:
            again.append((d, c))
            lines.append(f"{d.name} ({d.a} − {d.b}): {c['verdict']}, power {c['power_at_delta']:.2f} at "
                         f"±{spec.delta:g} with {c['n']} pairs (sd {c['sd']:.3f}): {c['pairs_needed']} pairs give "
                         f"{spec.power:.0%}")
    if not again:
        return None, lines
    n = max(c["pairs_needed"] for _, c in again)
    first = max(spec.seeds) + 1
    names = {side for d, _ in again for side in (d.a, d.b)}
    names |= {spec.arm(a).source for a in names}
    which = ", ".join(f"{d.name} (sd {c['sd']:.3f}, {c['pairs_needed']} pairs)" for d, c in again)
    description = (
        f"A replication of {spec.name} (seeds {spec.seeds[0]}-{spec.seeds[-1]}, {len(fam)} comparisons under Holm), "
        f"declared from its complete report before any of its own runs. There, {which} had less than "
        f"{spec.power:.0%} power at ±{spec.delta:g} and no resolved answer; the pairs each needs for {spec.power:.0%} "
        f"power at the first study's strictest Holm level (alpha/{len(fam)}), with the paired sd it observed, size "
        f"this one: {n} fresh seeds ({first}-{first + n - 1}); the same flags, cells and endpoints, the arms those "
        f"comparisons use, each trained here; tested on its own and never pooled with {spec.name}.\n")
    out = replace(spec, name=f"{spec.name}_replication", description=description, trains=True,
                  seeds=tuple(range(first, first + n)),
                  arms=tuple(a for a in spec.arms if a.name in names),
                  comparisons=tuple(d for d, _ in again))
    return out, lines
