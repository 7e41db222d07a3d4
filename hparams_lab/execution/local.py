"""Backends that run a study's tasks: this process, or N worker processes of this machine.

Each takes ``search.base.Task``s and returns ``concurrent.futures`` futures, so the
study loop (``execution.loop.drive``) is the same for all of them; a future fails with
``WorkerDied`` when the process running its task died. Workers are spawned (not
forked: TensorFlow's runtime does not survive a fork), each with its share of the
CPU threads, and each loads Keras and the data set once, when it starts. Workers
run tasks through the same ``run_task`` as one process, so logs are identical.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hparams_lab.core.contract import TrainFn
from hparams_lab.core.trial import Trial, TrialResult
from hparams_lab.execution.attempt import run_task
from hparams_lab.execution.devices import Slot
from hparams_lab.execution.events import Reporter, SilentReporter
from hparams_lab.execution.loop import WorkerDied, drive
from hparams_lab.search.base import FixedSearch, Task


@dataclass(frozen=True)
class WorkerJob:
    """What a worker needs to build the train function: plain, picklable values."""

    data: str  # a data set name, a file, or 'module:function' (training.data.sendable)
    seed: int
    model: str | Callable[..., Any]  # a name resolve_model knows, or an importable function
    settings: Any  # training.TrainSettings
    folds: int | None
    task: str | None = None  # the study's, so a worker's labels mean the same
    targets: tuple[str, ...] = ()


class InlineBackend:
    """One task at a time, in this process (``--workers 1``): live per-epoch progress."""

    slots = 1

    def __init__(self, train: TrainFn, reporter: Reporter | None = None):
        self.train, self.reporter = train, reporter or SilentReporter()

    def submit(self, task: Task) -> Future:
        future: Future = Future()
        future.set_result(_run(task, self.train, self.reporter))
        return future

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


def run_trials(
    trials: Sequence[Trial],
    train: TrainFn,
    experiment_dir: Path,
    reporter: Reporter | None = None,
) -> list[TrialResult]:
    """Trials one after the other in this process, through the study loop; results in order."""
    search = FixedSearch(trials)
    drive(search, InlineBackend(train, reporter), experiment_dir, reporter)
    return [search.results[t.id] for t in trials]


class ProcessBackend:
    """``workers`` spawned processes; they start (and import TensorFlow) at once, while
    the parent goes on preparing the study.

    ``devices`` (execution.devices.plan_slots) puts each worker on its GPU, capped when
    several share one; ``env`` is more of each worker's environment (mixed precision).
    """

    def __init__(self, job: WorkerJob, workers: int, devices: Sequence[Slot] | None = None,
                 env: dict[str, str] | None = None):
        self.job, self.env = job, dict(env or {})
        self.devices = list(devices) if devices else [None] * workers
        self.slots = len(self.devices)
        self._pool: ProcessPoolExecutor | None = self._start(self.devices)

    @property
    def on_gpus(self) -> bool:
        return any(slot is not None and slot.gpu is not None for slot in self.devices)

    def _start(self, devices: Sequence[Slot | None]) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // len(devices))
        handed_out = context.Queue()  # each worker takes one device as it starts
        for slot in devices:
            handed_out.put(slot)
        pool = ProcessPoolExecutor(len(devices), mp_context=context, initializer=_start_worker,
                                   initargs=(self.job, threads, handed_out, self.env))
        for _ in devices:  # a process is spawned per waiting task: start them all now
            pool.submit(int)
        return pool

    def submit(self, task: Task) -> Future:
        if self._pool is None:  # after a task that ran alone
            self._pool = self._start(self.devices)
        return _deaths_as_worker_died(self._pool.submit(run_in_worker, self.job, task))

    def call(self, fn: Callable[..., Any], *args: Any) -> Future:
        """``fn(*args)`` in one of the workers (``fn`` importable by name); a death is WorkerDied."""
        if self._pool is None:
            self._pool = self._start(self.devices)
        return _deaths_as_worker_died(self._pool.submit(fn, *args))

    def submit_alone(self, task: Task) -> Future:
        """``task`` alone on the first GPU, with its whole memory (the loop calls this only
        when nothing else runs): the other workers are stopped first, so that none holds
        any of the device; they start again with the next ``submit``."""
        gpu = next(slot.gpu for slot in self.devices if slot is not None and slot.gpu is not None)
        self.close()
        pool = self._start([Slot(gpu)])
        future = _deaths_as_worker_died(pool.submit(run_in_worker, self.job, task))
        future.add_done_callback(lambda _: pool.shutdown(wait=False))
        return future

    def restart(self) -> None:
        self.close()
        self._pool = self._start(self.devices)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _deaths_as_worker_died(inner: Future) -> Future:
    outer: Future = Future()

    def relay(done: Future) -> None:
        error = done.exception()
        if isinstance(error, BrokenProcessPool):
            outer.set_exception(WorkerDied(str(error)))
        elif error is not None:
            outer.set_exception(error)
        else:
            outer.set_result(done.result())

    inner.add_done_callback(relay)
    return outer


_trainers: dict[WorkerJob, TrainFn] = {}  # per worker process: the train function of each job
_loaded: dict[WorkerJob, tuple[Any, Any]] = {}  # ... and its data set and model spec


def worker_train(job: WorkerJob) -> TrainFn:
    """This process's train function for ``job``, built (Keras and data loaded) on first use."""
    if job not in _trainers:
        from hparams_lab.training.data import load_data
        from hparams_lab.training.fit import import_keras, trainer
        from hparams_lab.training.models import model_spec

        import_keras()
        from hparams_lab.training.devices import configure_gpu

        configure_gpu()  # this worker's memory cap or memory growth, and mixed precision, before any op
        spec = model_spec(job.model)
        data = load_data(job.data, seed=job.seed, task=job.task, targets=job.targets)
        _trainers[job] = trainer(data, spec, job.settings, job.folds, job.seed)
        _loaded[job] = (data, spec)
    return _trainers[job]


def worker_loaded(job: WorkerJob) -> tuple[Any, Any]:
    """This process's data set and model spec for ``job`` (training.data.Dataset, ModelSpec)."""
    worker_train(job)
    return _loaded[job]


_device: list[str | None] = [None]  # this worker process's device label ("GPU 0"), once it has one


def _start_worker(job: WorkerJob, threads: int, handed_out: Any = None, env: dict[str, str] | None = None) -> None:
    # Thread counts and the device must be set before TensorFlow's runtime starts.
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.update(env or {})
    slot = handed_out.get() if handed_out is not None else None
    if slot is not None:
        os.environ.update(slot.env())
        _device[0] = slot.label
    worker_train(job)


def run_in_worker(job: WorkerJob, task: Task):
    """What a worker process runs for one task (a dask worker too)."""
    return _run(task, worker_train(job), SilentReporter(), _device[0] or _dask_device())


def _dask_device() -> str | None:
    """A dask worker started with CUDA_VISIBLE_DEVICES=i (README): its GPU."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return f"GPU {visible}" if visible.isdigit() else None


def _run(task: Task, train: TrainFn, reporter: Reporter, device: str | None = None) -> TrialResult:
    return run_task(task.trial, train, task.run_dir, reporter, start=task.start, stop=task.stop, prune=task.prune,
                    deadline=task.deadline, device=device, alone=task.alone)
