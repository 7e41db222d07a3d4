"""Trials on N worker processes of this machine (``--workers N``).

Workers are spawned (not forked: TensorFlow's runtime does not survive a fork),
each with its share of the CPU threads, and each loads Keras and the data set
once. The parent plans, reserves every attempt directory, holds the experiment
lock and reports; a worker runs whole trials through the same ``run_trial`` as a
sequential study, so logs are identical. A worker that dies (killed, out of
memory) costs only the trial it was running: that attempt is closed as FAILURE
and the trials it never started go to a fresh pool.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hparams_lab.resume import close_cut_off, read_closed
from hparams_lab.runner import Reporter, SilentReporter, attempt_dir, run_trial
from hparams_lab.trial import Trial, TrialResult

WORKER_DIED = "the worker process running this trial died"
INTERRUPTED = "interrupted: a worker process died while this trial ran; it runs again"


@dataclass(frozen=True)
class WorkerJob:
    """What a worker needs to build the train function: plain, picklable values."""

    dataset: str
    seed: int
    model: str | Callable[..., Any]  # a name resolve_model knows, or an importable function
    settings: Any  # training.TrainSettings
    folds: int | None


_worker: dict[str, Any] = {}  # per worker process: its train function


def _start_worker(job: WorkerJob, threads: int) -> None:
    # Thread counts must be set before TensorFlow's runtime starts.
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    from hparams_lab.data import load_dataset
    from hparams_lab.models import ModelSpec, resolve_model
    from hparams_lab.training import import_keras, trainer

    import_keras()
    if isinstance(job.model, str):
        spec = resolve_model(job.model)
    else:
        spec = ModelSpec(name=job.model.__qualname__, builder=job.model, builtin=False, hparams=frozenset())
    data = load_dataset(job.dataset, seed=job.seed)
    _worker["train"] = trainer(data, spec, job.settings, job.folds, job.seed)


def _run_in_worker(trial: Trial, run_dir: Path) -> TrialResult:
    return run_trial(trial, _worker["train"], run_dir, SilentReporter())


def run_parallel(
    trials: Sequence[Trial],
    job: WorkerJob,
    experiment_dir: Path,
    workers: int,
    reporter: Reporter | None = None,
) -> list[TrialResult]:
    """Runs every trial on ``workers`` processes; results come back in trial order.

    When a worker dies, the pool stops its other workers too, so every trial in flight
    is a suspect: their attempts are closed as interrupted and each suspect runs again
    alone. Only one that kills its solo worker as well is a FAILURE.
    """
    pool = _Pool(trials, job, experiment_dir, reporter or SilentReporter())
    todo = list(range(len(trials)))
    while todo:
        suspects = pool.run(todo, workers, INTERRUPTED)
        todo = [i for i in todo if i not in pool.results and i not in suspects]
        for i in suspects:
            for culprit in pool.run([i], 1, WORKER_DIED):  # it killed a worker of its own
                pool.keep_closed(culprit)
    return [pool.results[i] for i in range(len(trials))]


class _Pool:
    """Runs trials on fresh process pools and keeps what came back."""

    def __init__(self, trials: Sequence[Trial], job: WorkerJob, experiment_dir: Path, reporter: Reporter):
        self.trials, self.job, self.experiment_dir, self.reporter = trials, job, experiment_dir, reporter
        self.results: dict[int, TrialResult] = {}
        self.run_dirs: dict[int, Path] = {}

    def run(self, todo: list[int], workers: int, reason: str) -> list[int]:
        """Runs ``todo`` until done or a worker dies; closes the attempts the death cut off
        (with ``reason``) and returns their trials."""
        threads = max(1, (os.cpu_count() or 1) // workers)
        for i in todo:  # chosen here, in one process, so workers never race for a name
            self.run_dirs[i] = attempt_dir(self.experiment_dir, self.trials[i].id)
        broken = False
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(self.job, threads)) as pool:
            futures: dict[Future, int] = {
                pool.submit(_run_in_worker, self.trials[i], self.run_dirs[i]): i for i in todo
            }
            while futures and not broken:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    i = futures.pop(future)
                    try:
                        self._keep(i, future.result())
                    except BrokenProcessPool:
                        broken = True
        return self._cut_off(todo, reason) if broken else []

    def _cut_off(self, todo: list[int], reason: str) -> list[int]:
        cut = []
        for i in todo:
            run_dir = self.run_dirs[i]
            if i in self.results or not run_dir.exists():
                continue  # finished, or never started: it simply runs again
            if (run_dir / "trial.json").exists():  # finished just before the pool broke
                self._keep(i, read_closed(run_dir, self.trials[i]))
                continue
            close_cut_off(run_dir, self.trials[i], reason)
            cut.append(i)
        return cut

    def keep_closed(self, i: int) -> None:
        self._keep(i, read_closed(self.run_dirs[i], self.trials[i]))

    def _keep(self, i: int, result: TrialResult) -> None:
        self.results[i] = result
        self.reporter.trial_finished(result, len(self.results), len(self.trials))
