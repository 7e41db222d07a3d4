"""A train function without Keras, for tests of everything around training.

``FakeTrain`` keeps the contract of hparams_lab.core.contract the way the Keras
trainer does: ``train(trial, on_epoch, start=, stop=, checkpoint=)`` reports every
epoch through ``on_epoch`` (and stops when it returns True), returns ``history``,
``test`` and ``epochs``, stops at a NaN loss, continues a segment only from the
checkpoint its previous segment wrote, and writes one at the end of a segment.
It has no early stopping (--patience): test_training tests that on real fits.

Pass it to run_trials / InlineBackend directly, or use the ``fake_train`` fixture
(tests/conftest.py), which puts it behind ``hparams_lab.training.fit.trainer`` so
that a whole in-process study (run_study, the CLI, rerun) trains with it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping, NamedTuple

from hparams_lab.core.metrics import higher_is_better
from hparams_lab.core.trial import Trial
from hparams_lab.training.fit import import_keras  # the real one, before the fixture replaces it

FAILURE = "model exploded\nsecond line"  # the error a failing trial raises (RuntimeError)


def quality(trial: Trial, data: str = "") -> float:
    """A final accuracy in [0.3, 0.9), fixed by the trial's hparams, seed, repeat and fold
    (its id) and ``data``, a digest of the examples it trains on."""
    digest = hashlib.sha256(f"{trial.id}/{data}".encode()).hexdigest()
    return 0.3 + 0.6 * int(digest[:8], 16) / 16**8


def curve(trial: Trial, epoch: int, data: str = "") -> float:
    """The default learning curve: rises towards quality(), the same every time."""
    return quality(trial, data) * (1 - 0.5 ** (epoch + 1))


def peaked(name: str, best: float, log: bool = True) -> Callable[[Trial, int], float]:
    """A learning curve (for ``FakeTrain(accuracy=...)``) whose final accuracy is highest where
    hparam ``name`` equals ``best`` and falls with the distance from it (in decades with
    ``log``); no other hparam has any effect."""
    def accuracy(trial: Trial, epoch: int) -> float:
        value = trial.hparams[name]
        distance = abs(math.log10(value / best)) if log else abs(value - best)
        return (0.9 - 0.1 * distance) * (1 - 0.5 ** (epoch + 1))
    return accuracy


def digest(data: Any) -> str:
    """What a data set (or fold) gives a trial to learn from, in 12 hex digits."""
    h = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_val, data.y_val):
        h.update(array.tobytes())
    return h.hexdigest()[:12]


class Call(NamedTuple):
    trial_id: str
    start: int
    stop: int


@dataclass
class Made:
    """One call of the fake ``trainer(data, model_spec, settings, folds, seed)``."""

    data: Any
    model_spec: Any
    settings: Any
    folds: int | None
    seed: int


class FakeTrain:
    """A configurable fake train function; ``calls`` records (trial id, start, stop) per call.

    accuracy:  ``(trial, epoch) -> val_accuracy``, or {units: [per-epoch accuracies]}
               (a trial then trains as many epochs as its list has); default ``curve``,
               which, made by FakeTrainer, also depends on the data (the trial's CV fold)
               the study would train on, so a wrong seed, split or fold changes the numbers.
    epochs:    epochs of a whole trial (int), or None: from ``settings`` as the Keras
               trainer decides (a trial's 'epochs' hparam, capped by max_epochs).
    fail_on:   ``trial -> bool``; such a trial raises RuntimeError(FAILURE) before training.
    nan_at:    the epoch whose loss is NaN (training stops there, like Keras' trainer).
    interrupt_at, interrupt_after: call number ``interrupt_at`` (0-based, not recorded in
               ``calls``) raises KeyboardInterrupt after reporting ``interrupt_after`` epochs.
    """

    def __init__(
        self,
        accuracy: Callable[[Trial, int], float] | Mapping[Any, list[float]] = curve,
        *,
        epochs: int | None = 3,
        settings: Any = None,
        fail_on: Callable[[Trial], bool] | None = None,
        nan_at: int | None = None,
        interrupt_at: int | None = None,
        interrupt_after: int = 0,
        with_test: bool = False,
        logged: tuple[str, ...] = ("accuracy", "loss"),
    ):
        self.accuracy = accuracy
        self.epochs = epochs
        self.settings = settings
        self.fail_on = fail_on
        self.nan_at = nan_at
        self.interrupt_at = interrupt_at
        self.interrupt_after = interrupt_after
        self.with_test = with_test
        self.logged = logged  # the metrics it logs: loss-like ones fall as accuracy rises
        self.calls: list[Call] = []

    @property
    def trial_ids(self) -> list[str]:
        return [call.trial_id for call in self.calls]

    def epochs_of(self, trial: Trial) -> int:
        if isinstance(self.accuracy, Mapping):
            return len(self.accuracy[trial.hparams["units"]])
        if self.epochs is not None:
            return self.epochs
        epochs = int(trial.hparams.get("epochs", self.settings.epochs))
        if self.settings.max_epochs is not None:
            epochs = min(epochs, self.settings.max_epochs)
        return epochs

    def accuracy_at(self, trial: Trial, epoch: int) -> float:
        if isinstance(self.accuracy, Mapping):
            return self.accuracy[trial.hparams["units"]][epoch]
        return self.accuracy(trial, epoch)

    def __call__(self, trial: Trial, on_epoch, *, start: int = 0, stop: int | None = None,
                 checkpoint: Path | None = None, run_dir: Path | None = None):
        stop = self.epochs_of(trial) if stop is None else stop
        interrupted = self.interrupt_at is not None and len(self.calls) == self.interrupt_at
        if not interrupted:
            self.calls.append(Call(trial.id, start, stop))
        if self.fail_on is not None and self.fail_on(trial):
            raise RuntimeError(FAILURE)
        if start > 0:  # a continued segment: only from the checkpoint the last one wrote
            if checkpoint is None or not checkpoint.exists():
                raise FileNotFoundError(f"no checkpoint to continue from at {checkpoint}")
            assert checkpoint.read_text() == f"{trial.id}@{start}"
        history: dict[str, list[float]] = {f"{split}{name}": [] for split in ("", "val_") for name in self.logged}
        for epoch in range(start, stop):
            if interrupted and epoch - start == self.interrupt_after:
                raise KeyboardInterrupt
            acc = self.accuracy_at(trial, epoch)
            loss = math.nan if epoch == self.nan_at else 1.0 - acc
            values = {name: acc if higher_is_better(name) else loss for name in self.logged}
            logs = {f"{split}{name}": value for split in ("", "val_") for name, value in values.items()}
            for name, value in logs.items():
                history[name].append(value)
            if on_epoch(epoch, logs) or math.isnan(loss):
                break
        if interrupted:
            raise KeyboardInterrupt
        if checkpoint is not None:
            checkpoint.write_text(f"{trial.id}@{start + len(history['loss'])}")
        test = None
        if self.with_test and history["loss"]:
            test = {name: history[name][-1] for name in self.logged}
        if getattr(self.settings, "keep_model", None) and run_dir is not None and history["loss"]:
            keep_fake_model(run_dir, trial, start + len(history["loss"]))
        return SimpleNamespace(history=history, test=test, epochs=len(history["loss"]), costs=fake_costs(trial))


def reproducible(metrics: Mapping[str, float]) -> dict[str, float]:
    """A trial's metrics without the timed or sampled costs (core.metrics.MEASURED_COSTS): what
    op determinism and seeds make equal across runs and processes."""
    from hparams_lab.core.metrics import MEASURED_COSTS

    return {name: value for name, value in metrics.items() if name not in MEASURED_COSTS}


def fake_costs(trial: Trial) -> dict[str, float]:
    """Plausible cost metrics (training.costs) of the default MLP on digits, from its hparams:
    more and wider layers cost more parameters, time and memory."""
    units = trial.hparams.get("units", 32)
    units = units if isinstance(units, (int, float)) and not isinstance(units, bool) else 32
    params = 65 * units + (units + 1) * 10 + (units * (units + 1) if trial.hparams.get("extra_layer") else 0)
    return {"params": float(params), "epoch_time_s": 0.05 + params / 1e6, "latency_ms": 0.2 + params / 1e5,
            "peak_memory_mb": 300.0 + params / 1e4}


def keep_fake_model(run_dir: Path, trial: Trial, epoch: int) -> None:
    """What the Keras trainer keeps for --keep-best (training.saving), as text: the trial and epoch."""
    from hparams_lab.store.kept import MODEL_FILE, MODEL_INFO

    (run_dir / MODEL_FILE).write_text(f"{trial.id}@{epoch}")
    (run_dir / MODEL_INFO).write_text(json.dumps({"file": MODEL_FILE, "epoch": epoch, "weights": "as trained"}))


class StudyTrain(FakeTrain):
    """The FakeTrain a study gets from FakeTrainer: like ``training.fit.trainer``'s train
    function it picks the trial's data (its CV fold), and with ``build`` it builds the
    trial's Keras model and optimizer (what a user's hparams can break) without fitting."""

    def __init__(self, data, model_spec, folds, seed, *, build: bool = False, **options: Any):
        super().__init__(**options)
        self.data, self.model_spec, self.folds, self.seed, self.build = data, model_spec, folds, seed, build
        self.digests: dict[int | None, str] = {}

    def __call__(self, trial: Trial, on_epoch, **segment):
        from hparams_lab.training.data import cv_fold

        data = self.data if trial.fold is None else cv_fold(self.data, trial.fold, self.folds, self.seed)
        if trial.fold not in self.digests:
            self.digests[trial.fold] = digest(data)
        if self.build:
            from hparams_lab.training.models import build_model, build_optimizer

            import_keras()  # quietly, as a study does
            build_model(self.model_spec, dict(trial.hparams), data.input_shape, data.n_outputs, data.task)
            build_optimizer(dict(trial.hparams))
        return super().__call__(trial, on_epoch, **segment)

    def accuracy_at(self, trial: Trial, epoch: int) -> float:
        if self.accuracy is curve:
            return curve(trial, epoch, self.digests[trial.fold])
        return super().accuracy_at(trial, epoch)


class FakeTrainer:
    """Stands in for ``hparams_lab.training.fit.trainer(data, model_spec, settings, folds, seed, upcoming)``:
    each train function it makes is a StudyTrain with ``options`` and the study's settings
    (epochs from them, test metrics where the data set has a test split); ``calls`` and
    ``made`` collect what they all did, across every study of one test."""

    def __init__(self, **options: Any):
        self.options = options
        self.calls: list[Call] = []
        self.made: list[Made] = []
        self.logged: tuple[str, ...] = ("accuracy", "loss")  # what the last study's model logs

    def configure(self, **options: Any) -> "FakeTrainer":
        self.options.update(options)
        return self

    @property
    def trial_ids(self) -> list[str]:
        return [call.trial_id for call in self.calls]

    def logged_metrics(self, trial, data, model_spec, settings, keep=False) -> list[str]:
        """What a study's first model logs (training.fit.logged_metrics): the task's metrics (or
        the study's --metrics) and the loss, as the fake's histories will."""
        from hparams_lab.training.compile import DEFAULTS

        names = settings.metrics if settings.metrics is not None else DEFAULTS[data.task].metrics
        self.logged = tuple(self.options.get("logged", (*names, "loss")))
        return list(self.logged)

    def __call__(self, data, model_spec, settings, folds, seed, upcoming=()):
        self.made.append(Made(data, model_spec, settings, folds, seed))
        options = {"epochs": None, "with_test": data.x_test is not None, "logged": self.logged, **self.options}
        train = StudyTrain(data, model_spec, folds, seed, settings=settings, **options)
        train.calls = self.calls  # one record for the whole test
        return train
