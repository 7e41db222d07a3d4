"""A study from end to end: check everything, then create the experiment and run its trials.

``run_study`` is the Python API and what ``python run.py`` calls. Every mistake a
user can make (space, strategy, model, data set, metric, paths) raises UserError
before anything is written to the logdir.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import pickle
import platform
import shutil
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from hparams_lab.core import groups
from hparams_lab.core import metrics as m
from hparams_lab.core.errors import UserError
from hparams_lab.core.metrics import ranked
from hparams_lab.core.space import Discrete, HParam, RealInterval, Space
from hparams_lab.core.trial import Trial, TrialResult
from hparams_lab.execution.events import Reporter, SilentReporter
from hparams_lab.execution.local import InlineBackend, ProcessBackend, WorkerJob
from hparams_lab.execution.loop import Backend, drive
from hparams_lab.search.base import FixedSearch, Search
from hparams_lab.search.registry import plan_study
from hparams_lab.store import resume
from hparams_lab.store.experiment import (
    ExperimentRecord,
    check_experiment_name,
    create_experiment_dir,
    find_experiments,
)
from hparams_lab.store.jsonfile import read_json, write_json_atomic
from hparams_lab.store.lock import LOCK_NAME, ExperimentLock, check_unlocked
from hparams_lab.tb.summaries import scalars_summary, union_config
from hparams_lab.tb.writer import RunWriter, write_root_config
from hparams_lab.training.data import check_dataset, check_folds, load_dataset, needs_keras
from hparams_lab.training.models import (
    ModelSpec,
    check_hparam_values,
    check_hparams,
    check_optimizer,
    resolve_model,
)

# The embedded default: the seeds' units / learning rate / optimizer / extra layer /
# dropout, small enough that its 32-point grid trains in under 3 minutes on 2 cores.
DEFAULT_SPACE = Space(
    (
        HParam("units", Discrete([32, 128]), "hidden units per layer"),
        HParam("learning_rate", RealInterval(1e-3, 1e-2, log=True, points=2), "optimizer step size"),
        HParam("optimizer", Discrete(["adam", "sgd"])),
        HParam("extra_layer", Discrete([False, True]), "one more hidden layer"),
        HParam("dropout", RealInterval(0.0, 0.2, points=2), "dropout after each hidden layer"),
    )
)
DEFAULT_TRIALS = 10  # random search


@dataclass(frozen=True)
class StudyResult:
    experiment_dir: Path
    metric: str
    results: list[TrialResult]  # every planned run, in plan order (earlier attempts' successes too)

    def ranked(self) -> list[TrialResult]:
        return ranked(self.results, self.metric)

    @property
    def best(self) -> TrialResult | None:
        top = self.ranked()
        return top[0] if top and top[0].metrics.get(self.metric) is not None else None


def run_study(
    space: Space | str | os.PathLike | None = None,
    *,
    strategy: str = "random",
    trials: int | None = None,
    seed: int = 0,
    dataset: str = "digits",
    model: str | Callable[..., Any] = "mlp",
    epochs: int = 20,
    batch_size: int = 64,
    patience: int | None = None,
    max_epochs: int | None = None,
    repeats: int = 1,
    cv: int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    metric: str | None = None,
    logdir: str | os.PathLike = "logs",
    experiment: str | None = None,
    overwrite: bool = False,
    refine_from: str | os.PathLike | None = None,
    top_k: int | None = None,
    points: int | None = None,
    base_hparams: Mapping[str, Any] | str | None = None,
    factor: int | None = None,
    pruner: str | None = None,
    reporter: Reporter | None = None,
    command: str = "",
) -> StudyResult:
    """Runs (or resumes) a study and returns every trial's result.

    ``strategy`` is "grid", "random", "refine", "one-at-a-time", "hyperband",
    "successive-halving" or "bayes". ``space`` is a Space, a path to a .toml/.json
    space file, or None for the default (refine: the earlier experiment's space).
    bayes needs optuna; its ``pruner`` "median" stops unpromising trials early.
    refine takes ``refine_from`` (an experiment name under ``logdir``, or a path),
    ``top_k`` and ``points``; one-at-a-time ``base_hparams`` (a mapping,
    "units=64,optimizer=adam" or a .json/.toml file) and ``points``.
    ``model`` is "mlp", "cnn", "package.module:function" or a function
    ``(hparams, input_shape, n_classes) -> keras.Model``. ``repeats`` trains each
    trial that many times with seeds seed, seed+1, ...; ``cv`` runs stratified K-fold
    cross-validation instead. An existing ``experiment`` is resumed: finished trials
    are kept, the rest run again; ``overwrite`` starts it over. ``workers`` runs that
    many trials at once in processes of this machine; ``scheduler`` (a dask scheduler's
    address, tcp://HOST:8786) runs them on that dask cluster instead, whose workers
    must reach ``logdir`` at the same path.
    """
    from hparams_lab.training.fit import TrainSettings, import_keras, trainer  # Keras loads only here

    reporter = reporter or SilentReporter()
    space = None if space is None else _resolve_space(space)  # None: the strategy's default
    _check_counts(epochs=epochs, batch_size=batch_size, patience=patience, max_epochs=max_epochs,
                  repeats=repeats, cv=cv, workers=workers)
    if repeats > 1 and cv is not None:
        raise UserError("choose --repeats or --cv, not both")
    if scheduler is not None and workers > 1:
        raise UserError("choose --scheduler (trials on a dask cluster, as many at once as it has worker "
                        "processes) or --workers N (processes of this machine), not both")
    group_prefix = groups.prefix(repeats, cv)
    metric = metric or f"{'' if group_prefix is None else group_prefix + 'mean_'}{m.DEFAULT_METRIC}"
    _check_metric(metric, True, group_prefix)
    plan = plan_study(strategy, space, DEFAULT_SPACE, seed=seed, trials=trials, metric=metric, logdir=logdir,
                      refine_from=refine_from, top_k=top_k, points=points, base=base_hparams,
                      epochs=epochs if max_epochs is None else min(epochs, max_epochs), factor=factor,
                      pruner=pruner)
    if plan.search is not None and (repeats > 1 or cv is not None):
        raise UserError(f"--strategy {strategy} decides as results come in; it does not combine with "
                        "--repeats or --cv")
    model_spec = _check_model(model, plan.space, plan.trials,
                              "--scheduler" if scheduler is not None else "--workers" if workers > 1 else None)
    check_dataset(dataset)
    experiment_dir = _experiment_dir(Path(logdir), experiment, overwrite)
    check_unlocked(experiment_dir)
    recorded_settings = {"epochs": epochs, "batch_size": batch_size, "patience": patience,
                         "max_epochs": max_epochs, "repeats": repeats, "cv": cv, **plan.settings}
    settings = TrainSettings.from_record(recorded_settings, metric)
    # The cheap checks are done. Workers start now, importing TensorFlow while this
    # process loads the data; loading may need Keras (mnist) and can still fail.
    with _worker_processes(workers, scheduler, WorkerJob(dataset, seed, model, settings, cv)) as backend:
        if backend is None or needs_keras(dataset):
            import_keras()  # before any data set loader can pull it in unquieted
        data = load_dataset(dataset, seed=seed)
        if cv is not None:
            check_folds(data, cv)
        _check_metric(metric, data.x_test is not None, group_prefix)
        record = ExperimentRecord(
            name=experiment_dir.name,
            space=plan.space.to_dict(),
            strategy=strategy,
            seed=seed,
            trials=plan.total,
            dataset=dataset,
            model=model_spec.name,
            metric=metric,
            metrics=[x.to_json() for x in _declared(data.x_test is not None, group_prefix)],
            settings=recorded_settings,
            versions=_versions(),
            command=command,
            created=dt.datetime.now().isoformat(timespec="seconds"),
        )
        backend = backend or InlineBackend(trainer(data, model_spec, settings, cv, seed), reporter)
        with _opened(experiment_dir, record, overwrite):
            if plan.search is None:
                results = _run_remaining(experiment_dir, _expand(plan.trials, repeats, cv), backend, reporter)
            else:
                results = _run_search(experiment_dir, plan.search(experiment_dir, backend.slots), backend, reporter)
            if group_prefix is not None:
                results = _add_group_metrics(results, group_prefix, repeats if cv is None else cv)
    return StudyResult(experiment_dir, metric, results)


def _check_model(model: str | Callable[..., Any], space: Space, trials: list[Trial],
                 sent_by: str | None) -> ModelSpec:
    spec = _resolve_model(model, space)
    if sent_by is not None:  # the flag that sends trials to other processes
        _check_sendable(model, sent_by)
    for trial in trials:  # bad values fail now, not after an hour of training
        check_hparam_values(spec, trial.hparams)
    return spec


def _declared(has_test: bool, group_prefix: str | None) -> list[m.Metric]:
    """Every metric the trials will write: group aggregates first, then per-run ones."""
    summary = m.summary_names(has_test)
    aggregates = groups.aggregate_names(summary, group_prefix) if group_prefix is not None else []
    return [m.Metric(name) for name in aggregates] + m.declared_metrics(has_test)


@contextlib.contextmanager
def _worker_processes(workers: int, scheduler: str | None, job: WorkerJob) -> Iterator[Backend | None]:
    """``workers`` > 1: a process pool, started at once; ``scheduler``: a dask cluster,
    connected to now (dask loads only then). Shut down or disconnected at the end."""
    if scheduler is not None:
        from hparams_lab.execution.dask_cluster import DaskBackend

        backend = DaskBackend.connect(scheduler, job)
    elif workers == 1:
        yield None
        return
    else:
        backend = ProcessBackend(job, workers)
    try:
        yield backend
    finally:
        backend.close()


def _run_search(experiment_dir: Path, search: Search, backend: Backend,
                reporter: Reporter) -> list[TrialResult]:
    """An adaptive search: it resumes from what is on disk itself; results in start order."""
    progress = resume.scan(experiment_dir)
    if progress.done or progress.pruned or progress.failed or progress.cut_off:
        pruned = f"{len(progress.pruned)} pruned, " if progress.pruned else ""
        reporter.note(f"resuming experiment {experiment_dir.name!r}: {len(progress.done)} trials done, {pruned}"
                      f"{len(progress.failed)} failed or unfinished, {len(progress.cut_off)} cut off; "
                      "the search goes on from them")
    for run_dir in progress.cut_off:
        resume.close_cut_off(run_dir, None)
    _write_root_config(experiment_dir)
    drive(search, backend, experiment_dir, reporter)
    return list(search.results.values())


def _write_root_config(experiment_dir: Path) -> None:
    """The logdir's one hparams config: the union of every experiment's space and metrics."""
    write_root_config(experiment_dir.parent, union_config(
        (Space.from_dict(rec.space), rec.declared_metrics) for _, rec in find_experiments(experiment_dir.parent)
    ))


def _run_remaining(experiment_dir: Path, planned: list[Trial], backend: Backend,
                   reporter: Reporter) -> list[TrialResult]:
    """Resumes: closes cut-off attempts, refreshes the root config, runs what is not done."""
    progress = resume.scan(experiment_dir)
    if progress.done or progress.failed or progress.cut_off:
        reporter.note(resume.describe(experiment_dir.name, planned, progress))
    by_id = {t.id: t for t in planned}
    for run_dir in progress.cut_off:
        resume.close_cut_off(run_dir, by_id.get(resume.trial_id_of(run_dir)))
    _write_root_config(experiment_dir)
    search = FixedSearch([t for t in planned if t.id not in progress.done])
    drive(search, backend, experiment_dir, reporter)
    return [progress.done.get(t.id) or search.results[t.id] for t in planned]


def _expand(base: list[Trial], repeats: int, cv: int | None) -> list[Trial]:
    """Each planned point once, R times with seeds seed..seed+R-1, or once per CV fold."""
    if cv is not None:
        return [dataclasses.replace(t, fold=k) for t in base for k in range(cv)]
    return [dataclasses.replace(t, seed=t.seed + r, repeat=r) for t in base for r in range(repeats)]


def _add_group_metrics(results: list[TrialResult], group_prefix: str, expected: int) -> list[TrialResult]:
    """Once a group is complete, its mean/std go into each member's logs and trial.json."""
    updated = {}
    for members in groups.by_group(results).values():
        stats = groups.aggregate(members, group_prefix, expected)
        if not stats or all(r.metrics.get(k) == v for r in members for k, v in stats.items()):
            continue
        for result in members:
            with RunWriter(result.run_dir) as writer:
                writer.write(scalars_summary(stats), step=max(result.epochs - 1, 0))
            new = dataclasses.replace(result, metrics={**result.metrics, **stats})
            record = read_json(result.run_dir / "trial.json")
            write_json_atomic(result.run_dir / "trial.json", {**record, "metrics": new.metrics})
            updated[result.trial.id] = new
    return [updated.get(r.trial.id, r) for r in results]


@contextlib.contextmanager
def _opened(experiment_dir: Path, record: ExperimentRecord, overwrite: bool) -> Iterator[None]:
    """Creates, resumes or starts over an experiment, holding its lock throughout."""
    resuming = experiment_dir.exists() and any(experiment_dir.iterdir()) and not overwrite
    if resuming:
        old = resume.read_record(experiment_dir)
        resume.check_resumable(old, record)
        record = dataclasses.replace(record, created=old.created)
    create_experiment_dir(experiment_dir)
    with ExperimentLock(experiment_dir):
        if overwrite:
            for path in experiment_dir.iterdir():
                if path.name != LOCK_NAME:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        record.write(experiment_dir)
        yield


def _resolve_space(space: Space | str | os.PathLike) -> Space:
    if isinstance(space, Space):
        return space
    return Space.load(space)


def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        minimum = {"patience": 0, "cv": 2}.get(name, 1)
        if value is not None and (not isinstance(value, int) or value < minimum):
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be a whole number >= {minimum}, got {value!r}")


def _resolve_model(model: str | Callable[..., Any], space: Space) -> ModelSpec:
    if callable(model):
        name = f"{getattr(model, '__module__', '?')}:{getattr(model, '__qualname__', repr(model))}"
        spec = ModelSpec(name=name, builder=model, builtin=False, hparams=frozenset())
    else:
        spec = resolve_model(model)
    check_hparams(spec, space.names)
    if "optimizer" in space.names:
        domain = space["optimizer"].domain
        if not isinstance(domain, Discrete):
            raise UserError("hparam 'optimizer' must be a list of optimizer names")
        for name in domain.values:
            check_optimizer(name)
    return spec


def _check_sendable(model: str | Callable[..., Any], flag: str) -> None:
    """Worker processes import the model function by name: it must be importable."""
    try:
        pickle.dumps(model)
    except (pickle.PicklingError, AttributeError, TypeError):
        raise UserError(
            f"{flag} needs a model function importable by name (module:function); "
            f"{getattr(model, '__qualname__', model)!r} is defined where worker processes can't import it"
        ) from None


def _check_metric(metric: str, has_test: bool, group_prefix: str | None) -> None:
    def names(test: bool) -> list[str]:
        summary = m.summary_names(test)
        return summary + (groups.aggregate_names(summary, group_prefix) if group_prefix is not None else [])

    allowed = names(has_test)
    if metric not in allowed:
        why = "this data set has no test split" if metric in names(True) else "unknown"
        raise UserError(f"--metric {metric!r}: {why}; choose one of {', '.join(allowed)}")


def _experiment_dir(logdir: Path, name: str | None, overwrite: bool) -> Path:
    """Where the experiment goes; checks paths without creating anything."""
    if logdir.exists() and not logdir.is_dir():
        raise UserError(f"logdir {str(logdir)!r} is a file, not a directory")
    existing = logdir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"logdir {str(logdir)!r} cannot be created: {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"logdir {str(logdir)!r} is not writable")
    if name is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name, n = stamp, 2
        while (logdir / name).exists():  # two studies started in the same second
            name, n = f"{stamp}-{n}", n + 1
    check_experiment_name(name)
    path = logdir / name
    if overwrite and path.exists() and any(path.iterdir()) and not (path / "experiment.json").exists():
        raise UserError(f"--overwrite: {str(path)!r} is not an hparams_lab experiment; refusing to delete it")
    return path


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("hparams-lab", "tensorflow", "tensorflow-cpu", "keras", "tensorboard", "numpy", "scikit-learn",
                 "optuna"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out
