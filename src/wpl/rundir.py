"""A run's folder: the one place that knows the names of the files a search or a final training writes.

The search, the final training, the reports (``wpl compare``, ``plot``, ``runs``), ``wpl rank``, ``wpl gif`` and
the studies reach a run's files through :class:`RunDir`, so the folder's layout is written down once:

    RUN/config.json            the run's flags                 RUN/checkpoint.pt (.prev.pt)  the latest checkpoint
    RUN/metrics.jsonl          one event per line              RUN/checkpoint_epoch_XXX.pt   kept copies
    RUN/forgetting.csv         one row per scored architecture  RUN/summary.json             written when it ends
    RUN/networks/NAME.json     derived cells (and .dot, .png)  RUN/tensorboard/             TensorBoard events
    RUN/test.json, test_NAME.json   --mode=test                RUN/rank*.json (_ema, _loss)  wpl rank (NB201)
    RUN/final/                 the derived cell trained from scratch (a run folder itself, with best.pt)
    RUN/cells.gif, forgetting.png, fisher.png   the figures wpl gif and wpl plot draw by default
"""

from __future__ import annotations

import json
from pathlib import Path

# the files a new run replaces when it starts over in an existing folder (a resume cuts them back instead)
SEARCH_OUTPUTS = ("summary.json", "metrics.jsonl", "forgetting.csv")
FINAL_OUTPUTS = ("summary.json", "metrics.jsonl", "best.pt")


class RunDir:
    """The files of the run in ``path`` (nothing is read or created until asked)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        """The run's name (its folder's)."""
        return self.path.name

    # ---- the files -----------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        """The run's flags (``config.json``)."""
        return self.path / "config.json"

    @property
    def checkpoint(self) -> Path:
        """The latest checkpoint."""
        return self.path / "checkpoint.pt"

    def epoch_checkpoint(self, epoch: int) -> Path:
        """The copy kept at ``epoch``."""
        return self.path / f"checkpoint_epoch_{epoch:03d}.pt"

    def epoch_checkpoints(self) -> list[Path]:
        """The kept copies, oldest first."""
        return sorted(self.path.glob("checkpoint_epoch_*.pt"))

    @property
    def summary(self) -> Path:
        """What the run wrote when it ended (``summary.json``)."""
        return self.path / "summary.json"

    @property
    def metrics(self) -> Path:
        """One event per line (``metrics.jsonl``)."""
        return self.path / "metrics.jsonl"

    @property
    def forgetting(self) -> Path:
        """The forgetting telemetry's rows (``forgetting.csv``)."""
        return self.path / "forgetting.csv"

    @property
    def networks(self) -> Path:
        """The derived cells' folder."""
        return self.path / "networks"

    def network(self, name: str) -> Path:
        """A derived cell's JSON (``networks/NAME.json``; its ``.dot`` and ``.png`` beside it)."""
        return self.networks / f"{name}.json"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard's event folder."""
        return self.path / "tensorboard"

    def test(self, name: str | None = None) -> Path:
        """``--mode=test``'s record: of the run's best cell (``test.json``), or of a named one (``test_NAME.json``)."""
        return self.path / ("test.json" if name is None else f"test_{name}.json")

    def rank(self, weights: str = "last", score: str = "accuracy") -> Path:
        """``wpl rank``'s record: of the trained weights (``rank.json``) or their average (``rank_ema.json``),
        the cells scored by accuracy or by loss (``rank_loss.json``, ``rank_ema_loss.json``)."""
        parts = [p for p, default in ((weights, "last"), (score, "accuracy")) if p != default]
        return self.path / ("_".join(["rank", *parts]) + ".json")

    def figure(self, name: str) -> Path:
        """A figure drawn from the run: ``cells.gif`` (wpl gif), ``forgetting.png`` (wpl plot), ``fisher.png``."""
        return self.path / name

    @property
    def best_weights(self) -> Path:
        """A final training's best epoch's weights (``best.pt``)."""
        return self.path / "best.pt"

    @property
    def final(self) -> RunDir:
        """The derived cell's from-scratch training (``final/``)."""
        return RunDir(self.path / "final")

    # ---- what it holds -------------------------------------------------------------------------
    def is_search(self) -> bool:
        """Whether this is a search run's folder (its flags, and cells or a checkpoint)."""
        return self.config.is_file() and (self.networks.is_dir() or self.checkpoint.is_file())

    def read_summary(self) -> dict | None:
        """``summary.json``'s content, or None while the run has not ended."""
        return json.loads(self.summary.read_text()) if self.summary.is_file() else None

    def read_config(self) -> dict:
        """``config.json``'s content."""
        return json.loads(self.config.read_text())

    def remove_stale(self, names: tuple[str, ...]) -> None:
        """Delete ``names`` (outputs of an earlier run a new one replaces)."""
        for name in names:
            (self.path / name).unlink(missing_ok=True)
