"""One attempt of a trial: its session in TensorBoard, its per-epoch scalars and its end.

The failure boundary: whatever the train function does, the attempt ends with its real
status (``store.rundirs.close``). The loop over tasks is ``execution.loop.drive``.

Knows nothing of Keras: it calls a ``train(trial, on_epoch)`` function that returns
an object with ``history`` ({metric: [per-epoch values]}), ``test`` and ``epochs``,
so tests can drive it with a fake. Every trial ends with a session_end record
carrying its real status; a trial that raises or whose metrics go NaN/inf is a
FAILURE and the study goes on.
"""

from __future__ import annotations

import math
import time
import traceback
from pathlib import Path
from typing import Mapping

from hparams_lab.core import metrics as m
from hparams_lab.core.contract import PruneCheck, TrainFn
from hparams_lab.core.errors import one_line
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.execution.devices import WHOLE_DEVICE, is_out_of_memory
from hparams_lab.execution.events import Reporter
from hparams_lab.store.rundirs import CHECKPOINT, close, pause, read_paused
from hparams_lab.tb.summaries import (
    scalars_summary,
    session_group,
    session_start_summary,
)
from hparams_lab.tb.writer import RunWriter

TIMEOUT = "timeout: the study's --timeout ended this attempt; it runs again on resume"


def run_trial(trial: Trial, train: TrainFn, run_dir: Path, reporter: Reporter) -> TrialResult:
    """One attempt in a fresh run directory, closed with its real status whatever happens."""
    return run_task(trial, train, run_dir, reporter)


def run_task(
    trial: Trial,
    train: TrainFn,
    run_dir: Path,
    reporter: Reporter,
    *,
    start: int = 0,
    stop: int | None = None,
    prune: PruneCheck | None = None,
    deadline: float | None = None,
    device: str | None = None,
    alone: bool = False,
) -> TrialResult:
    """Trains a whole trial, or (``stop`` given) its epochs ``start``..``stop``.

    A whole trial's session is closed here with its real status. A segment leaves a
    successful session open (trial.json says RUNNING, with the history so far and a
    weights checkpoint) for the next segment or for ``close_paused``; one segment
    failing closes it as FAILURE. ``prune`` is asked after each epoch whether to stop
    the trial there; one it stops is closed as PRUNED.
    """
    started = time.time()
    before = read_paused(run_dir) if start > 0 else None
    if before is None:
        run_dir.mkdir(parents=True, exist_ok=False)
    with RunWriter(run_dir) as writer:
        if before is None:
            writer.write(session_start_summary(trial, session_group(run_dir.parent.name, trial), started))
            writer.flush()
        else:
            started -= before.wall_time_s  # wall time counts every segment

        pruned_at: list[int] = []
        timed_out: list[int] = []

        def on_epoch(epoch: int, logs: Mapping[str, float]) -> bool:
            for group, values in m.epoch_scalars(logs).items():
                writer.write(scalars_summary(values), step=epoch, group=group)
            writer.flush()
            reporter.epoch_ended(trial, epoch, logs)
            if prune is not None and prune(epoch, logs):
                pruned_at.append(epoch)
            if deadline is not None and time.time() >= deadline:
                timed_out.append(epoch)
            return bool(pruned_at or timed_out)  # True asks training to stop

        outcome, error, details = None, None, None
        try:
            if stop is None:
                outcome = train(trial, on_epoch, run_dir=run_dir)
            else:
                outcome = train(trial, on_epoch, start=start, stop=stop, checkpoint=run_dir / CHECKPOINT,
                                run_dir=run_dir)
        except Exception as err:  # the failure boundary: one trial, not the study
            error, details = one_line(err), traceback.format_exc()
        except SystemExit as err:  # a user's model or fit calling sys.exit(): its trial, not the study
            error, details = f"the trial called sys.exit({err.code!r})", traceback.format_exc()
        except BaseException:
            # Ctrl-C or a kill signal turned into an exception: close the session honestly,
            # unless it is a continued segment, which a resume runs again from its checkpoint.
            if before is None:
                _finish(writer, run_dir, trial, TrialStatus.FAILURE, {}, start, started, "interrupted", None)
            raise
        history = _joined(before.history if before else {}, outcome.history if outcome is not None else {})
        if error is None and timed_out:
            error = TIMEOUT
        if alone and is_out_of_memory(error):
            error = f"{WHOLE_DEVICE}: {error}"
        if error is None:
            bad = m.first_non_finite(history)
            if bad is not None:
                error = f"{bad[0]} became {history[bad[0]][bad[1]]} at epoch {bad[1] + 1}"
        if error is None and outcome is not None and not any(name.startswith("val_") for name in history):
            error = "training logged no validation metrics (val_...), so the trial cannot be ranked"
        status = TrialStatus.SUCCESS if error is None else TrialStatus.FAILURE
        if status is TrialStatus.SUCCESS and pruned_at:
            status = TrialStatus.PRUNED
        # A failed trial gets no summary metrics, so it can never rank best anywhere.
        summary = m.summarize(history, outcome.test) if status is not TrialStatus.FAILURE else {}
        if summary:  # what the model costs (training.costs), measured by the train function
            summary.update(_costs(outcome))
        epochs = start + (outcome.epochs if outcome is not None else 0)
        if stop is not None and status is TrialStatus.SUCCESS:
            return _pause(writer, run_dir, trial, summary, epochs, started, history, device)
        return _finish(writer, run_dir, trial, status, summary, epochs, started, error, details, device)


def _costs(outcome: object) -> dict[str, float]:
    """The cost metrics a train function returned (``costs``: {name: value}); a train function
    of the user's that returns none logs none."""
    costs = getattr(outcome, "costs", None)
    if not isinstance(costs, Mapping):
        return {}
    values = {name: costs.get(name) for name in m.COST_METRICS}
    return {name: float(v) for name, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _pause(writer: RunWriter, run_dir: Path, trial: Trial, summary: dict[str, float], epochs: int,
           started: float, history: dict[str, list[float]], device: str | None = None) -> TrialResult:
    writer.write(scalars_summary(summary), step=max(epochs - 1, 0))
    writer.flush()
    result = TrialResult(trial, TrialStatus.RUNNING, summary, epochs, time.time() - started, None, run_dir, device)
    return pause(run_dir, result, history)


def _joined(before: Mapping[str, list[float]], after: Mapping[str, list[float]]) -> dict[str, list[float]]:
    return {name: list(before.get(name, [])) + list(after.get(name, [])) for name in {**before, **after}}


def _finish(
    writer: RunWriter,
    run_dir: Path,
    trial: Trial,
    status: TrialStatus,
    summary: dict[str, float],
    epochs: int,
    started: float,
    error: str | None,
    details: str | None,
    device: str | None = None,
) -> TrialResult:
    if summary:
        writer.write(scalars_summary(summary), step=max(epochs - 1, 0))
    result = TrialResult(trial, status, summary, epochs, time.time() - started, error, run_dir, device)
    return close(run_dir, result, writer=writer, details=details)
