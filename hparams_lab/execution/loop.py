"""The study loop: a search proposes tasks, a backend runs them, results go back to the search.

Every strategy is a ``Search`` (ask for the next task, tell it what came of one),
the ask-and-tell shape of optuna and keras-tuner's Oracle; grid, random, refine and
one-at-a-time are a fixed list (``FixedSearch``), hyperband and bayes decide as
results come in. Every backend (this process, a local process pool, a dask
cluster) takes tasks and returns ``concurrent.futures`` futures, so one loop drives
them all. A task whose worker process died is re-run alone once the others are
done; only one that kills its solo worker as well is a FAILURE.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from hparams_lab.core.trial import TrialResult, TrialStatus
from hparams_lab.execution.devices import is_out_of_memory
from hparams_lab.execution.events import Reporter, SilentReporter
from hparams_lab.search.base import Search, Task
from hparams_lab.store.rundirs import (
    attempt_dir,
    close_cut_off,
    is_closed,
    read_closed,
    read_paused,
)

WORKER_DIED = "the worker process running this trial died"
INTERRUPTED = "interrupted: a worker process died while this trial ran; it runs again"


class WorkerDied(Exception):
    """A backend's future fails with this when the process running its task died."""


class Backend(Protocol):
    slots: int  # tasks at once

    def submit(self, task: Task) -> Future: ...
    # Backends with workers on GPUs (on_gpus) also have submit_alone(task): a whole GPU, no other trial.
    def restart(self) -> None: ...  # after a worker died: a fresh set of workers
    def close(self) -> None: ...


@dataclass(frozen=True)
class Limits:
    """A study's budgets and retries (--timeout, --max-epochs-total, --retries, --max-failures).

    A budget stops new tasks from starting; the running ones finish (with ``kill``, they
    stop at their next epoch's end as FAILURE "timeout", and run again on resume).
    """

    deadline: float | None = None  # time.time() after which no task starts
    kill: bool = False  # --timeout-kill
    max_epochs: int | None = None  # epochs trained in all by this run, after which no task starts
    retries: int = 0  # more attempts for a trial that raised (not NaN, not a user's error)
    max_failures: int | None = None  # consecutive FAILUREs that stop the study


@dataclass(frozen=True)
class Stopped:
    """Why a study stopped before its search ended."""

    by: str  # "timeout", "max_epochs_total" or "max_failures"
    message: str


# Failures that would fail again: not retried.
_NOT_RETRIED = (" became nan", " became inf", " became -inf", "UserError", "logged no validation metrics",
                "interrupted", "timeout:", "out of GPU memory")


def retriable(result: TrialResult) -> bool:
    return result.status is TrialStatus.FAILURE and bool(result.error) and not any(
        marker in result.error for marker in _NOT_RETRIED)


def drive(search: Search, backend: Backend, experiment_dir: Path, reporter: Reporter | None = None,
          limits: Limits | None = None,
          told: Callable[[TrialResult], None] | None = None) -> Stopped | None:
    """Runs a search to its end on a backend, or until a limit stops it (what it returns).

    ``told`` hears of each result the search is told (--keep-best's keeper)."""
    reporter = reporter or SilentReporter()
    limits = limits or Limits()
    attempts: Counter[str] = Counter()  # trial id -> attempts made by this run
    epochs_trained = failures_in_a_row = asked = 0
    stopped: Stopped | None = None
    running: dict[Future, Task] = {}
    suspects: deque[Task] = deque()  # in flight when a worker died: each runs again alone
    retry: deque[Task] = deque()  # queued when a worker died, never started
    out_of_memory: deque[Task] = deque()  # ran out of GPU memory beside others: each runs again alone
    solo = broken = False
    started = finished = 0
    while True:
        if not running and broken:
            backend.restart()
            broken = False
        if suspects:
            if not running:
                task = suspects.popleft()
                running[backend.submit(task)] = task
                solo = True
        elif out_of_memory and not running:
            # On a whole GPU, no other trial beside it (execution.devices): K = 1 for it.
            task = placed(dataclasses.replace(out_of_memory.popleft(), run_dir=None, alone=True), experiment_dir)
            reporter.note(f"trial {task.trial.id} ran out of GPU memory beside other trials; "
                          "running it again alone on a whole GPU")
            running[backend.submit_alone(task)] = task
            solo = True
        elif not (solo and running):
            solo = False
            stopped = stopped or _budget_spent(limits, epochs_trained)
            while not stopped and len(running) < backend.slots and (
                    task := retry.popleft() if retry else search.ask()):
                fresh = task.trial.id not in attempts or task.start > 0  # not a retry of one started
                asked += fresh
                started += fresh
                task = placed(task, experiment_dir)
                if limits.kill and limits.deadline is not None:
                    task = dataclasses.replace(task, deadline=limits.deadline)
                attempts[task.trial.id] += task.start == 0
                reporter.trial_started(task.trial, started, search.total)
                running[backend.submit(task)] = task
        if not running:
            # A budget that held nothing back (the search had no more) did not end the study.
            return stopped if stopped and (stopped.by == "max_failures" or asked < search.total) else None
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            task = running.pop(future)
            try:
                result = future.result()
            except WorkerDied:
                broken = True
                result = recorded(task)  # it may have finished just before the pool broke
                if result is None and not task.run_dir.exists():
                    retry.append(task)  # never started
                    continue
                if result is None and not solo:
                    suspects.append(_interrupted(task, experiment_dir))
                    continue
                if result is None:
                    result = closed_as_failure(task, WORKER_DIED)  # it killed a worker of its own
            epochs_trained += max(result.epochs - task.start, 0)
            # A continued segment (start > 0) is closed with its failure: nothing to go on from.
            if (result.status is TrialStatus.FAILURE and is_out_of_memory(result.error) and not task.alone
                    and task.start == 0 and getattr(backend, "on_gpus", False)):
                out_of_memory.append(task)  # not told yet: its retry alone decides
                continue
            if retriable(result) and task.start == 0 and attempts[task.trial.id] <= limits.retries and not stopped:
                reporter.note(f"trial {task.trial.id} failed ({result.error}); trying it again "
                              f"(attempt {attempts[task.trial.id] + 1} of {limits.retries + 1})")
                retry.append(dataclasses.replace(task, run_dir=None))  # a fresh attempt directory
                continue
            failures_in_a_row = failures_in_a_row + 1 if result.status is TrialStatus.FAILURE else 0
            if limits.max_failures is not None and failures_in_a_row >= limits.max_failures and not stopped:
                stopped = Stopped("max_failures", f"stopped after {failures_in_a_row} failed trials in a row "
                                                  f"(--max-failures); the last: {result.error}")
            search.tell(task, result)
            if told is not None:
                told(search.results.get(task.trial.id, result))
            finished += 1
            # The search may have closed it just now (hyperband's last rung): report that.
            reporter.trial_finished(search.results.get(task.trial.id, result), finished, search.total)


def _budget_spent(limits: Limits, epochs_trained: int) -> Stopped | None:
    if limits.deadline is not None and time.time() >= limits.deadline:
        return Stopped("timeout", "the --timeout budget ended the study: no new trial started after it; "
                                  "run the same command again to go on with a fresh budget")
    if limits.max_epochs is not None and epochs_trained >= limits.max_epochs:
        return Stopped("max_epochs_total", f"the --max-epochs-total budget ({limits.max_epochs}) ended the study "
                                           f"after {epochs_trained} epochs; run the same command again to go on")
    return None


def placed(task: Task, experiment_dir: Path) -> Task:
    """The task with its run directory: a fresh attempt directory unless it continues one."""
    if task.run_dir is not None:
        return task
    return dataclasses.replace(task, run_dir=attempt_dir(experiment_dir, task.trial.id))


def _interrupted(task: Task, experiment_dir: Path) -> Task:
    """The retry of a task cut off by another worker's death.

    A continued trial goes on from its last checkpoint in its own directory; any
    other attempt is closed as interrupted and retried in a fresh one.
    """
    if task.start > 0:
        return task
    closed_as_failure(task, INTERRUPTED)
    return placed(dataclasses.replace(task, run_dir=None), experiment_dir)


def recorded(task: Task) -> TrialResult | None:
    """The task's result if its run directory already holds it, else None."""
    if task.run_dir is None:
        return None
    if is_closed(task.run_dir):
        return read_closed(task.run_dir, task.trial)
    paused = read_paused(task.run_dir) if task.stop is not None else None
    if paused is not None and paused.result.epochs >= task.stop:
        return dataclasses.replace(paused.result, trial=task.trial)
    return None


def closed_as_failure(task: Task, reason: str) -> TrialResult:
    """Ends the session a dead worker left open, as FAILURE with ``reason``, and returns it."""
    assert task.run_dir is not None
    if not is_closed(task.run_dir):
        close_cut_off(task.run_dir, task.trial, reason)
    return read_closed(task.run_dir, task.trial)
