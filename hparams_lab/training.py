"""Train one trial: build, compile, fit, evaluate. The only module here that runs Keras.

Keras is imported inside the functions, so importing this module stays cheap and
TensorFlow loads only when a trial really trains.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from hparams_lab.data import Dataset, cv_fold
from hparams_lab.models import ModelSpec, build_model, build_optimizer
from hparams_lab.trial import Trial

EpochCallback = Callable[[int, Mapping[str, float]], None]


@dataclass(frozen=True)
class TrainSettings:
    """Study-wide training settings; a trial's own ``epochs``/``batch_size`` hparams win."""

    epochs: int = 20
    batch_size: int = 64
    patience: int | None = None  # early stopping on the monitored validation metric
    monitor: str = "val_accuracy"
    max_epochs: int | None = None  # caps every trial, an 'epochs' hparam too (quick runs)


@dataclass(frozen=True)
class TrainOutcome:
    history: dict[str, list[float]]
    test: dict[str, float] | None = None
    epochs: int = 0


@functools.cache
def import_keras():
    """Keras, imported once with TensorFlow's C++ start-up chatter held back.

    TensorFlow prints its oneDNN/CUDA notices before its logging is set up, ignoring
    TF_CPP_MIN_LOG_LEVEL; they are replayed if the import fails, and shown always
    with HPARAMS_LAB_TF_LOGS=1.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("HPARAMS_LAB_TF_LOGS"):
        import keras
        return keras
    with _held_stderr():
        import keras
        import tensorflow as tf

        tf.config.list_physical_devices()  # device probing logs too (cuInit on CPU-only hosts)
    return keras


@contextlib.contextmanager
def _held_stderr():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def trainer(data: Dataset, model_spec: ModelSpec, settings: TrainSettings, folds: int | None, seed: int):
    """The runner's ``train(trial, on_epoch)``; with CV, each trial trains on its own fold."""

    def train(trial: Trial, on_epoch: EpochCallback) -> TrainOutcome:
        fold_data = data if trial.fold is None else cv_fold(data, trial.fold, folds, seed)
        return train_trial(trial, fold_data, model_spec, settings, on_epoch)

    return train


def train_trial(
    trial: Trial,
    dataset: Dataset,
    model_spec: ModelSpec,
    settings: TrainSettings,
    on_epoch: EpochCallback | None = None,
) -> TrainOutcome:
    """Fits one model for one trial and returns its per-epoch history (and test metrics)."""
    keras = import_keras()

    # A fresh graph per trial keeps memory flat across many trials; the seed makes the
    # same trial give the same weights, shuffles and dropout masks.
    keras.backend.clear_session()
    keras.utils.set_random_seed(trial.seed)

    hparams = dict(trial.hparams)
    epochs = int(hparams.get("epochs", settings.epochs))
    if settings.max_epochs is not None:
        epochs = min(epochs, settings.max_epochs)
    batch_size = int(hparams.get("batch_size", settings.batch_size))

    model = build_model(model_spec, hparams, dataset.input_shape, dataset.n_classes)
    model.compile(
        optimizer=build_optimizer(hparams),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        dataset.x_train,
        dataset.y_train,
        validation_data=(dataset.x_val, dataset.y_val),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=_callbacks(keras, settings, on_epoch),
    )
    logs = {name: [float(v) for v in values] for name, values in history.history.items()}
    test = None
    if dataset.x_test is not None:
        test = model.evaluate(dataset.x_test, dataset.y_test, batch_size=512, verbose=0, return_dict=True)
        test = {name: float(value) for name, value in test.items()}
    return TrainOutcome(logs, test, epochs=len(logs.get("loss", [])))


def _callbacks(keras: Any, settings: TrainSettings, on_epoch: EpochCallback | None) -> list:
    callbacks = [_epoch_watch(keras, on_epoch)]
    if settings.patience is not None:
        mode = "min" if "loss" in settings.monitor else "max"
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=settings.monitor,
                mode=mode,
                patience=settings.patience,
                restore_best_weights=True,
            )
        )
    return callbacks


def _epoch_watch(keras: Any, on_epoch: EpochCallback | None) -> Any:
    """Reports each epoch and stops on a NaN/inf loss.

    Epoch-level on purpose: a per-batch hook (keras' TerminateOnNaN) makes Keras
    fetch the logs after every step, which slows small models noticeably.
    """

    class EpochWatch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            logs = logs or {}
            if on_epoch is not None:
                on_epoch(epoch, logs)
            if not math.isfinite(float(logs.get("loss", 0.0))):
                self.model.stop_training = True

    return EpochWatch()
