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
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from hparams_lab.core.contract import EpochCallback
from hparams_lab.core.metrics import higher_is_better, monitored
from hparams_lab.core.trial import Trial
from hparams_lab.training.data import Dataset, cv_fold
from hparams_lab.training.models import ModelSpec, build_model, build_optimizer


@dataclass(frozen=True)
class TrainSettings:
    """Study-wide training settings; a trial's own ``epochs``/``batch_size`` hparams win."""

    epochs: int = 20
    batch_size: int = 64
    patience: int | None = None  # early stopping on the monitored validation metric
    monitor: str = "val_accuracy"
    max_epochs: int | None = None  # caps every trial, an 'epochs' hparam too (quick runs)

    @classmethod
    def from_record(cls, settings: Mapping[str, Any], metric: str) -> "TrainSettings":
        """The training settings experiment.json records; early stopping watches the
        ranked metric's per-epoch validation twin. run_study and rerun both build them here."""
        return cls(
            settings["epochs"],
            settings["batch_size"],
            settings.get("patience"),
            monitored(metric),
            settings.get("max_epochs"),
        )


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
    else:
        with _held_stderr(keep=lambda line: False):
            import keras
            import tensorflow as tf

            tf.config.list_physical_devices()  # device probing logs too (cuInit on CPU-only hosts)
    _enable_determinism()
    return keras


def _enable_determinism() -> None:
    """Same seed, same numbers: TensorFlow picks deterministic kernels and tf.data order.

    With keras.utils.set_random_seed per trial, a trial trained twice gives the same
    history bit for bit (tested on CPU). Process-wide, so set once. It also makes
    TensorFlow's random ops refuse to run unseeded, which set_random_seed covers.
    """
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


# TensorFlow 2.21's determinism rewrite of tf.data's parallel map logs this harmless
# E-level line now and then during fit ("Unknown attributes will be ignored").
_TF_NOISE = ("NodeDef mentions attribute use_unbounded_threadpool",)


# Training steps per call into TensorFlow: the same steps and numbers (checked equal
# to the last digit on digits), with a fraction of the per-step Python round trips
# that dominate small models (a 20-epoch digits trial: 2.75 s -> 2.38 s). Nothing here
# uses per-batch callbacks, which would see only every 32nd batch.
_STEPS_PER_EXECUTION = 32


def _not_noise(line: str) -> bool:
    return not any(noise in line for noise in _TF_NOISE)


@contextlib.contextmanager
def _held_stderr(keep: Callable[[str], bool]):
    """fd 2 goes to a temp file; afterwards the lines ``keep`` accepts are written back.

    On an exception everything is written back: the held text may explain it.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if failed or keep(line)))
            sys.stderr.flush()


def trainer(data: Dataset, model_spec: ModelSpec, settings: TrainSettings, folds: int | None, seed: int):
    """The attempt's ``train(trial, on_epoch)`` (core.contract); with CV, each trial trains on its own fold."""

    def train(trial: Trial, on_epoch: EpochCallback, **segment: Any) -> TrainOutcome:
        fold_data = data if trial.fold is None else cv_fold(data, trial.fold, folds, seed)
        return train_trial(trial, fold_data, model_spec, settings, on_epoch, **segment)

    return train


def train_trial(
    trial: Trial,
    dataset: Dataset,
    model_spec: ModelSpec,
    settings: TrainSettings,
    on_epoch: EpochCallback | None = None,
    *,
    start: int = 0,
    stop: int | None = None,
    checkpoint: Path | None = None,
) -> TrainOutcome:
    """Fits one model for one trial and returns its per-epoch history (and test metrics).

    A segment (hyperband) trains epochs ``start``..``stop`` only: it restores the
    weights and optimizer state ``checkpoint`` holds when ``start`` > 0, and saves
    them there at the end.
    """
    keras = import_keras()

    # A fresh graph per trial keeps memory flat across many trials; the seed makes the
    # same trial give the same weights, shuffles and dropout masks (a continued
    # segment draws from its own seeded stream).
    keras.backend.clear_session()
    keras.utils.set_random_seed(trial.seed + start)

    hparams = dict(trial.hparams)
    epochs = int(hparams.get("epochs", settings.epochs))
    if settings.max_epochs is not None:
        epochs = min(epochs, settings.max_epochs)
    if stop is not None:
        epochs = stop
    batch_size = int(hparams.get("batch_size", settings.batch_size))

    with _custom_gradients_released():
        model = build_model(model_spec, hparams, dataset.input_shape, dataset.n_classes)
        model.compile(
            optimizer=build_optimizer(hparams),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=_STEPS_PER_EXECUTION,
        )
        if start > 0:
            _restore(model, checkpoint)
        with _held_stderr(keep=_not_noise):
            history = model.fit(
                dataset.x_train,
                dataset.y_train,
                validation_data=(dataset.x_val, dataset.y_val),
                initial_epoch=start,
                epochs=epochs,
                batch_size=batch_size,
                verbose=0,
                callbacks=_callbacks(keras, settings, on_epoch),
            )
            test = None
            if dataset.x_test is not None:
                test = model.evaluate(dataset.x_test, dataset.y_test, batch_size=512, verbose=0, return_dict=True)
                test = {name: float(value) for name, value in test.items()}
        if checkpoint is not None:
            _save(model, checkpoint)
    logs = {name: [float(v) for v in values] for name, values in history.history.items()}
    return TrainOutcome(logs, test, epochs=len(logs.get("loss", [])))


def _save(model: Any, path: Path) -> None:
    """Weights and optimizer state (Adam's moments, the step count), atomically."""
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"o{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)})
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, path)


def _restore(model: Any, path: Path | None) -> None:
    if path is None or not path.exists():
        raise FileNotFoundError(f"no checkpoint to continue from at {path}")
    with np.load(path) as saved:
        weights = [saved[f"w{i}"] for i in range(sum(k.startswith("w") for k in saved.files))]
        optimizer = [saved[f"o{i}"] for i in range(sum(k.startswith("o") for k in saved.files))]
    model.set_weights(weights)
    model.optimizer.build(model.trainable_variables)
    for variable, value in zip(model.optimizer.variables, optimizer, strict=True):
        variable.assign(value)


@contextlib.contextmanager
def _custom_gradients_released():
    """Drops the gradient functions a trial's traced steps registered, once it is done.

    Inside a tf.function, every tf.custom_gradient call (Keras' optimizer all-reduces
    gradients through one) registers a gradient function in TensorFlow's global registry
    that never lets go; it holds tensors of the trial's graphs, so each trial's
    train and test functions (~4-5 MiB here) stayed alive for the life of the process
    whatever clear_session does (tensorflow/tensorflow#97697). The registry is private
    API: if it moves, this does nothing and training is unaffected.
    """
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    before = set(registry) if isinstance(registry, dict) else set()
    try:
        yield
    finally:
        if isinstance(registry, dict):
            # Only this trial's entries: older graphs of the caller may still need theirs.
            for name in [n for n in registry if n.startswith("CustomGradient-") and n not in before]:
                del registry[name]


def _callbacks(keras: Any, settings: TrainSettings, on_epoch: EpochCallback | None) -> list:
    callbacks = [_epoch_watch(keras, on_epoch)]
    if settings.patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=settings.monitor,
                mode="max" if higher_is_better(settings.monitor) else "min",
                patience=settings.patience,
                restore_best_weights=True,
            )
        )
    return callbacks


def _epoch_watch(keras: Any, on_epoch: EpochCallback | None) -> Any:
    """Reports each epoch and stops when the report asks to (a pruned trial) or on a NaN/inf loss.

    Epoch-level on purpose: a per-batch hook (keras' TerminateOnNaN) makes Keras
    fetch the logs after every step, which slows small models noticeably.
    """

    class EpochWatch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            logs = logs or {}
            if on_epoch is not None and on_epoch(epoch, logs):
                self.model.stop_training = True
            if not math.isfinite(float(logs.get("loss", 0.0))):
                self.model.stop_training = True

    return EpochWatch()
