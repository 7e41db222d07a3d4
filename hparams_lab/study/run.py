"""A study from end to end: check everything, then create the experiment and run its trials.

``run_study`` is the Python API and what ``python run.py`` calls. Every mistake a
user can make (space, strategy, model, data set, metric, paths) raises UserError
before anything is written to the logdir (``study.checks``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import platform
import time
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterator

from hparams_lab.core import groups
from hparams_lab.core import metrics as m
from hparams_lab.core import objectives as obj
from hparams_lab.core.errors import UserError
from hparams_lab.core.metrics import ranked
from hparams_lab.core.space import Space
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.execution.events import Reporter, SilentReporter
from hparams_lab.execution.local import InlineBackend, ProcessBackend, WorkerJob
from hparams_lab.execution.loop import Backend, Limits, Stopped, WorkerDied, drive
from hparams_lab.search.base import FixedSearch, Search
from hparams_lab.store import resume, rundirs
from hparams_lab.store.experiment import ExperimentRecord, refresh_union_config
from hparams_lab.store.kept import Keeper
from hparams_lab.study.checks import Prepared, check_logged, prepare, timeout_seconds
from hparams_lab.study.config import DEFAULT_SPACE, StudyConfig
from hparams_lab.study.export import StudyTrial, as_study_trial
from hparams_lab.training.compile import metric_names

__all__ = ["DEFAULT_SPACE", "StudyConfig", "StudyResult", "run_study"]


@dataclass(frozen=True)
class StudyResult:
    experiment_dir: Path
    metric: str
    results: list[TrialResult]  # every planned run, in plan order (earlier attempts' successes too)
    directions: dict[str, str] = dataclasses.field(default_factory=dict)  # --direction, if given
    classes: tuple[str, ...] | None = None  # the names of labels 0..n-1, when they were strings
    hparam_names: tuple[str, ...] = ()  # the space's, in its order
    stopped: Stopped | None = None  # a budget or --max-failures ended it before its plan did
    # Several --metric or a --constraint (core.objectives); () when one metric ranks, as ever.
    objectives: tuple[obj.Objective, ...] = ()
    constraints: tuple[obj.Constraint, ...] = ()

    def ranked(self) -> list[TrialResult]:
        """Best first; with several objectives the Pareto front first (core.objectives.ranked:
        then later fronts, infeasible trials, unranked ones and failures), each by the first."""
        if self.objectives:
            return [p.result for p in self.placed()]
        return ranked(self.results, self.metric, self.directions)

    def placed(self) -> list[obj.Placed]:
        """With several objectives: every trial in ranked order with its pareto rank and why
        it is infeasible (core.objectives.Placed); [] for one metric."""
        return obj.ranked(self.results, self.objectives, self.constraints) if self.objectives else []

    @property
    def front(self) -> list[TrialResult]:
        """The Pareto front (feasible, non-dominated), best first by the first objective;
        for one metric, the best trial alone."""
        if self.objectives:
            return obj.front(self.results, self.objectives, self.constraints)
        top = self.ranked()
        return top[:1] if top and top[0].metrics.get(self.metric) is not None else []

    @property
    def best(self) -> StudyTrial | None:
        """The best trial; ``best.load_model()`` loads its kept model, ``best.export(path)`` writes it out.

        With several objectives: the front's best by the first objective (never an infeasible trial).
        """
        if self.objectives:
            front = self.front
            return as_study_trial(front[0]) if front else None
        top = self.ranked()
        return as_study_trial(top[0]) if top and top[0].metrics.get(self.metric) is not None else None


def run_study(
    space: StudyConfig | Space | str | os.PathLike | None = None,
    *,
    reporter: Reporter | None = None,
    **options: Any,
) -> StudyResult:
    """Runs (or resumes) a study and returns every trial's result.

    Either a ``StudyConfig``, or its fields as keyword arguments (the CLI's options):
    ``space`` is a Space, a path to a .toml/.json space file, or None for the default
    (refine: the earlier experiment's space). ``strategy`` is "grid", "random",
    "refine", "one-at-a-time", "hyperband", "successive-halving" or "bayes". bayes
    needs optuna; its ``pruner`` "median" stops unpromising trials early. refine takes
    ``refine_from`` (an experiment name under ``logdir``, or a path), ``top_k``,
    ``points`` and ``widen`` (True: first widen the domains whose best trials sit at an
    edge, see core.edges); one-at-a-time ``base_hparams`` (a mapping, "units=64,optimizer=adam" or
    a .json/.toml file) and ``points``; hyperband ``factor``.

    ``data`` is a named data set ("digits", "iris", "wine", "breast_cancer", "diabetes",
    "mnist", "fashion_mnist"), an .npz or .csv path (``targets``: the CSV's output
    columns), "package.module:function", arrays ``(x, y)`` (split here, seeded) or
    ``(x_train, y_train, x_val, y_val)``, a mapping of those names (dicts of arrays for
    several inputs or outputs), tf.data Datasets ``(train, validation)``, or a function
    returning any of these. ``task`` ("multiclass", "binary", "multilabel",
    "regression") is inferred from the labels unless given; it picks the loss, metrics
    and default ``metric`` (``loss`` and ``metrics`` override: Keras names or objects).
    ``direction`` ("max"/"min") says which way ``metric`` is better when its name does
    not. ``model`` is "mlp", "cnn", "package.module:function" or a function
    ``(hparams, input_shape, n_outputs) -> keras.Model``, compiled (it keeps its loss,
    metrics and optimizer) or not. ``callbacks(hparams[, run_dir])`` returns Keras
    callbacks for each trial; ``fit(hparams, model, data, callbacks)`` trains instead
    of ``model.fit`` and must pass ``callbacks`` on. ``repeats`` trains each trial that many times with seeds seed,
    seed+1, ...; ``cv`` runs stratified K-fold cross-validation instead. An existing
    ``experiment`` is resumed: finished trials are kept, the rest run again;
    ``overwrite`` starts it over. ``workers`` runs that many trials at once in
    processes of this machine; ``scheduler`` (a dask scheduler's address,
    tcp://HOST:8786) runs them on that dask cluster instead, whose workers must reach
    ``logdir`` at the same path. ``reporter`` hears of every trial and epoch.
    """
    if isinstance(space, StudyConfig):
        if options:
            raise TypeError("run_study(config) takes no other study options; use dataclasses.replace(config, ...)")
        config = space
    else:
        config = StudyConfig.of(space=space, **options)
    from hparams_lab.training.fit import (  # Keras loads only here
        TrainSettings,
        import_keras,
        trainer,
    )

    reporter = reporter or SilentReporter()
    limits = _limits(config)  # --timeout counts from the command's start, imports and checks included
    prepared = prepare(config)
    config = prepared.config  # with the space file's [training] settings
    settings = TrainSettings.from_record(prepared.settings, prepared.metric, loss=config.loss,
                                         metrics=metric_names(config.metrics), callbacks=config.callbacks,
                                         fit=config.fit, keep_model=_kept_weights(config.keep_best, prepared.metric))
    data = prepared.data
    reporter.study_started(prepared.metric)
    if prepared.several:
        reporter.note(_objectives_note(prepared))
    if config.mixed_precision and not prepared.devices and config.scheduler is None:
        reporter.note("no GPU here: --mixed-precision is ignored, trials train in float32")
    for note in prepared.plan.notes:
        reporter.note(note)
    # The cheap checks are done. Workers start now, importing TensorFlow and loading the
    # data themselves, while this process finds what the model logs (and can still fail).
    job = WorkerJob(config.data, config.seed, config.model, settings, config.cv, data.task, config.targets)
    with _worker_processes(config, job, prepared.devices) as backend:
        if isinstance(backend, ProcessBackend):
            # The workers import TensorFlow anyway: one of them finds it, so this process
            # never loads it (on 2 cores a third import slowed the workers' own start).
            logged = _logged_by_worker(backend, job, prepared)
        else:
            import_keras()
            if prepared.devices:
                from hparams_lab.training.devices import configure_gpu

                configure_gpu()  # this process only probes the model: memory growth, not the whole GPU
            logged = _logged(prepared, settings, inline=backend is None)
        check_logged(prepared, logged)
        record = _record(prepared, logged)
        if backend is None:  # this process trains the plan's trials, one after the other
            train = trainer(data, prepared.model, settings, config.cv, config.seed,
                            upcoming=[trial.hparams for trial in prepared.plan.trials])
            backend = InlineBackend(train, reporter)
        with resume.opened(prepared.experiment_dir, record, config.overwrite):
            results, stopped = _run(prepared, backend, reporter, limits)
            if stopped is not None:  # experiment.json says what ended it; a resume clears it
                dataclasses.replace(record, created=resume.read_record(prepared.experiment_dir).created,
                                    stopped={"by": stopped.by, "message": stopped.message,
                                             "at": dt.datetime.now().isoformat(timespec="seconds")},
                                    ).write(prepared.experiment_dir)
    return StudyResult(prepared.experiment_dir, prepared.metric, results, prepared.directions, data.classes,
                       prepared.plan.space.names, stopped, prepared.objectives, prepared.constraints)


def _objectives_note(prepared: Prepared) -> str:
    """Said once when trials are ranked by several objectives (or constrained)."""
    said = ", ".join(str(o) for o in prepared.objectives)
    kept = "; ".join(str(c) for c in prepared.constraints)
    constrained = f"; infeasible unless {kept}" if kept else ""
    return (f"objectives {said}{constrained}: the leaderboard shows the Pareto front first; hyperband, the "
            f"pruner, early stopping and --keep-best rank by the first, {prepared.metric}")


def _kept_weights(keep_best: int, metric: str) -> str | None:
    """Which weights each trial saves for --keep-best: its best epoch's for a best_val_ ranking."""
    if keep_best == 0:
        return None
    return "best" if m.run_metric(metric).startswith("best_val_") else "last"


def _limits(config: StudyConfig) -> Limits:
    seconds = timeout_seconds(config.timeout)
    return Limits(deadline=None if seconds is None else time.time() + seconds, kill=config.timeout_kill,
                  max_epochs=config.max_epochs_total, retries=config.retries, max_failures=config.max_failures)


def _logged(prepared: Prepared, settings: Any, inline: bool = False) -> list[str]:
    """What every trial will log, from the first of the plan's first three trials whose model
    evaluates (one whose hparams alone break the model is that trial's FAILURE later, not the
    study's); if none does, the first one's error, as a UserError."""
    return _first_logged(_candidates(prepared), prepared.plan.space, prepared.data, prepared.model, settings, inline)


def _logged_by_worker(backend: ProcessBackend, job: WorkerJob, prepared: Prepared) -> list[str]:
    """_logged, found by one of the workers on the data it loaded (as it trains on it)."""
    try:
        return backend.call(_logged_in_worker, job, _candidates(prepared), prepared.plan.space).result()
    except WorkerDied as err:
        raise RuntimeError(f"a worker died while evaluating the first trial's model: {err}") from None


def _logged_in_worker(job: WorkerJob, candidates: list[Trial], space: Space) -> list[str]:
    from hparams_lab.execution.local import worker_loaded

    data, model = worker_loaded(job)
    return _first_logged(candidates, space, data, model, job.settings, keep=False)


def _candidates(prepared: Prepared) -> list[Trial]:
    space = prepared.plan.space
    return list(prepared.plan.trials[:3]) or [
        Trial({h.name: h.domain.grid_values()[0] for h in space}, seed=prepared.config.seed)]


def _first_logged(candidates: list[Trial], space: Space, data: Any, model: Any, settings: Any,
                  keep: bool) -> list[str]:
    from hparams_lab.training.fit import logged_metrics
    from hparams_lab.training.models import check_conditional_reads

    check_conditional_reads(model, space, data.input_shape, data.n_outputs, data.task)
    first_error = None
    for trial in candidates:
        try:
            return logged_metrics(trial, data, model, settings, keep=keep)
        except UserError as err:
            first_error = first_error or err
    raise first_error


def _run(prepared: Prepared, backend: Backend, reporter: Reporter,
         limits: Limits) -> tuple[list[TrialResult], Stopped | None]:
    config, plan, experiment_dir = prepared.config, prepared.plan, prepared.experiment_dir
    keeper = (Keeper(experiment_dir, config.keep_best, prepared.metric, prepared.directions, prepared.constraints)
              if config.keep_best else None)
    told = keeper.add if keeper is not None else None
    if plan.search is None:
        results, stopped = _run_remaining(experiment_dir, _expand(plan.trials, config.repeats, config.cv), backend,
                                          reporter, limits, told)
    else:
        results, stopped = _run_search(experiment_dir, plan.search(experiment_dir, backend.slots), backend,
                                       reporter, limits, told)
    if keeper is not None:
        keeper.settle(results)
    if prepared.group_prefix is not None:
        results = _add_group_metrics(results, prepared.group_prefix, config.repeats if config.cv is None else config.cv)
    if prepared.several:
        results = _mark_front(results, prepared.objectives, prepared.constraints)
    return results, stopped


def _mark_front(results: list[TrialResult], objectives: tuple[obj.Objective, ...],
                constraints: tuple[obj.Constraint, ...]) -> list[TrialResult]:
    """Each trial's pareto_rank (core.objectives) over the whole study, and why it is
    infeasible, into its run's events and trial.json (store.rundirs.mark_front)."""
    placed = {p.result.trial.id: p for p in obj.ranked(results, objectives, constraints)}
    out = []
    for result in results:
        place = placed.get(result.trial.id)
        if place is None or result.run_dir is None or result.status is not TrialStatus.SUCCESS:
            out.append(result)
        else:
            out.append(rundirs.mark_front(result, place.rank, place.infeasible))
    return out


def _record(prepared: Prepared, logged: list[str]) -> ExperimentRecord:
    config, data = prepared.config, prepared.data
    return ExperimentRecord(
        name=prepared.experiment_dir.name,
        space=prepared.plan.space.to_dict(),
        strategy=config.strategy,
        seed=config.seed,
        trials=prepared.plan.total,
        dataset=data.name,
        model=prepared.model.name,
        metric=prepared.metric,
        metrics=[x.to_json() for x in _declared(data.x_test is not None, prepared.group_prefix, logged,
                                                 prepared.directions, prepared.several)],
        settings=prepared.settings,
        data=data.source,
        classes=None if data.classes is None else list(data.classes),
        versions=_versions(),
        command=config.command,
        created=dt.datetime.now().isoformat(timespec="seconds"),
        objectives=[str(o) for o in prepared.objectives] if prepared.several else None,
        constraints=[str(c) for c in prepared.constraints] if prepared.constraints else None,
    )


def _declared(has_test: bool, group_prefix: str | None, logged: list[str],
              directions: dict[str, str], several: bool = False) -> list[m.Metric]:
    """Every metric the trials will write: group aggregates first, then per-run ones; with
    several objectives pareto_rank first of all (TensorBoard's filter on it shows the front)."""
    summary = m.summary_names(has_test, logged) + list(m.COST_METRICS)  # groups aggregate the costs too
    aggregates = groups.aggregate_names(summary, group_prefix) if group_prefix is not None else []
    front = [m.Metric(m.PARETO_RANK, "", "min")] if several else []
    return (front + [m.Metric(name, "", m.direction_of(name, directions)) for name in aggregates]
            + m.declared_metrics(has_test, logged, directions))


@contextlib.contextmanager
def _worker_processes(config: StudyConfig, job: WorkerJob, devices: list) -> Iterator[Backend | None]:
    """``workers`` > 1 or GPUs: a process pool, started at once (one worker per device slot);
    ``scheduler``: a dask cluster, connected to now (dask loads only then). Shut down or
    disconnected at the end."""
    from hparams_lab.training.devices import MIXED_ENV

    if config.scheduler is not None:
        from hparams_lab.execution.dask_cluster import DaskBackend

        backend = DaskBackend.connect(config.scheduler, job, gpu=config.gpus not in (None, "none"))
    elif config.workers == 1 and not devices:
        yield None
        return
    else:
        env = {MIXED_ENV: "1"} if config.mixed_precision else {}
        backend = ProcessBackend(job, config.workers, devices or None, env)
    try:
        yield backend
    finally:
        backend.close()


def _run_search(experiment_dir: Path, search: Search, backend: Backend, reporter: Reporter, limits: Limits,
                told: Any = None) -> tuple[list[TrialResult], Stopped | None]:
    """An adaptive search: it resumes from what is on disk itself; results in start order."""
    progress = resume.scan(experiment_dir)
    if progress.done or progress.pruned or progress.failed or progress.cut_off:
        pruned = f"{len(progress.pruned)} pruned, " if progress.pruned else ""
        reporter.note(f"resuming experiment {experiment_dir.name!r}: {len(progress.done)} trials done, {pruned}"
                      f"{len(progress.failed)} failed or unfinished, {len(progress.cut_off)} cut off; "
                      "the search goes on from them")
    for run_dir in progress.cut_off:
        rundirs.close_cut_off(run_dir, None)
    refresh_union_config(experiment_dir.parent)
    stopped = drive(search, backend, experiment_dir, reporter, limits, told)
    return list(search.results.values()), stopped


def _run_remaining(experiment_dir: Path, planned: list[Trial], backend: Backend, reporter: Reporter, limits: Limits,
                   told: Any = None) -> tuple[list[TrialResult], Stopped | None]:
    """Resumes: closes cut-off attempts, refreshes the union config, runs what is not done."""
    progress = resume.scan(experiment_dir)
    if progress.done or progress.failed or progress.cut_off:
        reporter.note(resume.describe(experiment_dir.name, planned, progress))
    by_id = {t.id: t for t in planned}
    for run_dir in progress.cut_off:
        rundirs.close_cut_off(run_dir, by_id.get(rundirs.trial_id_of(run_dir)))
    refresh_union_config(experiment_dir.parent)
    search = FixedSearch([t for t in planned if t.id not in progress.done])
    stopped = drive(search, backend, experiment_dir, reporter, limits, told)
    # A budget may leave planned trials unstarted: they have no result yet.
    results = [progress.done.get(t.id) or search.results.get(t.id) for t in planned]
    return [r for r in results if r is not None], stopped


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
            updated[result.trial.id] = rundirs.add_metrics(result, stats)
    return [updated.get(r.trial.id, r) for r in results]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("hparams-lab", "tensorflow", "tensorflow-cpu", "keras", "tensorboard", "numpy", "scikit-learn",
                 "optuna"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out
