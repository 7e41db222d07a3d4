"""Run directories: one per attempt of a trial, how they are named, scanned and closed.

A trial's attempts are ``<id>``, ``<id>.2``, ``<id>.3`` ... (ordered by number, so
``<id>.10`` comes after ``<id>.2``); a rerun of a recorded trial is ``<id>.rerun-N``.
Each holds one TensorBoard session and a trial.json. ``close`` is the one place that
ends a session: it writes the session_end record and trial.json together. A
segmented (hyperband) trial between segments is *paused*: its trial.json says
RUNNING, with the history so far, beside a checkpoint of its weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hparams_lab.core.metrics import PARETO_RANK
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.store.jsonfile import read_json_object, write_json_atomic
from hparams_lab.tb.summaries import (
    SESSION_START_TAG,
    scalars_summary,
    session_end_summary,
    session_group,
    session_start_summary,
)
from hparams_lab.tb.writer import RunWriter

TRIAL_FILE = "trial.json"
CHECKPOINT = "checkpoint.npz"  # a paused trial's weights and optimizer state
CUT_OFF = "interrupted: the study stopped before this attempt finished"
_RERUN = ".rerun-"


# -- names -----------------------------------------------------------------------------
def trial_id_of(run_dir: Path) -> str:
    return run_dir.name.split(".", 1)[0]


def attempt_number(run_dir: Path) -> int | None:
    """1 for ``<id>``, N for ``<id>.N``; None for anything else (a rerun, a foreign name)."""
    _, dot, suffix = run_dir.name.partition(".")
    if not dot:
        return 1
    return int(suffix) if suffix.isdigit() and int(suffix) >= 2 else None


def attempts(experiment_dir: Path, trial_id: str) -> list[Path]:
    """A trial's attempt directories, first to latest."""
    found = [p for p in experiment_dir.glob(f"{trial_id}*") if p.is_dir() and trial_id_of(p) == trial_id]
    return sorted((p for p in found if attempt_number(p) is not None), key=attempt_number)


def latest_attempt(experiment_dir: Path, trial_id: str) -> Path | None:
    found = attempts(experiment_dir, trial_id)
    return found[-1] if found else None


def attempt_dir(experiment_dir: Path, trial_id: str) -> Path:
    """A fresh run directory for the next attempt: <id>, then <id>.2, <id>.3 ..."""
    latest = latest_attempt(experiment_dir, trial_id)
    n = 1 if latest is None else attempt_number(latest) + 1
    return experiment_dir / (trial_id if n == 1 else f"{trial_id}.{n}")


def rerun_dir(experiment_dir: Path, trial_id: str) -> Path:
    """A fresh ``<id>.rerun-N`` for ``rerun``: a new session in the trial's group, never a new attempt."""
    n = 1
    while (experiment_dir / f"{trial_id}{_RERUN}{n}").exists():
        n += 1
    return experiment_dir / f"{trial_id}{_RERUN}{n}"


# -- reading -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """One run directory of an experiment and what its trial.json says (None: cut off, no trial.json)."""

    run_dir: Path
    record: dict[str, Any] | None

    @property
    def status(self) -> TrialStatus | None:
        try:
            return TrialStatus(self.record.get("status")) if self.record is not None else None
        except ValueError:
            return None

    @property
    def result(self) -> TrialResult | None:
        """The recorded result, or None without one (cut off, or closed knowing only its id)."""
        if self.record is None:
            return None
        try:
            return dataclasses.replace(TrialResult.from_json(self.record), run_dir=self.run_dir)
        except (KeyError, TypeError, ValueError):
            return None


def _order(run_dir: Path) -> tuple:
    number = attempt_number(run_dir)
    return trial_id_of(run_dir), math.inf if number is None else number, run_dir.name


def scan(experiment_dir: Path) -> list[Attempt]:
    """Every run directory of an experiment with its record, by trial id, then attempt number."""
    if not experiment_dir.is_dir():
        return []
    run_dirs = sorted((p for p in experiment_dir.iterdir() if p.is_dir()), key=_order)
    return [Attempt(run_dir, _read_record(run_dir)) for run_dir in run_dirs]


def _read_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / TRIAL_FILE
    if not path.exists():
        return None
    try:
        return read_json_object(path)
    except ValueError as err:
        # Damaged (truncated, a list, a directory): the attempt counts as failed, so its trial
        # runs again in a fresh attempt; the damaged one is left as it is.
        return {"status": TrialStatus.FAILURE.value, "error": f"{TRIAL_FILE} unreadable: {err}"}


def is_closed(run_dir: Path) -> bool:
    """Whether an attempt's session has ended (its trial.json says SUCCESS, FAILURE or PRUNED)."""
    try:
        status = Attempt(run_dir, _read_record(run_dir)).status
    except (OSError, ValueError, AttributeError):  # unreadable, or not a JSON object
        return False
    return status is not None and status.is_finished()


def read_closed(run_dir: Path, trial: Trial) -> TrialResult:
    """An attempt's recorded result (its trial.json), tied to the planned trial."""
    result = TrialResult.from_json(json.loads((run_dir / TRIAL_FILE).read_text()))
    return dataclasses.replace(result, trial=trial, run_dir=run_dir)


# -- closing -----------------------------------------------------------------------------
def close(run_dir: Path, result: TrialResult, *, writer: RunWriter | None = None,
          details: str | None = None) -> TrialResult:
    """Ends an attempt: its session_end record with the result's status, then its trial.json.

    ``writer`` is the attempt's open writer if it has one; ``details`` (a traceback)
    goes into trial.json only.
    """
    record = result.to_json()
    if details:
        record["traceback"] = details
    _close(run_dir, result.status, record, writer)
    return dataclasses.replace(result, run_dir=run_dir)


def _close(run_dir: Path, status: TrialStatus, record: dict[str, Any], writer: RunWriter | None) -> None:
    if writer is None:
        with RunWriter(run_dir) as own:
            own.write(session_end_summary(status))
    else:
        writer.write(session_end_summary(status))
        writer.flush()
    write_json_atomic(run_dir / TRIAL_FILE, record)


def close_cut_off(run_dir: Path, trial: Trial | None, reason: str = CUT_OFF) -> None:
    """Ends a killed attempt's session as FAILURE and records why."""
    if trial is not None:
        with RunWriter(run_dir) as writer:
            if not _session_started(run_dir):
                # Killed between creating the directory and starting its session: start
                # it now, or TensorBoard would not show this FAILURE at all.
                writer.write(session_start_summary(trial, session_group(run_dir.parent.name, trial)))
            close(run_dir, TrialResult(trial, TrialStatus.FAILURE, error=reason), writer=writer)
    else:  # not in this plan any more: still close it, with what is known
        record = {"id": trial_id_of(run_dir), "status": TrialStatus.FAILURE.value, "error": reason}
        _close(run_dir, TrialStatus.FAILURE, record, None)


def _session_started(run_dir: Path) -> bool:
    """Whether the attempt's own event files hold its session_start record.

    Protobuf stores a summary's tag verbatim, so its bytes in a file are that record;
    an attempt's files are small (a killed one's, only a few records).
    """
    tag = SESSION_START_TAG.encode()
    return any(tag in path.read_bytes() for path in run_dir.glob("events.out.tfevents.*"))


# -- paused (segmented) trials -------------------------------------------------------------
@dataclass(frozen=True)
class Paused:
    """A segmented trial between segments: what trial.json holds besides its result."""

    result: TrialResult
    history: dict[str, list[float]]

    @property
    def wall_time_s(self) -> float:
        return self.result.wall_time_s


def pause(run_dir: Path, result: TrialResult, history: dict[str, list[float]]) -> TrialResult:
    """Records a segment's end: trial.json says RUNNING, with the history the next segment extends."""
    write_json_atomic(run_dir / TRIAL_FILE, {**result.to_json(), "history": history})
    return result


def read_paused(run_dir: Path) -> Paused | None:
    """The open (RUNNING) record a segment left in ``run_dir``, or None."""
    attempt = Attempt(run_dir, _read_record(run_dir))
    if attempt.status is not TrialStatus.RUNNING:
        return None
    return Paused(attempt.result, {k: list(v) for k, v in attempt.record.get("history", {}).items()})


def close_paused(run_dir: Path, trial: Trial) -> TrialResult:
    """Ends a segmented trial that trains no further: SUCCESS with its metrics so far."""
    paused = read_paused(run_dir)
    if paused is None:
        raise ValueError(f"{run_dir} holds no paused trial")
    result = close(run_dir, dataclasses.replace(paused.result, trial=trial, status=TrialStatus.SUCCESS))
    (run_dir / CHECKPOINT).unlink(missing_ok=True)  # only the next segment needed it
    return result


def mark_front(result: TrialResult, rank: int | None, infeasible: str | None) -> TrialResult:
    """Records a closed attempt's place among several objectives (core.objectives): its
    ``pareto_rank`` (1 = on the front) as a scalar at its last step and in trial.json's
    metrics and top level, and ``infeasible``: why it breaks a --constraint (or no such key).
    Nothing is written when trial.json says so already."""
    record = _read_record(result.run_dir) or {}
    unchanged = (record.get("pareto_rank") == rank and record.get("infeasible") == infeasible
                 and (rank is None or result.metrics.get(PARETO_RANK) == rank))
    if unchanged or result.run_dir is None:
        return result
    metrics = dict(result.metrics)
    if rank is not None and metrics.get(PARETO_RANK) != rank:
        with RunWriter(result.run_dir) as writer:
            writer.write(scalars_summary({PARETO_RANK: float(rank)}), step=max(result.epochs - 1, 0))
        metrics[PARETO_RANK] = float(rank)
    record = {**record, "metrics": metrics, "pareto_rank": rank}
    if infeasible is None:
        record.pop("infeasible", None)
    else:
        record["infeasible"] = infeasible
    write_json_atomic(result.run_dir / TRIAL_FILE, record)
    return dataclasses.replace(result, metrics=metrics)


def add_metrics(result: TrialResult, metrics: dict[str, float]) -> TrialResult:
    """Adds metrics to a closed attempt, as scalars at its last step and in its trial.json.

    For a group's mean/std over repeats or CV folds, known once its last member is done.
    """
    with RunWriter(result.run_dir) as writer:
        writer.write(scalars_summary(metrics), step=max(result.epochs - 1, 0))
    updated = dataclasses.replace(result, metrics={**result.metrics, **metrics})
    record = _read_record(result.run_dir) or {}
    write_json_atomic(result.run_dir / TRIAL_FILE, {**record, "metrics": updated.metrics})
    return updated
