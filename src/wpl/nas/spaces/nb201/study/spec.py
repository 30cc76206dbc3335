"""A study's spec: a TOML file naming the runs' shared flags, the arms, the seeds, the cell samples, the endpoints
and the comparisons to test, declared before any run. Checked when read (one line naming the file and key); frozen
into the study's folder on first use, and a changed spec is refused there."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

try:  # Python ≥ 3.11
    import tomllib
except ModuleNotFoundError:  # 3.10: the same parser, as a package
    import tomli as tomllib

from wpl.errors import WplError
from wpl.nas.rank import MEASURES, METRIC_COLUMNS

ENDPOINTS = METRIC_COLUMNS
# flags the study sets itself for every run
OWN_FLAGS = ("random_seed", "log_dir", "comment", "search_strategy", "data_dir", "resume", "arch_stream", "dataset",
             "network_type", "load_path", "mode")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Cells:
    """A seeded sample of the benchmark's cells and how each is scored."""

    seed: int
    num: int
    unique: bool = True
    images: int = 1000
    batch_size: int = 250

    @property
    def batches(self) -> int:
        """Validation batches each cell is scored on."""
        return self.images // self.batch_size


@dataclass(frozen=True)
class Arm:
    """A trained supernet (``strategy`` and ``flags``), or another arm's supernet scored again (``score``) with
    ``weights`` = ``last`` or ``ema``; either ranks cells by their ``measure`` (``accuracy`` or ``loss``)."""

    name: str
    strategy: str = ""
    flags: tuple[str, ...] = ()
    score: str = ""
    weights: str = "last"
    measure: str = "accuracy"

    @property
    def trains(self) -> bool:
        """Whether this arm trains a supernet of its own."""
        return not self.score

    @property
    def source(self) -> str:
        """The arm whose supernet this arm scores."""
        return self.score or self.name


@dataclass(frozen=True)
class Comparison:
    """``a − b``, paired by seed."""

    name: str
    a: str
    b: str
    note: str = ""


@dataclass(frozen=True)
class Spec:
    """Everything a study runs and tests, as its file declares it."""

    name: str
    flags: tuple[str, ...]
    seeds: tuple[int, ...]
    cells: Cells
    arms: tuple[Arm, ...]
    comparisons: tuple[Comparison, ...]
    primary: str = "kendall_tau"
    secondary: tuple[str, ...] = ()
    alpha: float = 0.05
    power: float = 0.8
    delta: float = 0.04
    continuity: Cells | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)
    trains: bool = True  # False: every trained arm's run must already be in the work folder (another study's)

    def arm(self, name: str) -> Arm:
        """The arm called ``name``."""
        return next(a for a in self.arms if a.name == name)

    def to_json(self) -> dict:
        """Plain data (what is frozen and compared); ``trains`` only when false and an arm's ``measure`` only when
        it is not ``accuracy``, so that a study frozen before either existed reads the same."""
        data = json.loads(json.dumps(asdict(self)))
        if data["trains"]:
            del data["trains"]
        for arm in data["arms"]:
            if arm["measure"] == "accuracy":
                del arm["measure"]
        return data


def _seeds(value, where: str) -> tuple[int, ...]:
    if isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)):
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo <= hi:
            return tuple(range(lo, hi + 1))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        if len(set(value)) == len(value):
            return tuple(value)
    raise WplError(f"{where} seeds = {value!r}: must be a list of distinct integers or a range \"A-B\" (A <= B)")


def _take(table: dict, key: str, kind, where: str, default=None, required: bool = False):
    if key not in table:
        if required:
            raise WplError(f"{where}: missing {key} (a {kind.__name__ if isinstance(kind, type) else kind})")
        return default
    value = table[key]
    ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))) if isinstance(kind, type) \
        else kind(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise WplError(f"{where} {key} = {value!r}: must be a {kind.__name__ if isinstance(kind, type) else 'list'}")
    return value


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _cells(table, where: str) -> Cells:
    if not isinstance(table, dict):
        raise WplError(f"{where}: must be a table (seed, num, unique, images, batch_size)")
    unknown = set(table) - {"seed", "num", "unique", "images", "batch_size"}
    if unknown:
        raise WplError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (seed, num, unique, images, batch_size)")
    c = Cells(seed=_take(table, "seed", int, where, required=True), num=_take(table, "num", int, where, required=True),
              unique=_take(table, "unique", bool, where, True), images=_take(table, "images", int, where, 1000),
              batch_size=_take(table, "batch_size", int, where, 250))
    pool = 6466 if c.unique else 15625
    if not 2 <= c.num <= pool:
        raise WplError(f"{where} num = {c.num}: must be in 2..{pool} ({'non-isomorphic ' if c.unique else ''}cells)")
    if c.batch_size < 1 or c.images < c.batch_size or c.images % c.batch_size:
        raise WplError(f"{where} images = {c.images}, batch_size = {c.batch_size}: images must be a positive multiple "
                       "of batch_size")
    return c


def _flags(value, where: str) -> tuple[str, ...]:
    if not _strings(value) or any(not f.startswith("--") for f in value):
        raise WplError(f"{where} flags: must be a list of \"--name=value\" strings")
    for f in value:
        name = f[2:].split("=", 1)[0]
        if name in OWN_FLAGS:
            raise WplError(f"{where} flags: --{name} is set by the study for every run; remove it")
    return tuple(value)


def parse_spec(text: str, where: str) -> Spec:
    """The spec in ``text`` (TOML), checked; ``where`` names it in errors."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WplError(f"{where}: not valid TOML ({exc})") from exc
    known = {"name", "description", "flags", "seeds", "cells", "continuity", "arms", "comparisons", "endpoints",
             "alpha", "power", "delta", "trains"}
    if unknown := set(raw) - known:
        raise WplError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    name = _take(raw, "name", str, where, required=True)
    if not NAME.match(name):
        raise WplError(f"{where} name = {name!r}: letters, digits, '.', '_' and '-' only")
    arms_raw = _take(raw, "arms", dict, where, required=True)
    arms = []
    for arm_name, t in arms_raw.items():
        w = f"{where} [arms.{arm_name}]"
        if not NAME.match(arm_name):
            raise WplError(f"{w}: an arm's name is letters, digits, '.', '_' and '-' only")
        if not isinstance(t, dict) or (unknown := set(t) - {"strategy", "flags", "score", "weights", "measure"}):
            raise WplError(f"{w}: keys are strategy, flags (a trained arm) or score, weights (another arm's "
                           "supernet), and measure")
        score = _take(t, "score", str, w, "")
        weights = _take(t, "weights", str, w, "last")
        if weights not in ("last", "ema"):
            raise WplError(f"{w} weights = {weights!r}: must be last or ema")
        measure = _take(t, "measure", str, w, "accuracy")
        if measure not in MEASURES:
            raise WplError(f"{w} measure = {measure!r}: must be {' or '.join(MEASURES)} (what ranks a cell)")
        if score:
            if "strategy" in t or "flags" in t:
                raise WplError(f"{w}: an arm that scores another arm's supernet ({score}) has no strategy or flags")
            arms.append(Arm(arm_name, score=score, weights=weights, measure=measure))
            continue
        strategy = _take(t, "strategy", str, w, required=True)
        if strategy not in ("enas", "random"):
            raise WplError(f"{w} strategy = {strategy!r}: must be enas or random")
        arms.append(Arm(arm_name, strategy, _flags(t.get("flags", []), w), weights=weights, measure=measure))
    names = {a.name for a in arms}
    for a in arms:
        if a.score and (a.score not in names or not next(b for b in arms if b.name == a.score).trains):
            raise WplError(f"{where} [arms.{a.name}] score = {a.score!r}: must name a trained arm "
                           f"({', '.join(b.name for b in arms if b.trains)})")
    if len(arms) < 2:
        raise WplError(f"{where}: a study needs at least two arms")
    comps = []
    for i, t in enumerate(_take(raw, "comparisons", list, where, required=True)):
        w = f"{where} [[comparisons]] #{i + 1}"
        if not isinstance(t, dict):
            raise WplError(f"{w}: must be a table (name, a, b, note)")
        c = Comparison(_take(t, "name", str, w, required=True), _take(t, "a", str, w, required=True),
                       _take(t, "b", str, w, required=True), _take(t, "note", str, w, ""))
        for side in (c.a, c.b):
            if side not in names:
                raise WplError(f"{w} ({c.name}): no arm {side!r} (arms: {', '.join(sorted(names))})")
        if c.a == c.b:
            raise WplError(f"{w} ({c.name}): a and b are the same arm")
        comps.append(c)
    if not comps or len({c.name for c in comps}) != len(comps):
        raise WplError(f"{where}: comparisons must be declared, each with its own name")
    ends = _take(raw, "endpoints", dict, where, {})
    primary = _take(ends, "primary", str, f"{where} [endpoints]", "kendall_tau")
    secondary = tuple(_take(ends, "secondary", _strings, f"{where} [endpoints]", []))
    for e in (primary, *secondary):
        if e not in ENDPOINTS:
            raise WplError(f"{where} [endpoints]: {e!r} is not an endpoint ({', '.join(ENDPOINTS)})")
    alpha = _take(raw, "alpha", float, where, 0.05)
    power = _take(raw, "power", float, where, 0.8)
    for key, v in (("alpha", alpha), ("power", power)):
        if not 0 < v < 1:
            raise WplError(f"{where} {key} = {v}: must be in (0, 1)")
    delta = _take(raw, "delta", float, where, 0.04)
    if not delta > 0:
        raise WplError(f"{where} delta = {delta}: must be > 0 (the effect the design is powered for)")
    seeds = _seeds(raw.get("seeds"), where)
    if len(seeds) < 2:
        raise WplError(f"{where} seeds: at least two (the comparisons are paired by seed)")
    cont = raw.get("continuity")
    return Spec(name=name, description=_take(raw, "description", str, where, ""),
                flags=_flags(raw.get("flags", []), where), seeds=seeds,
                cells=_cells(raw.get("cells"), f"{where} [cells]"),
                arms=tuple(arms), comparisons=tuple(comps), primary=primary, secondary=secondary, alpha=alpha,
                power=power, delta=delta, continuity=None if cont is None else _cells(cont, f"{where} [continuity]"),
                trains=_take(raw, "trains", bool, where, True))


def read_spec(path: Path) -> Spec:
    """The spec file at ``path``, checked."""
    if not path.is_file():
        raise WplError(f"{path}: no such spec file (a TOML file; docs/study.md shows one)")
    return parse_spec(path.read_text(), str(path))


def freeze(spec: Spec, text: str, folder: Path) -> None:
    """On first use keep the spec in ``folder`` (``spec.toml`` as written, ``spec.json`` as read); later, refuse
    a spec that reads differently, in one line naming what changed."""
    from wpl.fileio import kept_or_changed, write_text

    if not (folder / "spec.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / "spec.toml", text)
    if changed := kept_or_changed(folder / "spec.json", spec.to_json()):
        raise WplError(f"{folder}: the study was started with another spec (changed: {', '.join(changed)}; frozen "
                       f"copy {folder / 'spec.toml'}); restore it, or start a new study with another --out")


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a TOML basic string


def _toml_key(s: str) -> str:
    return s if re.fullmatch(r"[A-Za-z0-9_-]+", s) else _toml_str(s)


def _toml_list(values) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def _toml_seeds(seeds: tuple[int, ...]) -> str:
    run = len(seeds) > 1 and seeds == tuple(range(seeds[0], seeds[-1] + 1))
    return f'"{seeds[0]}-{seeds[-1]}"' if run else str(list(seeds))


def _toml_cells(header: str, c: Cells) -> list[str]:
    return ["", f"[{header}]", f"seed = {c.seed}", f"num = {c.num}", f"unique = {str(c.unique).lower()}",
            f"images = {c.images}", f"batch_size = {c.batch_size}"]


def spec_toml(spec: Spec, comment: str = "") -> str:
    """``spec`` as a TOML file that :func:`parse_spec` reads back to the same spec, ``comment`` (lines) at its top."""
    text = spec.description.replace("\\", "\\\\").replace('"', '\\"')
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [f"name = {_toml_str(spec.name)}", f'description = """\n{text}"""', f"seeds = {_toml_seeds(spec.seeds)}",
              f"alpha = {spec.alpha!r}", f"power = {spec.power!r}", f"delta = {spec.delta!r}"]
    lines += [] if spec.trains else ["trains = false"]
    lines += ["flags = ["] + [f"  {_toml_str(f)}," for f in spec.flags] + ["]"]
    lines += _toml_cells("cells", spec.cells)
    lines += _toml_cells("continuity", spec.continuity) if spec.continuity else []
    for a in spec.arms:
        lines += ["", f"[arms.{_toml_key(a.name)}]"]
        lines += ([f"score = {_toml_str(a.score)}"] if a.score else
                  [f"strategy = {_toml_str(a.strategy)}", f"flags = {_toml_list(a.flags)}"])
        lines += [f"weights = {_toml_str(a.weights)}"] if a.weights != "last" else []
        lines += [f"measure = {_toml_str(a.measure)}"] if a.measure != "accuracy" else []
    for c in spec.comparisons:
        lines += ["", "[[comparisons]]", f"name = {_toml_str(c.name)}", f"a = {_toml_str(c.a)}",
                  f"b = {_toml_str(c.b)}"] + ([f"note = {_toml_str(c.note)}"] if c.note else [])
    lines += ["", "[endpoints]", f"primary = {_toml_str(spec.primary)}", f"secondary = {_toml_list(spec.secondary)}"]
    return "\n".join(lines) + "\n"
