"""--scheduler: a study on a dask cluster (a LocalCluster started here) runs the same
trials to the same results as one process; a killed worker costs only its trial; a
task dask runs again after its worker died does not trip over its first attempt."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import dask
import distributed
import pytest

from hparams_lab import Discrete, HParam, Space, run_study
from hparams_lab.execution import dask_cluster as db
from hparams_lab.execution import local as executor
from hparams_lab.cli.app import main
from hparams_lab.core.errors import UserError
from hparams_lab.execution.loop import INTERRUPTED, WORKER_DIED, WorkerDied
from hparams_lab.search.base import Task
from hparams_lab.training.fit import TrainSettings
from hparams_lab.core.trial import Trial, TrialStatus
from tests.fakes import FakeTrain, reproducible
from tests.test_workers import DATA_FUNCTION, KILLER  # KILLER: a model that SIGKILLs its process for units=13


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker processes of one thread; a task whose worker dies twice is KilledWorker."""
    models = str(tmp_path_factory.mktemp("models"))
    Path(models, "dask_killer_model.py").write_text(KILLER)
    Path(models, "dask_data_function.py").write_text(DATA_FUNCTION)
    sys.path.insert(0, models)  # spawned workers (restarted ones too) start with this sys.path
    db.own_rng_for_dask()  # the scheduler runs in this process, where the reference trials train
    try:
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                          dashboard_address=":0") as local:
                yield local
    finally:
        sys.path.remove(models)


# -- on a real cluster (slow: each worker process imports TensorFlow) -------------------

@pytest.mark.slow
def test_a_cluster_gives_the_same_trials_and_results(cluster, tmp_path):
    options = dict(trials=4, epochs=1, logdir=tmp_path)
    one = run_study(experiment="one", **options)
    on_dask = run_study(experiment="dask", scheduler=cluster.scheduler_address, **options)
    assert [r.trial.id for r in on_dask.results] == [r.trial.id for r in one.results]
    assert [r.status for r in on_dask.results] == [r.status for r in one.results]
    # Op determinism and per-trial seeds: the numbers agree across processes too.
    assert [reproducible(r.metrics) for r in on_dask.results] == [reproducible(r.metrics) for r in one.results]
    assert sorted(p.parent.name for p in (tmp_path / "dask").glob("*/trial.json")) == \
        sorted(p.parent.name for p in (tmp_path / "one").glob("*/trial.json"))
    # --keep-best 1 (the default): the dask worker wrote the best trial's model into the logdir.
    assert [p.parent.name for p in (tmp_path / "dask").glob("*/model.keras")] == [on_dask.best.run_dir.name]
    assert (tmp_path / "dask" / on_dask.best.run_dir.name / "model.keras").read_bytes()[:2] == b"PK"  # a zip


@pytest.mark.slow
def test_the_workers_load_the_data_from_a_data_function(cluster, tmp_path):
    options = dict(data="dask_data_function:regression", trials=2, epochs=1, logdir=tmp_path)
    one = run_study(experiment="one", **options)
    on_dask = run_study(experiment="dask", scheduler=cluster.scheduler_address, **options)
    assert [reproducible(r.metrics) for r in on_dask.results] == [reproducible(r.metrics) for r in one.results]
    assert all(r.status is TrialStatus.SUCCESS for r in on_dask.results)


@pytest.mark.slow
def test_hyperband_continues_trials_on_the_cluster(cluster, tmp_path):
    study = run_study(strategy="hyperband", max_epochs=3, scheduler=cluster.scheduler_address,
                      logdir=tmp_path, experiment="hb")
    assert len(study.results) == 5  # R = 3, factor 3: 3 configurations on 1 epoch, 1 goes on; 2 on 3
    assert {r.status for r in study.results} == {TrialStatus.SUCCESS}
    assert sorted(r.epochs for r in study.results) == [1, 1, 3, 3, 3]
    # One run directory per configuration: the promoted one went on in its own.
    assert len(list((tmp_path / "hb").glob("*/trial.json"))) == 5
    assert not list((tmp_path / "hb").glob("*/checkpoint.npz"))
    assert [p.parent.name for p in (tmp_path / "hb").glob("*/model.keras")] == [study.best.run_dir.name]
    assert json.loads((study.best.run_dir / "model.json").read_text())["epoch"] == study.best.epochs


@pytest.mark.slow
def test_a_killed_worker_costs_only_its_trial(cluster, tmp_path):
    space = Space([HParam("units", Discrete([8, 13, 16, 32]))])
    study = run_study(space, model="dask_killer_model:build", strategy="grid", epochs=1,
                      scheduler=cluster.scheduler_address, logdir=tmp_path, experiment="killed")
    statuses = {r.trial.hparams["units"]: r.status.value for r in study.results}
    assert statuses == {8: "SUCCESS", 13: "FAILURE", 16: "SUCCESS", 32: "SUCCESS"}
    dead = next(r for r in study.results if r.trial.hparams["units"] == 13)
    assert dead.error.startswith(WORKER_DIED)
    # allowed-failures 1: dask ran it twice; the first attempt was closed when the second began.
    first = json.loads((tmp_path / "killed" / dead.trial.id / "trial.json").read_text())
    assert (first["status"], first["error"]) == ("FAILURE", INTERRUPTED)
    assert dead.run_dir.name == f"{dead.trial.id}.2"
    assert json.loads((dead.run_dir / "trial.json").read_text())["status"] == "FAILURE"


# -- a task run again, on a worker (no cluster needed) ------------------------------------

@pytest.fixture
def train():
    return FakeTrain(epochs=1)


@pytest.fixture
def worker(tmp_path, monkeypatch, train):
    """A job whose train function is the ``train`` fake, and a task of an existing experiment."""
    job = executor.WorkerJob("digits", 0, "mlp", TrainSettings(), None)
    monkeypatch.setitem(executor._trainers, job, train)
    experiment = tmp_path / "exp"
    experiment.mkdir()
    (experiment / "experiment.json").write_text("{}")
    trial = Trial({"units": 8}, seed=0)
    return job, Task(trial, experiment / trial.id)


def test_a_task_run_again_closes_its_cut_off_attempt_and_takes_a_fresh_one(worker):
    job, task = worker
    task.run_dir.mkdir()  # its first run was cut off: no trial.json
    result = db.run_on_worker(job, task)
    assert result.status is TrialStatus.SUCCESS and result.run_dir.name == f"{task.trial.id}.2"
    first = json.loads((task.run_dir / "trial.json").read_text())
    assert (first["status"], first["error"]) == ("FAILURE", INTERRUPTED)
    (task.run_dir.parent / f"{task.trial.id}.2" / "trial.json").unlink()  # cut off again
    assert db.run_on_worker(job, task).run_dir.name == f"{task.trial.id}.3"


def test_a_task_run_again_after_it_finished_is_not_trained_again(worker, train):
    job, task = worker
    first = db.run_on_worker(job, task)
    again = db.run_on_worker(job, task)
    assert (again.status, again.metrics, again.run_dir) == (first.status, first.metrics, first.run_dir)
    assert len(train.calls) == 1


def test_a_worker_without_the_logdir_says_so(worker):
    job, task = worker
    (task.run_dir.parent / "experiment.json").unlink()
    with pytest.raises(db.WorkerSetupError, match="--logdir must be a path that every worker reaches"):
        db.run_on_worker(job, task)


def test_a_worker_that_cannot_load_the_model_or_data_says_so(worker, monkeypatch):
    job, task = worker

    def missing_data(job):
        raise UserError("data set file '/nowhere/data.npz' does not exist")

    monkeypatch.setattr(db, "worker_train", missing_data)
    with pytest.raises(db.WorkerSetupError, match="cannot prepare trials .*does not exist"):
        db.run_on_worker(job, task)
    assert not task.run_dir.exists()


def test_a_killed_task_is_a_failure_in_its_latest_attempt(worker):
    job, task = worker
    task.run_dir.mkdir()
    db.run_on_worker(job, task)  # closes <id> as interrupted, succeeds in <id>.2 ...
    (task.run_dir.parent / f"{task.trial.id}.2" / "trial.json").unlink()  # ... which is cut off after all
    error = distributed.KilledWorker("trial-x", SimpleNamespace(address="tcp://w:1"), 1)
    result = db._killed(task, error)
    assert result.status is TrialStatus.FAILURE and result.run_dir.name == f"{task.trial.id}.2"
    assert result.error.startswith(WORKER_DIED) and "2 times" in result.error


def test_a_killed_task_that_never_started_runs_again(worker):
    _, task = worker
    inner = SimpleNamespace(cancelled=lambda: False, exception=lambda: distributed.KilledWorker(
        "trial-x", SimpleNamespace(address="tcp://w:1"), 1))
    with pytest.raises(WorkerDied):
        db.DaskBackend(None, None)._outcome(inner, task)  # drive queues it again


# -- mistakes: one line, exit 2, nothing written ----------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, message", [
    (["--scheduler", f"tcp://127.0.0.1:{_free_port()}"], "no dask scheduler reachable there"),
    (["--scheduler", "localhost"], "not a scheduler address like tcp://HOST:8786"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "choose --scheduler"),
])
def test_bad_scheduler_flags(runner, tmp_path, args, message):
    logdir = tmp_path / "logs"
    result = runner.invoke(main, ["--logdir", str(logdir), "--trials", "1", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not logdir.exists()


def test_without_distributed_scheduler_says_how_to_install_it(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    logdir = tmp_path / "logs"
    result = runner.invoke(main, ["--logdir", str(logdir), "--scheduler", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2, result.output
    assert "pip install -e '.[dask]'" in result.output
    assert not logdir.exists()


def test_a_scheduler_without_workers_says_how_to_start_them(runner, tmp_path):
    logdir = tmp_path / "logs"
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp",
                                  dashboard_address=":0") as empty:
        result = runner.invoke(main, ["--logdir", str(logdir), "--scheduler", empty.scheduler_address])
    assert result.exit_code == 2, result.output
    assert f"start some with `dask worker {empty.scheduler_address} --nworkers N --nthreads 1`" in result.output
    assert not logdir.exists()
