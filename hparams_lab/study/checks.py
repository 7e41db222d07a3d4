"""Every check of a study's config, in one place, before anything is written to the logdir.

``prepare`` turns a ``StudyConfig`` into what running it needs (the plan, the model,
the ranking metric, the experiment directory, the settings to record) or raises
UserError with one line saying what is wrong. It never imports TensorFlow: only
data that needs loading to be checked (a test split, CV folds) is checked later,
by ``check_data``.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hparams_lab.core import groups
from hparams_lab.core import metrics as m
from hparams_lab.core.errors import UserError
from hparams_lab.core.space import Discrete, Space
from hparams_lab.core.trial import Trial
from hparams_lab.search.registry import STRATEGIES, Plan, plan_study
from hparams_lab.store.experiment import check_experiment_name
from hparams_lab.store.lock import check_unlocked
from hparams_lab.study.config import DEFAULT_SPACE, StudyConfig
from hparams_lab.training.data import Dataset, check_dataset, check_folds
from hparams_lab.training.models import ModelSpec, check_hparam_values, check_hparams, check_optimizer, model_spec


@dataclass(frozen=True)
class Prepared:
    """A checked study, ready to run."""

    config: StudyConfig
    plan: Plan
    model: ModelSpec
    metric: str  # what ranks trials
    group_prefix: str | None  # "" with --repeats, "cv_" with --cv, None otherwise
    experiment_dir: Path
    settings: dict[str, Any]  # experiment.json's settings: training and the strategy's options


def prepare(config: StudyConfig) -> Prepared:
    """Checks a study's config; UserError for the first thing wrong, nothing written."""
    space = None if config.space is None else _resolve_space(config.space)  # None: the strategy's default
    _check_counts(epochs=config.epochs, batch_size=config.batch_size, patience=config.patience,
                  max_epochs=config.max_epochs, repeats=config.repeats, cv=config.cv, workers=config.workers)
    if config.repeats > 1 and config.cv is not None:
        raise UserError("choose --repeats or --cv, not both")
    if config.scheduler is not None and config.workers > 1:
        raise UserError("choose --scheduler (trials on a dask cluster, as many at once as it has worker "
                        "processes) or --workers N (processes of this machine), not both")
    group_prefix = groups.prefix(config.repeats, config.cv)
    metric = config.metric or f"{'' if group_prefix is None else group_prefix + 'mean_'}{m.DEFAULT_METRIC}"
    check_metric(metric, True, group_prefix)
    longest = config.epochs if config.max_epochs is None else min(config.epochs, config.max_epochs)
    plan = plan_study(config.strategy, space, DEFAULT_SPACE, seed=config.seed, trials=config.trials, metric=metric,
                      logdir=config.logdir, epochs=longest, **config.strategy_options)
    if STRATEGIES[config.strategy].adaptive and group_prefix is not None:
        raise UserError(f"--strategy {config.strategy} decides as results come in; it does not combine with "
                        "--repeats or --cv")
    spec = _check_model(config.model, plan.space, plan.trials, config.sent_by)
    check_dataset(config.dataset)
    experiment_dir = _experiment_dir(Path(config.logdir), config.experiment, config.overwrite)
    check_unlocked(experiment_dir)
    settings = {"epochs": config.epochs, "batch_size": config.batch_size, "patience": config.patience,
                "max_epochs": config.max_epochs, "repeats": config.repeats, "cv": config.cv, **plan.settings}
    return Prepared(config, plan, spec, metric, group_prefix, experiment_dir, settings)


def check_data(data: Dataset, prepared: Prepared) -> None:
    """What only the loaded data can tell: enough samples per class for the folds, a test split."""
    if prepared.config.cv is not None:
        check_folds(data, prepared.config.cv)
    check_metric(prepared.metric, data.x_test is not None, prepared.group_prefix)


def check_metric(metric: str, has_test: bool, group_prefix: str | None) -> None:
    def names(test: bool) -> list[str]:
        summary = m.summary_names(test)
        return summary + (groups.aggregate_names(summary, group_prefix) if group_prefix is not None else [])

    allowed = names(has_test)
    if metric not in allowed:
        why = "this data set has no test split" if metric in names(True) else "unknown"
        raise UserError(f"--metric {metric!r}: {why}; choose one of {', '.join(allowed)}")


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
        _check_sendable(model, sent_by)
    for trial in trials:  # bad values fail now, not after an hour of training
        check_hparam_values(spec, trial.hparams)
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
