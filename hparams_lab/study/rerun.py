"""Rerun one recorded trial: same hparams, seed, data set and model, in a new run directory.

``python run.py rerun LOGDIR/EXPERIMENT/TRIAL`` checks a result: it trains the trial
again from its trial.json and its experiment's experiment.json, into
``<trial-id>.rerun-N`` beside the original (a fresh session in the same TensorBoard
session group, never a second session in the old run), and compares the metric the
experiment ranks by. Everything is read and checked before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from hparams_lab.core.errors import UserError, one_line
from hparams_lab.core.trial import TrialResult
from hparams_lab.execution.attempt import run_trial
from hparams_lab.execution.events import Reporter, SilentReporter
from hparams_lab.store.experiment import FILENAME as EXPERIMENT_FILE
from hparams_lab.store.experiment import ExperimentRecord
from hparams_lab.store.jsonfile import read_json_object
from hparams_lab.store.lock import ExperimentLock, check_unlocked
from hparams_lab.store.rundirs import rerun_dir
from hparams_lab.study import trust
from hparams_lab.training.data import check_data_source, source_changed
from hparams_lab.training.models import BUILTIN_MODELS, ModelSpec, resolve_model

TRIAL_FILE = "trial.json"
# A group's mean/std over repeats or CV folds ([cv_]mean_best_val_accuracy): one member's
# rerun cannot reproduce it, so its own metric (best_val_accuracy) is compared instead.
_GROUP_METRIC = re.compile(r"^(?:cv_)?(?:mean|std)_(.+)$")


@dataclass(frozen=True)
class RerunPlan:
    """What the recorded trial was, checked and ready to train again."""

    trial_dir: Path
    record: ExperimentRecord
    recorded: TrialResult
    model: ModelSpec


@dataclass(frozen=True)
class RerunOutcome:
    plan: RerunPlan
    run_dir: Path
    result: TrialResult

    @property
    def metric(self) -> str:
        """The experiment's ranking metric, or for a repeat / CV fold its member's own one."""
        grouped = _GROUP_METRIC.match(self.plan.record.metric)
        return grouped.group(1) if grouped else self.plan.record.metric

    @property
    def recorded_value(self) -> float | None:
        return self.plan.recorded.metrics.get(self.metric)

    @property
    def new_value(self) -> float | None:
        return self.result.metrics.get(self.metric)

    @property
    def matches(self) -> bool:
        # Exact: on one machine a seeded trial with op determinism is bit-identical, so
        # any difference at all means something (code, data, versions) changed.
        return self.recorded_value == self.new_value


def plan_rerun(trial_dir: str | Path, *, given: Mapping[str, str | None] | None = None,
               confirm: trust.Confirm | None = None) -> RerunPlan:
    """Reads and checks a trial directory and its experiment; UserError for anything unusable.

    Code and files the logs name are used only as ``study.trust`` allows: ``given`` holds
    what the user named again ({"model": ..., "data": ..., "callbacks": ..., "fit": ...}),
    ``confirm`` asks at a terminal (None: never asks).
    """
    trial_dir = Path(trial_dir)
    if not (trial_dir / TRIAL_FILE).is_file():
        raise UserError(
            f"{str(trial_dir)!r} is not a trial directory: expected LOGDIR/EXPERIMENT/TRIAL holding {TRIAL_FILE}"
        )
    recorded = _read_trial(trial_dir / TRIAL_FILE)
    record = _read_experiment(trial_dir.parent)
    check_unlocked(trial_dir.parent)  # a study running there now: refuse before any work
    _check_importable(record.model)
    _check_trusted(record, dict(given or {}), trial_dir.parent.parent, confirm)
    model = _model(record.model)
    try:
        check_data_source(recorded_source(record), targets=_targets(record))
    except UserError as err:
        raise UserError(f"cannot rerun: the recorded {err}") from None
    changed = source_changed(record.data) if record.data else None
    if changed:
        raise UserError(f"cannot rerun: {changed}; the trial would not train on the same data")
    return RerunPlan(trial_dir, record, recorded, model)


def _check_trusted(record: ExperimentRecord, given: dict, logdir: Path, confirm: trust.Confirm | None) -> None:
    """Everything the record names that rerun would import or read, checked before any of it is."""
    if record.model not in BUILTIN_MODELS:
        trust.check_function("the model", "--model", record.model, given.get("model"), logdir, confirm)
    data = record.data or {}
    source = recorded_source(record)
    if data.get("kind") == "function":
        trust.check_function("the data function", "--data", source, given.get("data"), logdir, confirm)
    elif data.get("kind") == "file" or source.endswith((".npz", ".csv")):
        trust.check_file(source, given.get("data"), logdir, confirm)
    for key, what in (("callbacks", "the callbacks"), ("fit", "the fit")):
        name = record.settings.get(key)
        if isinstance(name, str):
            trust.check_function(what, f"--{key}", name, given.get(key), logdir, confirm)


def recorded_source(record: ExperimentRecord) -> str:
    """What ``load_data`` loads again: the recorded name, file or data function."""
    data = record.data or {}
    kind = data.get("kind")
    if kind == "memory":
        raise UserError("cannot rerun: the study's data was given in memory (arrays or tf.data), which the logs "
                        "do not hold; run it with --data module:function, a file or a named data set to rerun")
    if kind == "file":
        return str(data.get("path"))
    if kind == "function":
        return str(data.get("function"))
    return record.dataset


def _targets(record: ExperimentRecord) -> tuple[str, ...]:
    targets = (record.data or {}).get("targets") or ()
    return tuple(str(t) for t in targets)


def run_rerun(plan: RerunPlan, reporter: Reporter | None = None) -> RerunOutcome:
    """Trains the planned trial again through the study's own attempt (execution.attempt) and trainer."""
    from hparams_lab.training.data import load_data
    from hparams_lab.training.fit import (  # Keras loads only here
        TrainSettings,
        import_keras,
        trainer,
    )

    reporter = reporter or SilentReporter()
    record, trial, settings = plan.record, plan.recorded.trial, plan.record.settings
    train_settings = TrainSettings.from_record(settings, record.metric)
    import_keras()
    # The experiment's seed, not the trial's: run_study splits the data (and CV folds) with it.
    data = load_data(recorded_source(record), seed=record.seed, task=settings.get("task"),
                     targets=_targets(record))
    train = trainer(data, plan.model, train_settings, settings.get("cv"), record.seed)
    experiment_dir = plan.trial_dir.parent
    with ExperimentLock(experiment_dir):
        run_dir = rerun_dir(experiment_dir, trial.id)
        reporter.trial_started(trial, 1, 1)
        result = run_trial(trial, train, run_dir, reporter)
        reporter.trial_finished(result, 1, 1)
    return RerunOutcome(plan, run_dir, result)


def summary_lines(outcome: RerunOutcome) -> list[str]:
    """The recorded and the new value of the ranked metric, their difference and the verdict."""
    old, new = outcome.recorded_value, outcome.new_value
    lines = [] if outcome.metric == outcome.plan.record.metric else [
        f"comparing {outcome.metric}: the experiment ranks by {outcome.plan.record.metric}, "
        "a mean or std over the group this trial is one member of"
    ]
    lines += [
        f"{outcome.metric} recorded: {_shown(old, outcome.plan.recorded)}",
        f"{outcome.metric} rerun:    {_shown(new, outcome.result)}",
    ]
    if old is not None and new is not None:
        lines.append(f"difference: {new - old:+.6g}")
    lines.append(("matches" if outcome.matches else "differs") + f"  (new run: {outcome.run_dir})")
    return lines


def _shown(value: float | None, result: TrialResult) -> str:
    if value is not None:
        return repr(value)  # every digit: a rounded display could hide a real difference
    return f"none ({result.status.value}: {result.error})" if result.error else f"none ({result.status.value})"


def _read_trial(path: Path) -> TrialResult:
    data = _read_json_object(path)
    try:
        recorded = TrialResult.from_json(data)
        hparams_ok = isinstance(recorded.trial.hparams, dict)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise UserError(f"{str(path)!r} is not a usable trial record: {one_line(err)}") from None
    if not hparams_ok or not isinstance(recorded.trial.seed, int) or not isinstance(recorded.metrics, dict):
        raise UserError(f"{str(path)!r} is not a usable trial record: hparams, seed or metrics have the wrong type")
    # The id hashes hparams and seed: a mismatch means the record was edited or is foreign.
    if recorded.trial.id != data.get("id"):
        raise UserError(
            f"{str(path)!r}: id {data.get('id')!r} does not match its hparams and seed "
            f"(they give {recorded.trial.id!r}); the record was changed"
        )
    return recorded


def _read_experiment(experiment_dir: Path) -> ExperimentRecord:
    path = experiment_dir / EXPERIMENT_FILE
    if not path.is_file():
        raise UserError(f"no {EXPERIMENT_FILE} in {str(experiment_dir)!r}: the trial's experiment record is missing")
    _read_json_object(path)
    try:
        record = ExperimentRecord.read(experiment_dir)
    except TypeError as err:
        raise UserError(f"{str(path)!r} is not a usable experiment record: {err}") from None
    settings = record.settings if isinstance(record.settings, dict) else {}
    wanted = {"dataset": str, "model": str, "metric": str, "seed": int, "trials": int}
    bad = [name for name, kind in wanted.items() if not isinstance(getattr(record, name), kind)]
    bad += [f"settings.{name}" for name in ("epochs", "batch_size", "patience") if name not in settings]
    if bad:
        raise UserError(f"{str(path)!r} is not a usable experiment record: missing or wrong {', '.join(bad)}")
    return record


def _read_json_object(path: Path) -> dict:
    try:
        return read_json_object(path)
    except ValueError as err:
        raise UserError(f"{str(path)!r} cannot be read as JSON: {err}") from None


def _check_importable(name: str) -> None:
    module, _, function = name.partition(":")
    # run_study records a Python callable as module:qualname; one defined in a notebook
    # or script (__main__), or inside a function (<locals>), has no importable name.
    if module == "__main__" or "<" in function:
        raise UserError(
            f"cannot rerun: the model {name!r} was a function defined in a notebook or script, "
            "which cannot be imported again; put it in a module and run the study with "
            "--model module:function"
        )


def _model(name: str) -> ModelSpec:
    try:
        return resolve_model(name)
    except UserError as err:
        raise UserError(f"cannot rerun: {err}") from None
