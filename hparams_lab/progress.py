"""What a study prints: live progress on a terminal, plain lines when piped, a leaderboard."""

from __future__ import annotations

import math
import shutil
import time
from typing import Any, Mapping, Sequence, TextIO

from hparams_lab.trial import Trial, TrialResult, TrialStatus


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def format_hparams(hparams: Mapping[str, Any]) -> str:
    return " ".join(f"{name}={format_value(value)}" for name, value in hparams.items())


class ConsoleReporter:
    """One line per finished trial; on a terminal, also a live line per epoch."""

    def __init__(self, stream: TextIO, *, metric: str, epochs: int, live: bool) -> None:
        self.stream = stream
        self.metric = metric
        self.epochs = epochs
        self.live = live
        self._started = 0.0
        self._total = 0

    def trial_started(self, trial: Trial, total: int) -> None:
        self._started, self._total = time.monotonic(), total
        if self.live:
            self._status(f"{self._prefix(trial)} {format_hparams(trial.hparams)} starting")

    def epoch_ended(self, trial: Trial, epoch: int, logs: Mapping[str, float]) -> None:
        if not self.live:
            return
        epochs = trial.hparams.get("epochs", self.epochs)
        watched = "val_" + self.metric.rsplit("_", 1)[-1]
        value = logs.get(watched)
        shown = f" {watched}={format_value(float(value))}" if value is not None else ""
        elapsed = time.monotonic() - self._started
        self._status(f"{self._prefix(trial)} epoch {epoch + 1}/{epochs}{shown} {elapsed:.1f}s")

    def trial_finished(self, result: TrialResult, total: int) -> None:
        value = result.metrics.get(self.metric)
        outcome = (
            f"{self.metric}={format_value(value)}"
            if result.status is TrialStatus.SUCCESS and value is not None
            else f"FAILED: {result.error}"
        )
        line = (
            f"{self._prefix(result.trial)} {outcome} "
            f"({result.epochs} epochs, {result.wall_time_s:.1f}s)  {format_hparams(result.trial.hparams)}"
        )
        if self.live:
            self._status("")
        print(line, file=self.stream, flush=True)

    def _prefix(self, trial: Trial) -> str:
        width = len(str(self._total))
        return f"[{trial.index + 1:>{width}}/{self._total}] {trial.id}"

    def _status(self, text: str) -> None:
        columns = shutil.get_terminal_size((100, 20)).columns
        self.stream.write("\r" + text[: columns - 1].ljust(columns - 1) + ("\r" if not text else ""))
        self.stream.flush()


def leaderboard(results: Sequence[TrialResult], metric: str, top: int = 10) -> str:
    """An aligned table of the best trials (failures last, never ranked best)."""
    if not results:
        return "(no trials)"
    names = list(dict.fromkeys(name for r in results for name in r.trial.hparams))
    header = ["rank", "trial", "status", metric, "epochs", "time"] + names
    rows = [header]
    for rank, result in enumerate(results[:top], start=1):
        value = result.metrics.get(metric)
        rows.append(
            [
                str(rank) if result.status is TrialStatus.SUCCESS else "-",
                result.trial.id,
                result.status.value,
                format_value(value) if value is not None else "",
                str(result.epochs),
                f"{result.wall_time_s:.1f}s",
            ]
            + [format_value(result.trial.hparams.get(name, "")) for name in names]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if len(results) > top:
        lines.append(f"... and {len(results) - top} more")
    return "\n".join(lines)
