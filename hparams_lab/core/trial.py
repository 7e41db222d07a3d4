"""Trials: one set of hparams trained with one seed, and what came of it."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class TrialStatus(enum.StrEnum):
    """The statuses TensorBoard's HParams plugin knows (api_pb2.Status without STATUS_), and PRUNED.

    A StrEnum: members equal their names as text, so JSON, f-strings and review's rows read "SUCCESS".
    """

    UNKNOWN = "UNKNOWN"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    RUNNING = "RUNNING"
    # Stopped early on purpose by its search (bayes --pruner), with real metrics from the
    # epochs it trained. TensorBoard has no such status: tb.summaries tells it SUCCESS.
    PRUNED = "PRUNED"

    def is_finished(self) -> bool:
        return self in (TrialStatus.SUCCESS, TrialStatus.FAILURE, TrialStatus.PRUNED)

    @classmethod
    def from_tensorboard(cls, number: int) -> TrialStatus:
        """A session_end_info status number; UNKNOWN for one TensorBoard does not define."""
        return TENSORBOARD_STATUSES[number] if 0 <= number < len(TENSORBOARD_STATUSES) else cls.UNKNOWN


# tensorboard.hparams api_pb2.Status by number: STATUS_UNKNOWN = 0 ... STATUS_RUNNING = 3.
TENSORBOARD_STATUSES = (TrialStatus.UNKNOWN, TrialStatus.SUCCESS, TrialStatus.FAILURE, TrialStatus.RUNNING)


def _digest(payload: object) -> str:
    # Compact, key-sorted JSON: the same scheme TensorBoard uses for session group names,
    # so the id does not depend on the order hparams were given in.
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Trial:
    """One point of the search space, trained with one seed (and, later, one repeat or fold)."""

    hparams: dict[str, Any]
    seed: int
    repeat: int = 0
    fold: int | None = None  # cross-validation fold, None without --cv
    index: int = field(default=0, compare=False)  # position in the study, for display only

    @property
    def group(self) -> str:
        """TensorBoard session group: trials with equal hparams aggregate there."""
        return _digest(self.hparams)

    @property
    def id(self) -> str:
        """Short, deterministic: the same hparams, seed, repeat and fold always give the same id."""
        payload = {"hparams": self.hparams, "seed": self.seed, "repeat": self.repeat}
        if self.fold is not None:
            payload["fold"] = self.fold
        return _digest(payload)[:12]


@dataclass(frozen=True)
class TrialResult:
    """What one trial produced; ``metrics`` holds the declared summary metrics."""

    trial: Trial
    status: TrialStatus
    metrics: dict[str, float] = field(default_factory=dict)
    epochs: int = 0
    wall_time_s: float = 0.0
    error: str | None = None
    run_dir: Path | None = field(default=None, compare=False)  # where it ran; not part of the record
    device: str | None = None  # "GPU 0", "CPU", when the study put its workers on devices (--gpus)

    def to_json(self) -> dict:
        return {
            "id": self.trial.id,
            "group": self.trial.group,
            "index": self.trial.index,
            "hparams": self.trial.hparams,
            "seed": self.trial.seed,
            "repeat": self.trial.repeat,
            "fold": self.trial.fold,
            "status": self.status.value,
            "metrics": self.metrics,
            "epochs": self.epochs,
            "wall_time_s": round(self.wall_time_s, 3),
            "error": self.error,
            **({"device": self.device} if self.device is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict) -> "TrialResult":
        trial = Trial(
            data["hparams"], data["seed"], data.get("repeat", 0), data.get("fold"), data.get("index", 0)
        )
        return cls(
            trial,
            TrialStatus(data["status"]),
            dict(data.get("metrics") or {}),
            data.get("epochs", 0),
            data.get("wall_time_s", 0.0),
            data.get("error"),
            device=data.get("device") if isinstance(data.get("device"), str) else None,
        )
