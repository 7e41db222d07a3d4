"""What every search is: it is asked for tasks and told what came of them.

The ask-and-tell shape of optuna and keras-tuner's Oracle. grid, random, refine and
one-at-a-time are a list planned up front (``FixedSearch``); hyperband and bayes
decide as results come in. The study loop (``execution.loop.drive``) runs any of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hparams_lab.core.trial import Trial, TrialResult


@dataclass(frozen=True)
class Task:
    """One unit of work: a whole trial, or (hyperband) epochs ``start``..``stop`` of one.

    ``run_dir`` None means a fresh attempt directory, chosen by the loop; a
    continued trial names the directory it goes on writing.
    """

    trial: Trial
    run_dir: Path | None = None
    start: int = 0
    stop: int | None = None  # None: train the trial's full epochs and close its session
    prune: Any = None  # bayes --pruner: a picklable core.contract.PruneCheck the worker asks after each epoch
    deadline: float | None = None  # --timeout-kill: wall-clock time (time.time()) at which the attempt stops
    alone: bool = False  # a retry after running out of GPU memory: on a whole device, no other trial beside


class Search(Protocol):
    total: int  # tasks this search plans, for progress lines
    results: dict[str, TrialResult]  # trial id -> its final result, once it has one

    def ask(self) -> Task | None:
        """The next task to start, or None when nothing can start until a running task ends."""

    def tell(self, task: Task, result: TrialResult) -> None:
        """What came of a task (its trial.json is written)."""


class FixedSearch:
    """A list of trials planned up front (grid, random, refine, one-at-a-time)."""

    def __init__(self, trials: Sequence[Trial]):
        self.total = len(trials)
        self._todo = deque(trials)
        self.results: dict[str, TrialResult] = {}

    def ask(self) -> Task | None:
        return Task(self._todo.popleft()) if self._todo else None

    def tell(self, task: Task, result: TrialResult) -> None:
        self.results[task.trial.id] = result
