"""``--scheduler ADDRESS``: a study's trials on an existing dask.distributed cluster.

``DaskBackend`` is one more ``execution.loop.Backend``: it submits each task to the
cluster and hands ``drive`` a ``concurrent.futures`` future, so a cluster study runs
through the same loop, the same ``run_task`` and writes the same logs as one on
this machine. Workers write their trials' run directories themselves: the logdir
must be one path that this process and every worker reach (a shared file system).

A worker process runs one trial at a time, whatever its ``--nthreads`` (Keras
keeps process-wide state: the random seed, the session that ``clear_session``
resets), so ``slots`` counts worker processes; ``dask worker ADDRESS --nworkers N
--nthreads 1`` is the setup to use. A worker builds its train function (Keras, the
data set) on its first task, through ``execution.local.worker_train``.

When a worker process dies, dask runs its tasks again on another worker, up to
the scheduler's ``allowed-failures`` times; a task whose workers all died fails
with ``KilledWorker``, and that trial is recorded as FAILURE. A task run again
finds the attempt directory its first run created: that attempt is closed as
interrupted and the trial runs again in a fresh one (a continued hyperband
segment goes on from its checkpoint instead). Only this module imports
``distributed``, and only once a study asks for a cluster.

What goes to the cluster is ``pickle.loads`` and bytes that run the task when
unpickled: the scheduler never unpickles hparams_lab's classes (it need not have
hparams_lab installed), and a worker without hparams_lab fails the task with a
ModuleNotFoundError, where an unpicklable message would leave the study hanging.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import socket
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from hparams_lab.core.errors import UserError, one_line
from hparams_lab.core.trial import TrialResult
from hparams_lab.execution.local import WorkerJob, run_in_worker, worker_train
from hparams_lab.execution.loop import (
    INTERRUPTED,
    WORKER_DIED,
    WorkerDied,
    closed_as_failure,
    recorded,
)
from hparams_lab.search.base import Task
from hparams_lab.store.rundirs import attempt_dir, latest_attempt

CONNECT_TIMEOUT_S = 5.0
SLOTS_REFRESH_S = 5.0  # how often ``slots`` asks the scheduler how many workers it has
INSTALL_HINT = "pip install -e '.[dask]'"
WORKER_HINT = "dask worker {address} --nworkers N --nthreads 1"


class WorkerSetupError(UserError):
    """A dask worker cannot run the study's trials: no shared logdir, model or data set.

    Raised by a worker on a task, so after the experiment directory exists: the
    study stops, and running it again once the workers are fixed resumes it.
    """


class DaskBackend:
    """Tasks on the dask cluster whose scheduler is at ``address``."""

    def __init__(self, client: Any, job: WorkerJob, gpu: bool = False):
        self._client, self.job = client, job
        self._resources = {"GPU": 1} if gpu else None  # --gpus: one trial per GPU worker (README)
        self._slots, self._counted = 1, -float("inf")
        self._pending: set[Any] = set()  # dask futures in flight: a dropped one is cancelled

    @classmethod
    def connect(cls, address: str, job: WorkerJob, gpu: bool = False) -> "DaskBackend":
        """Connects, or raises UserError (no ``distributed``, no scheduler there, no workers)."""
        try:
            import distributed
        except ImportError:
            raise UserError(f"--scheduler needs dask.distributed, which is not installed: {INSTALL_HINT}") from None
        _check_reachable(address)
        try:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, ValueError) as err:
            raise UserError(f"--scheduler {address!r}: cannot connect to a dask scheduler there ({err})") from None
        backend = cls(client, _portable(job), gpu)
        if backend._workers() == 0:
            client.close()
            raise UserError(f"--scheduler {address!r}: the scheduler has no workers; start some with "
                            f"`{WORKER_HINT.format(address=address)}`")
        return backend

    @property
    def slots(self) -> int:
        """Worker processes (each runs one trial at a time), counted again now and then."""
        if time.monotonic() - self._counted >= SLOTS_REFRESH_S:
            self._slots, self._counted = max(1, self._workers()), time.monotonic()
        return self._slots

    def _workers(self) -> int:
        return len(self._client.nthreads())

    def submit(self, task: Task) -> Future:
        task = dataclasses.replace(task, run_dir=Path(os.path.abspath(task.run_dir)))
        inner = self._client.submit(pickle.loads, pickle.dumps(_OnWorker(self.job, task)), pure=False,
                                    resources=self._resources,
                                    key=f"trial-{task.trial.id}-{uuid.uuid4().hex[:8]}")
        self._pending.add(inner)
        outer: Future = Future()
        inner.add_done_callback(lambda done: self._relay(done, task, outer))  # runs in dask's callback thread
        return outer

    def _relay(self, inner: Any, task: Task, outer: Future) -> None:
        self._pending.discard(inner)
        try:
            outer.set_result(self._outcome(inner, task))
        except BaseException as err:  # whatever happens, drive must hear of it
            outer.set_exception(err)

    def _outcome(self, inner: Any, task: Task) -> TrialResult:
        from distributed import KilledWorker

        if inner.cancelled():
            raise RuntimeError(f"dask cancelled trial {task.trial.id} (lost the scheduler?)")
        error = inner.exception()
        if error is None:
            return inner.result()
        if isinstance(error, ImportError) and (error.name or "").startswith("hparams_lab"):
            raise WorkerSetupError(f"a dask worker cannot import hparams_lab ({error}); install it, "
                                   "in the same environment as here, wherever the workers run") from None
        if not isinstance(error, KilledWorker):
            raise error
        if not task.run_dir.exists():
            raise WorkerDied(str(error))  # it never started, so it killed nobody: drive runs it again
        return _killed(task, error)

    def restart(self) -> None:
        pass  # dask's nannies restart dead workers themselves

    def close(self) -> None:
        self._client.close()


def _check_reachable(address: str) -> None:
    """One clear line, fast, for a bad or unreachable address (before dask's own retries)."""
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme != "tcp":
            return  # tls, ws...: dask's own connection says what went wrong
        host, port = parse_host_port(location)
    except ValueError as err:
        raise UserError(f"--scheduler {address!r}: not a scheduler address like tcp://HOST:8786 ({err})") from None
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise UserError(f"--scheduler {address!r}: no dask scheduler reachable there "
                        f"({err.strerror or err or 'timed out'}); start one with `dask scheduler`") from None


def _portable(job: WorkerJob) -> WorkerJob:
    """The job with a data file (.npz, .csv) as an absolute path, the same for every worker."""
    if not str(job.data).endswith((".npz", ".csv")):
        return job  # a data set name, or a module:function every worker imports
    return dataclasses.replace(job, data=os.path.abspath(os.path.expanduser(job.data)))


def _killed(task: Task, error: Exception) -> TrialResult:
    """A trial whose every worker died (dask's KilledWorker): FAILURE, in its latest attempt."""
    if task.start == 0:
        task = dataclasses.replace(task, run_dir=latest_attempt(task.run_dir.parent, task.trial.id))
    done = recorded(task)  # it may have finished just before its worker died
    if done is not None and done.error != INTERRUPTED:
        return done
    tries = getattr(error, "allowed_failures", 0) + 1
    return closed_as_failure(task, f"{WORKER_DIED} (dask ran it {tries} times; each time its worker died)")


# -- on the workers --------------------------------------------------------------------

_one_trial = threading.Lock()  # per worker process: Keras state is process-wide


@dataclasses.dataclass(frozen=True)
class _OnWorker:
    """A task that, unpickled (by the ``pickle.loads`` dask runs), runs on the worker."""

    job: WorkerJob
    task: Task

    def __reduce__(self):
        return run_on_worker, (self.job, self.task)


def run_on_worker(job: WorkerJob, task: Task) -> TrialResult:
    """What a dask worker runs for a task; safe to run again after a worker died."""
    with _one_trial:
        own_rng_for_dask()
        _check_worker(job, task)
        again = retried(task)
        if isinstance(again, TrialResult):
            return again
        return run_in_worker(job, again)


def retried(task: Task) -> Task | TrialResult:
    """A task as dask may run it again: its result if an earlier run got it, else what to run.

    An earlier run cut off by its worker's death left an open attempt directory: it
    is closed as interrupted and the trial goes to a fresh one. A continued segment
    (``start`` > 0) goes on from its checkpoint, in its own directory.
    """
    if not task.run_dir.exists():
        return task  # the first run
    if task.start > 0:
        return recorded(task) or task
    last = dataclasses.replace(task, run_dir=latest_attempt(task.run_dir.parent, task.trial.id))
    done = recorded(last)
    if done is not None and done.error != INTERRUPTED:
        return done  # it finished, but its worker died before dask heard
    if done is None:
        closed_as_failure(last, INTERRUPTED)
    return dataclasses.replace(task, run_dir=attempt_dir(task.run_dir.parent, task.trial.id))


def _check_worker(job: WorkerJob, task: Task) -> None:
    """This worker sees the experiment and can build the train function, or says why not."""
    experiment_dir = task.run_dir.parent
    if not (experiment_dir / "experiment.json").exists():
        raise WorkerSetupError(
            f"dask worker {_worker_name()} does not see the experiment directory {str(experiment_dir)!r}: "
            "--logdir must be a path that every worker reaches (a shared file system)")
    try:
        worker_train(job)
    except Exception as err:
        raise WorkerSetupError(
            f"dask worker {_worker_name()} cannot prepare trials ({one_line(err)}); every worker needs "
            "hparams_lab, the model's module and the data set at the same path") from None


def own_rng_for_dask() -> None:
    """Gives dask's ``sizeof`` a random generator of its own, in this process.

    A dask worker sizes every message it sends (heartbeats too) from its event-loop
    thread, sampling big ones with Python's global ``random``; Keras draws the
    default seeds of a model's initializers and dropout from that same generator
    after ``set_random_seed``. Sharing it, a trial's numbers would depend on when a
    heartbeat went out.
    """
    import dask.sizeof

    if getattr(dask.sizeof, "random", None) is random:
        dask.sizeof.random = random.Random()


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return socket.gethostname()
