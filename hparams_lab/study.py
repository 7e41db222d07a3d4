"""A study from end to end: check everything, then create the experiment and run its trials.

``run_study`` is the Python API and what ``python run.py`` calls. Every mistake a
user can make (space, strategy, model, data set, metric, paths) raises UserError
before anything is written to the logdir.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable

from hparams_lab import metrics as m
from hparams_lab.data import check_dataset, load_dataset
from hparams_lab.errors import UserError
from hparams_lab.experiment import ExperimentRecord, check_experiment_name, create_experiment_dir, find_experiments
from hparams_lab.models import ModelSpec, check_hparam_values, check_hparams, check_optimizer, resolve_model
from hparams_lab.runner import Reporter, ranked, run_trials
from hparams_lab.space import Discrete, HParam, RealInterval, Space
from hparams_lab.strategies import make_trials
from hparams_lab.trial import TrialResult
from hparams_lab.writer import union_config, write_root_config

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
    results: list[TrialResult]  # in trial order

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
    metric: str = m.DEFAULT_METRIC,
    logdir: str | os.PathLike = "logs",
    experiment: str | None = None,
    reporter: Reporter | None = None,
    command: str = "",
) -> StudyResult:
    """Runs a grid or random study and returns every trial's result.

    ``space`` is a Space, a path to a .toml/.json space file, or None for the default.
    ``model`` is "mlp", "cnn", "package.module:function" or a function
    ``(hparams, input_shape, n_classes) -> keras.Model``.
    """
    from hparams_lab.training import TrainSettings, import_keras, train_trial  # Keras loads only here

    space = _resolve_space(space)
    _check_counts(epochs=epochs, batch_size=batch_size, patience=patience)
    planned = make_trials(strategy, space, seed=seed, trials=trials)
    model_spec = _resolve_model(model, space)
    for trial in planned:  # bad values fail now, not after an hour of training
        check_hparam_values(model_spec, trial.hparams)
    check_dataset(dataset)
    _check_metric(metric, has_test=True)
    experiment_dir = _new_experiment_dir(Path(logdir), experiment)
    # The cheap checks are done; loading the data may need Keras (mnist) and can still fail.
    import_keras()  # before any data set loader can pull it in unquieted
    data = load_dataset(dataset, seed=seed)
    has_test = data.x_test is not None
    _check_metric(metric, has_test)

    declared = m.declared_metrics(has_test)
    settings = TrainSettings(epochs, batch_size, patience, monitor="val_" + metric.rsplit("_", 1)[-1])
    record = ExperimentRecord(
        name=experiment_dir.name,
        space=space.to_dict(),
        strategy=strategy,
        seed=seed,
        trials=len(planned),
        dataset=dataset,
        model=model_spec.name,
        metric=metric,
        metrics=[metric_.to_json() for metric_ in declared],
        settings={"epochs": epochs, "batch_size": batch_size, "patience": patience},
        versions=_versions(),
        command=command,
        created=dt.datetime.now().isoformat(timespec="seconds"),
    )
    create_experiment_dir(experiment_dir)
    record.write(experiment_dir)
    write_root_config(
        experiment_dir.parent,
        union_config(
            (Space.from_dict(rec.space), rec.declared_metrics) for _, rec in find_experiments(experiment_dir.parent)
        ),
    )

    def train(trial, on_epoch):
        return train_trial(trial, data, model_spec, settings, on_epoch)

    results = run_trials(planned, train, experiment_dir, reporter)
    return StudyResult(experiment_dir, metric, results)


def _resolve_space(space: Space | str | os.PathLike | None) -> Space:
    if space is None:
        return DEFAULT_SPACE
    if isinstance(space, Space):
        return space
    return Space.load(space)


def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        minimum = 0 if name == "patience" else 1
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


def _check_metric(metric: str, has_test: bool) -> None:
    allowed = m.summary_names(has_test)
    if metric not in allowed:
        why = "this data set has no test split" if metric in m.summary_names(True) else "unknown"
        raise UserError(f"--metric {metric!r}: {why}; choose one of {', '.join(allowed)}")


def _new_experiment_dir(logdir: Path, name: str | None) -> Path:
    if logdir.exists() and not logdir.is_dir():
        raise UserError(f"logdir {str(logdir)!r} is a file, not a directory")
    existing = logdir
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"logdir {str(logdir)!r} is not writable")
    if name is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name, n = stamp, 2
        while (logdir / name).exists():  # two studies started in the same second
            name, n = f"{stamp}-{n}", n + 1
    check_experiment_name(name)
    if (logdir / name).exists():
        raise UserError(f"experiment {name!r} already exists in {str(logdir)!r}; choose another --experiment")
    return logdir / name


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("hparams-lab", "tensorflow", "tensorflow-cpu", "keras", "tensorboard", "numpy", "scikit-learn"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out
