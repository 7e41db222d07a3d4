"""The study loop: each trial gets a run directory, a session in TensorBoard and a trial.json.

Knows nothing of Keras: it calls a ``train(trial, on_epoch)`` function that returns
an object with ``history`` ({metric: [per-epoch values]}), ``test`` and ``epochs``,
so tests can drive it with a fake. Every trial ends with a session_end record
carrying its real status; a trial that raises or whose metrics go NaN/inf is a
FAILURE and the study goes on.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from hparams_lab import metrics as m
from hparams_lab.errors import one_line
from hparams_lab.jsonfile import write_json_atomic
from hparams_lab.trial import Trial, TrialResult, TrialStatus
from hparams_lab.writer import (
    RunWriter,
    scalars_summary,
    session_end_summary,
    session_group,
    session_start_summary,
)

EpochCallback = Callable[[int, Mapping[str, float]], None]
TrainFn = Callable[[Trial, EpochCallback], Any]


class Reporter(Protocol):
    def note(self, message: str) -> None: ...
    def trial_started(self, trial: Trial, position: int, total: int) -> None: ...
    def epoch_ended(self, trial: Trial, epoch: int, logs: Mapping[str, float]) -> None: ...
    def trial_finished(self, result: TrialResult, position: int, total: int) -> None: ...


class SilentReporter:
    def note(self, message: str) -> None:
        pass

    def trial_started(self, trial: Trial, position: int, total: int) -> None:
        pass

    def epoch_ended(self, trial: Trial, epoch: int, logs: Mapping[str, float]) -> None:
        pass

    def trial_finished(self, result: TrialResult, position: int, total: int) -> None:
        pass


def run_trials(
    trials: Sequence[Trial],
    train: TrainFn,
    experiment_dir: Path,
    reporter: Reporter | None = None,
) -> list[TrialResult]:
    reporter = reporter or SilentReporter()
    results = []
    for position, trial in enumerate(trials, start=1):
        reporter.trial_started(trial, position, len(trials))
        result = run_trial(trial, train, attempt_dir(experiment_dir, trial.id), reporter)
        reporter.trial_finished(result, position, len(trials))
        results.append(result)
    return results


def attempt_dir(experiment_dir: Path, trial_id: str) -> Path:
    """A fresh run directory for every attempt: <id>, then <id>.2, <id>.3 ..."""
    candidate, n = experiment_dir / trial_id, 2
    while candidate.exists():
        candidate, n = experiment_dir / f"{trial_id}.{n}", n + 1
    return candidate


def run_trial(trial: Trial, train: TrainFn, run_dir: Path, reporter: Reporter) -> TrialResult:
    """One attempt in a fresh run directory, closed with its real status whatever happens."""
    started = time.time()
    run_dir.mkdir(parents=True, exist_ok=False)
    with RunWriter(run_dir) as writer:
        writer.write(session_start_summary(trial, session_group(run_dir.parent.name, trial), started))
        writer.flush()

        def on_epoch(epoch: int, logs: Mapping[str, float]) -> None:
            for group, values in m.epoch_scalars(logs).items():
                writer.write(scalars_summary(values), step=epoch, group=group)
            writer.flush()
            reporter.epoch_ended(trial, epoch, logs)

        outcome, error, details = None, None, None
        try:
            outcome = train(trial, on_epoch)
        except Exception as err:  # the failure boundary: one trial, not the study
            error, details = one_line(err), traceback.format_exc()
        except BaseException:
            # Ctrl-C or a kill signal turned into an exception: close the session honestly.
            _finish(writer, run_dir, trial, TrialStatus.FAILURE, {}, 0, started, "interrupted", None)
            raise
        history = outcome.history if outcome is not None else {}
        if error is None:
            bad = m.first_non_finite(history)
            if bad is not None:
                error = f"{bad[0]} became {history[bad[0]][bad[1]]} at epoch {bad[1] + 1}"
        status = TrialStatus.SUCCESS if error is None else TrialStatus.FAILURE
        # A failed trial gets no summary metrics, so it can never rank best anywhere.
        summary = m.summarize(history, outcome.test) if status is TrialStatus.SUCCESS else {}
        epochs = outcome.epochs if outcome is not None else 0
        return _finish(writer, run_dir, trial, status, summary, epochs, started, error, details)


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
) -> TrialResult:
    if summary:
        writer.write(scalars_summary(summary), step=max(epochs - 1, 0))
    writer.write(session_end_summary(status))
    writer.flush()
    result = TrialResult(trial, status, summary, epochs, time.time() - started, error, run_dir)
    record = result.to_json()
    if details:
        record["traceback"] = details
    write_json_atomic(run_dir / "trial.json", record)
    return result


def ranked(results: Sequence[TrialResult], metric: str) -> list[TrialResult]:
    """Successful trials best first by ``metric``; failures after them, never ranked best."""
    key = m.sort_key(metric)
    ok = [r for r in results if r.status is TrialStatus.SUCCESS]
    rest = [r for r in results if r.status is not TrialStatus.SUCCESS]
    return sorted(ok, key=lambda r: key(r.metrics)) + rest
