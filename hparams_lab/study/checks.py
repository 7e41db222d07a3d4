"""Every check of a study's config, in one place, before anything is written to the logdir.

``prepare`` turns a ``StudyConfig`` into what running it needs (the data, the plan,
the model, the ranking metric, the experiment directory, the settings to record) or
raises UserError with one line saying what is wrong. It loads the data (the task, and
so the default metric, come from the labels) but imports TensorFlow only where the data
needs it (mnist, tf.data, a data function); ``check_logged`` then checks --metric
against what the model really logs (``training.fit.logged_metrics``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hparams_lab.core import groups
from hparams_lab.core import metrics as m
from hparams_lab.core import objectives as obj
from hparams_lab.core.errors import UserError
from hparams_lab.core.space import Discrete, Space
from hparams_lab.core.trial import Trial
from hparams_lab.search.registry import STRATEGIES, Plan, plan_study
from hparams_lab.store.experiment import check_experiment_name
from hparams_lab.store.lock import check_unlocked
from hparams_lab.study.config import DEFAULT_SPACE, StudyConfig
from hparams_lab.training import compile as training_compile
from hparams_lab.training.data import (
    Dataset,
    check_data_source,
    check_folds,
    load_data,
    needs_keras,
    sendable,
)
from hparams_lab.training.models import (
    ModelSpec,
    check_hparam_values,
    check_hparams,
    check_optimizer,
    model_spec,
)
from hparams_lab.training.tasks import check_task


@dataclass(frozen=True)
class Prepared:
    """A checked study, ready to run."""

    config: StudyConfig
    data: Dataset
    plan: Plan
    model: ModelSpec
    metric: str  # what ranks trials
    directions: dict[str, str]  # from --direction: {the ranked metric's Keras name: "max"/"min"}
    group_prefix: str | None  # "" with --repeats, "cv_" with --cv, None otherwise
    experiment_dir: Path
    settings: dict[str, Any]  # experiment.json's settings: training and the strategy's options
    devices: list = dataclasses.field(default_factory=list)  # each local worker's GPU (execution.devices.Slot); [] on CPUs
    # Several --metric, or any --constraint (core.objectives): every objective, the first is ``metric``;
    # () for a single --metric, ranked by core.metrics.ranked as ever.
    objectives: tuple[obj.Objective, ...] = ()
    constraints: tuple[obj.Constraint, ...] = ()

    @property
    def several(self) -> bool:
        """Whether trials are ranked by core.objectives (a front), not by ``metric`` alone."""
        return bool(self.objectives)


def prepare(config: StudyConfig) -> Prepared:
    """Checks a study's config and loads its data; UserError for the first thing wrong, nothing written."""
    space = None if config.space is None else _resolve_space(config.space)  # None: the strategy's default
    config = _with_training_table(config, space)
    _check_counts(epochs=config.epochs, batch_size=config.batch_size, patience=config.patience,
                  max_epochs=config.max_epochs, repeats=config.repeats, cv=config.cv, workers=config.workers,
                  max_epochs_total=config.max_epochs_total, max_failures=config.max_failures)
    if not isinstance(config.retries, int) or isinstance(config.retries, bool) or config.retries < 0:
        raise UserError(f"--retries must be a whole number >= 0, got {config.retries!r}")
    if not isinstance(config.keep_best, int) or isinstance(config.keep_best, bool) or config.keep_best < 0:
        raise UserError(f"--keep-best must be a whole number >= 0, got {config.keep_best!r}")
    if config.timeout_kill and config.timeout is None:
        raise UserError("--timeout-kill needs --timeout")
    timeout_seconds(config.timeout)
    devices = _devices(config)
    if config.repeats > 1 and config.cv is not None:
        raise UserError("choose --repeats or --cv, not both")
    if config.scheduler is not None and config.workers > 1:
        raise UserError("choose --scheduler (trials on a dask cluster, as many at once as it has worker "
                        "processes) or --workers N (processes of this machine), not both")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or not 0 <= config.seed < 2**32:
        # numpy and scikit-learn take 32-bit seeds; trials use seed, seed+1, ... for repeats
        raise UserError(f"--seed must be a whole number from 0 to {2**32 - 1}, got {config.seed!r}")
    if config.direction not in (None, *m.DIRECTIONS):
        raise UserError(f"--direction {config.direction!r}: choose max or min")
    check_task(config.task)
    check_data_source(config.data, targets=config.targets)
    if config.sent_by is not None:
        _check_sendable_data(config.data, config.sent_by)
        for hook, what in ((config.callbacks, "the callbacks"), (config.fit, "the fit")):
            if hook is not None:
                _check_sendable(hook, config.sent_by, what)
    group_prefix = groups.prefix(config.repeats, config.cv)
    chosen, direction, objectives, constraints = _objectives(config, group_prefix)
    data = _load(config)
    default = training_compile.default_metric(data.task)
    metric = chosen or f"{'' if group_prefix is None else group_prefix + 'mean_'}{default}"
    directions = {m.base_of(metric): direction} if direction else {}
    if constraints and not objectives:  # a constraint on the default or one --metric: a front of one objective
        objectives = (obj.parse_objective(metric, directions),)
    for objective in objectives:  # a direction given after the colon, where the name's rule says the other
        if objective.maximize != m.higher_is_better(objective.name, directions):
            directions[m.base_of(objective.name)] = objective.direction
    longest = config.epochs if config.max_epochs is None else min(config.epochs, config.max_epochs)
    plan = plan_study(config.strategy, space, DEFAULT_SPACE, seed=config.seed, trials=config.trials, metric=metric,
                      logdir=config.logdir, epochs=longest, directions=directions, enqueue=config.enqueue,
                      objectives=objectives, constraints=constraints, **config.strategy_options)
    if STRATEGIES[config.strategy].adaptive and group_prefix is not None:
        raise UserError(f"--strategy {config.strategy} decides as results come in; it does not combine with "
                        "--repeats or --cv")
    spec = _check_model(config.model, plan.space, plan.trials, config.sent_by)
    if config.cv is not None:
        check_folds(data, config.cv)
    experiment_dir = _experiment_dir(Path(config.logdir), config.experiment, config.overwrite)
    check_unlocked(experiment_dir)
    settings = {"epochs": config.epochs, "batch_size": config.batch_size, "patience": config.patience,
                "max_epochs": config.max_epochs, "repeats": config.repeats, "cv": config.cv,
                **_training_settings(config, data), **plan.settings}
    if config.mixed_precision:
        settings["mixed_precision"] = True
    return Prepared(config, data, plan, spec, metric, directions, group_prefix, experiment_dir, settings, devices,
                    objectives, constraints)


def _objectives(config: StudyConfig, group_prefix: str | None
                ) -> tuple[str | None, str | None, tuple[obj.Objective, ...], tuple[obj.Constraint, ...]]:
    """--metric (once: NAME or NAME:min|max, as ever; several: objectives, the first a ranking
    metric) and --constraint: (the ranking metric or None, its direction, objectives, constraints)."""
    texts = config.metric_texts
    constraints = tuple(obj.parse_constraint(text) for text in config.constraints)
    if len(texts) <= 1:
        if not texts:
            return None, config.direction, (), constraints
        if ":" not in texts[0]:  # one plain --metric: as ever
            check_metric_form(texts[0], group_prefix)
            return texts[0], config.direction, (), constraints
        objective = obj.parse_objective(texts[0])
        check_metric_form(objective.name, group_prefix)
        given = objective.direction
        if given is not None and config.direction not in (None, given):
            raise UserError(f"--metric {texts[0]!r} and --direction {config.direction}: say the direction once")
        return objective.name, given or config.direction, (), constraints
    if config.direction is not None:
        raise UserError("--direction goes with one --metric; with several, write each one's as NAME:min or NAME:max")
    objectives = tuple(obj.parse_objective(text) for text in texts)
    check_metric_form(objectives[0].name, group_prefix, first_of_several=True)
    for objective in objectives[1:]:
        if m.run_metric(objective.name) not in m.COST_METRICS:
            check_metric_form(objective.name, group_prefix)
    obj.check_names(objectives, constraints, [o.name for o in objectives] + [c.name for c in constraints])
    first = objectives[0]
    given = texts[0].partition(":")[2].strip() or None
    return first.name, given, objectives, constraints


def check_logged(prepared: Prepared, logged: list[str]) -> None:
    """--metric (each of several) and --constraint must be ones the trials log (what the model
    logs, found by evaluating the first trial's model, and the cost metrics)."""
    has_test = prepared.data.x_test is not None
    check_metric(prepared.metric, has_test, prepared.group_prefix, logged)
    if prepared.several:
        summary = m.summary_names(has_test, logged) + list(m.COST_METRICS)
        aggregates = groups.aggregate_names(summary, prepared.group_prefix) if prepared.group_prefix is not None else []
        obj.check_names(prepared.objectives, prepared.constraints, aggregates + summary)


def check_metric(metric: str, has_test: bool, group_prefix: str | None,
                 logged: list[str] | tuple[str, ...] = m.BASE_METRICS) -> None:
    def names(test: bool) -> list[str]:
        summary = m.summary_names(test, logged)
        return summary + (groups.aggregate_names(summary, group_prefix) if group_prefix is not None else [])

    allowed = names(has_test)
    if metric not in allowed:
        why = "this data set has no test split" if metric in names(True) else "the model does not log it"
        raise UserError(f"--metric {metric!r}: {why}; choose one of {', '.join(allowed)}")


def check_metric_form(metric: str, group_prefix: str | None, first_of_several: bool = False) -> None:
    """What can be told of --metric before any model is built: a summary of a validation or
    test metric (under --repeats / --cv also its mean or std over the group)."""
    base = metric
    if group_prefix is not None:
        for aggregate in (f"{group_prefix}mean_", f"{group_prefix}std_"):
            if metric.startswith(aggregate):
                base = metric[len(aggregate):]
    if not base.startswith(("best_val_", "final_val_", "test_")) or base.endswith("_"):
        if first_of_several:
            raise UserError(f"--metric {metric!r}: the first of several --metric ranks hyperband, the pruner, early "
                            "stopping and --keep-best, so it must be best_val_<name>, final_val_<name> or test_<name>; "
                            "put cost metrics (params, latency_ms ...) after it")
        raise UserError(f"--metric {metric!r}: choose best_val_<name>, final_val_<name> or test_<name>, where "
                        "<name> is a metric the model logs (loss, accuracy, auc, mae ...)")


def _with_training_table(config: StudyConfig, space: Space | None) -> StudyConfig:
    """The space file's [training] settings, where the study's own options leave them unset."""
    table = space.training if space is not None else {}
    unset = {key: value for key, value in table.items() if getattr(config, key) is None}
    if "metrics" in unset:
        unset["metrics"] = tuple(unset["metrics"])
    return dataclasses.replace(config, **unset) if unset else config


def _load(config: StudyConfig) -> Dataset:
    if _loads_tensorflow(config.data):
        from hparams_lab.training.fit import import_keras

        import_keras()  # quietly, before the data can pull it in
    return load_data(config.data, seed=config.seed, task=config.task, targets=config.targets)


def _loads_tensorflow(source: Any) -> bool:
    """Whether loading may import TensorFlow: mnist, or a function of the user's (one named
    module:function is imported quietly by training.importer)."""
    return needs_keras(source) or callable(source)


def _training_settings(config: StudyConfig, data: Dataset) -> dict[str, Any]:
    """What training is asked to do beyond epochs and batches, as experiment.json records it."""
    return {"task": data.task, "loss": training_compile.describe(config.loss),
            "metrics": training_compile.describe(training_compile.metric_names(config.metrics)),
            "direction": config.direction, "callbacks": _hook_name(config.callbacks), "fit": _hook_name(config.fit)}


def _hook_name(hook: Any) -> str | None:
    if hook is None or isinstance(hook, str):
        return hook
    from hparams_lab.training.importer import name_of

    return name_of(hook)


def _resolve_space(space: Space | str | os.PathLike) -> Space:
    if isinstance(space, Space):
        return space
    return Space.load(space)


def _devices(config: StudyConfig) -> list:
    """The workers' GPUs: [] (the CPU, as without GPUs) unless this machine has some and
    --gpus does not say none. With --scheduler the dask workers have their own (README)."""
    from hparams_lab.execution.devices import choose_gpus, plan_slots, visible_gpus

    if not isinstance(config.per_gpu, int) or isinstance(config.per_gpu, bool) or config.per_gpu < 1:
        raise UserError(f"--per-gpu must be a whole number >= 1, got {config.per_gpu!r}")
    if config.scheduler is not None:
        return []
    none = config.gpus is not None and config.gpus.strip().lower() == "none"
    gpus = choose_gpus(config.gpus, [] if none else visible_gpus())
    return plan_slots(gpus, config.per_gpu, config.workers) if gpus else []


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def timeout_seconds(value: str | float | None) -> float | None:
    """--timeout as seconds: a number of seconds, or '90s', '30m', '2h', '1h30m', '1d'."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise UserError(f"--timeout {value!r}: write a duration such as 90s, 30m, 2h or 1h30m")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not seconds > 0 or seconds == float("inf"):
        raise UserError(f"--timeout must be more than 0 seconds, got {value!r}")
    return seconds


def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        minimum = {"patience": 0, "cv": 2}.get(name, 1)
        if value is not None and (not isinstance(value, int) or value < minimum):
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be a whole number >= {minimum}, got {value!r}")


def _check_model(model: str | Callable[..., Any], space: Space, trials: list[Trial],
                 sent_by: str | None) -> ModelSpec:
    spec = model_spec(model)
    check_hparams(spec, space.names)
    if "optimizer" in space.names:
        domain = space["optimizer"].domain
        if not isinstance(domain, Discrete):
            raise UserError("hparam 'optimizer' must be a list of optimizer names")
        for name in domain.values:
            check_optimizer(name)
    if sent_by is not None:
        _check_sendable(model, sent_by, "the model")
    for trial in trials:  # bad values fail now, not after an hour of training
        check_hparam_values(spec, trial.hparams)
    return spec


def _check_sendable(function: str | Callable[..., Any], flag: str, what: str) -> None:
    """Worker processes import a function by name: it must be importable."""
    try:
        pickle.dumps(function)
    except (pickle.PicklingError, AttributeError, TypeError):
        raise UserError(
            f"{flag} needs {what} as a function importable by name (module:function); "
            f"{getattr(function, '__qualname__', function)!r} is defined where worker processes can't import it"
        ) from None


def _check_sendable_data(source: Any, flag: str) -> None:
    """Workers load the data themselves, once each: from a name, a file or a data function."""
    if not sendable(source):
        raise UserError(
            f"{flag}: data in memory (arrays, datasets, a function defined here) is not sent to worker "
            "processes; give it as a function importable from a module "
            "(--data package.module:function, or data='package.module:function'), which each worker calls once"
        )


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
        # The process id too: two studies started in the same second, even at the same instant
        # (where checking for an existing directory would race), never share a default name.
        stamp = f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        name, n = stamp, 2
        while (logdir / name).exists():  # a reused pid, the same second
            name, n = f"{stamp}-{n}", n + 1
    check_experiment_name(name)
    path = logdir / name
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"experiment directory {str(path)!r} is not writable")
    if overwrite and path.exists() and any(path.iterdir()) and not (path / "experiment.json").exists():
        raise UserError(f"--overwrite: {str(path)!r} is not an hparams_lab experiment; refusing to delete it")
    return path
