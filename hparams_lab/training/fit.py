"""Train one trial: build, compile, fit, evaluate. The only module here that runs Keras.

Keras is imported inside the functions, so importing this module stays cheap and
TensorFlow loads only when a trial really trains.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import math
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hparams_lab.core.contract import EpochCallback
from hparams_lab.core.errors import UserError, one_line
from hparams_lab.core.metrics import DIRECTIONS, higher_is_better, monitored
from hparams_lab.core.trial import Trial
from hparams_lab.store.kept import has_model
from hparams_lab.training import costs
from hparams_lab.training import epochs as epoch_loop
from hparams_lab.training.compile import compile_args, is_compiled
from hparams_lab.training.data import Dataset, cv_fold
from hparams_lab.training.importer import import_function
from hparams_lab.training.layers import rates, set_rates
from hparams_lab.training.models import DROPOUT_RATE, ModelSpec, build_model, build_optimizer
from hparams_lab.training.saving import best_epoch_tracker, save_model, unsaved, worth_keeping

Hook = str | Callable[..., Any] | None  # 'package.module:function', a function, or none


@dataclass(frozen=True)
class TrainSettings:
    """Study-wide training settings; a trial's own ``epochs``/``batch_size`` hparams win."""

    epochs: int = 20
    batch_size: int = 64
    patience: int | None = None  # early stopping on the monitored validation metric
    monitor: str = "val_accuracy"
    max_epochs: int | None = None  # caps every trial, an 'epochs' hparam too (quick runs)
    direction: str | None = None  # --direction of the ranked metric; None: the name's rule
    loss: Any = None  # a Keras loss name or object; None: the task's (training.compile)
    metrics: tuple[Any, ...] | None = None  # Keras metric names or objects; None: the task's
    callbacks: Hook = None  # (hparams[, run_dir]) -> [keras callbacks], beside hparams_lab's own
    fit: Hook = None  # (hparams, model, data, callbacks) -> History, instead of model.fit
    # --keep-best: save each trial's model in its run directory (training.saving): "best" the
    # best epoch's weights by ``monitor`` (a best_val_ ranking), "last" as trained; None: no file.
    keep_model: str | None = None

    @classmethod
    def from_record(cls, settings: Mapping[str, Any], metric: str, **given: Any) -> "TrainSettings":
        """The training settings experiment.json records; early stopping watches the
        ranked metric's per-epoch validation twin. run_study and rerun both build them here;
        ``given`` are the objects (a loss, callables) the record holds only the names of."""
        recorded = {key: settings.get(key) for key in ("loss", "callbacks", "fit")}
        metrics = settings.get("metrics")
        recorded["metrics"] = None if metrics is None else tuple(metrics)
        recorded.update({key: value for key, value in given.items() if value is not None})
        return cls(
            settings["epochs"],
            settings["batch_size"],
            settings.get("patience"),
            monitored(metric),
            settings.get("max_epochs"),
            settings.get("direction"),
            **recorded,
        )

    @property
    def monitor_maximizes(self) -> bool:
        return DIRECTIONS[self.direction] if self.direction else higher_is_better(self.monitor)


@dataclass(frozen=True)
class TrainOutcome:
    history: dict[str, list[float]]
    test: dict[str, float] | None = None
    epochs: int = 0
    costs: dict[str, float] | None = None  # training.costs: params, epoch_time_s, latency_ms, peak_memory_mb


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
    # TensorFlow and Keras leave ~10^6 objects that live as long as the process; frozen,
    # the collections clear_session runs every trial skip them (0.2 s a trial here).
    gc.freeze()
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

    On an exception everything but known noise is written back: the held text may explain it.
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
            sys.stderr.write("".join(line for line in lines if keep(line) or failed and _not_noise(line)))
            sys.stderr.flush()


def trainer(data: Dataset, model_spec: ModelSpec, settings: TrainSettings, folds: int | None, seed: int,
            upcoming: Sequence[Mapping[str, Any]] = ()):
    """The attempt's ``train(trial, on_epoch)`` (core.contract); with CV, each trial trains on its own fold.

    ``upcoming``: the hparams of the trials to come, in order (a fixed plan), when this process
    trains them all: while a trial trains, the next new model shape among them is traced."""
    callbacks, fit = _hook(settings.callbacks, "--callbacks"), _hook(settings.fit, "--fit")
    coming = [dict(hparams) for hparams in upcoming]

    def train(trial: Trial, on_epoch: EpochCallback, **segment: Any) -> TrainOutcome:
        fold_data = data if trial.fold is None else cv_fold(data, trial.fold, folds, seed)
        if trial.hparams in coming:  # the plan, from the trial after this one
            del coming[:coming.index(trial.hparams) + 1]
        return train_trial(trial, fold_data, model_spec, settings, on_epoch, user_callbacks=callbacks,
                           user_fit=fit, warm=_first_untraced(coming[:WARM_AHEAD], trial.hparams, model_spec,
                                                              settings), **segment)

    return train


# How far down the plan a trial looks for a model shape to trace while it trains.
WARM_AHEAD = 4


def _first_untraced(coming: Sequence[Mapping[str, Any]], current: Mapping[str, Any], model_spec: ModelSpec,
                    settings: TrainSettings) -> Mapping[str, Any] | None:
    """The first coming hparams whose model shape no kept runner has (nor this trial's): built-in
    models only, whose builder is ours to call from another thread."""
    if not model_spec.builtin or settings.fit is not None:
        return None
    now = _shape_key(current, model_spec, settings, _batch_size(current, settings), True)
    for hparams in coming:
        key = _shape_key(hparams, model_spec, settings, _batch_size(hparams, settings), True)
        if key != now and epoch_loop.kept(key) is None:
            return hparams
    return None


def _batch_size(hparams: Mapping[str, Any], settings: TrainSettings) -> int:
    return int(hparams.get("batch_size", settings.batch_size))


def _hook(hook: Hook, flag: str) -> Callable[..., Any] | None:
    if hook is None or callable(hook):
        return hook
    signature = "(hparams, model, data, callbacks) -> History" if flag == "--fit" else "(hparams) -> [callbacks]"
    return import_function(hook, flag, signature)


def compiled_model(trial_hparams: Mapping[str, Any], dataset: Dataset, model_spec: ModelSpec,
                   settings: TrainSettings) -> Any:
    """The trial's model, compiled: the builder's own compile kept, else the task's loss and
    metrics (or the study's --loss / --metrics) with the optimizer hparams."""
    return _built_and_compiled(trial_hparams, dataset, model_spec, settings)[0]


def _built_and_compiled(trial_hparams: Mapping[str, Any], dataset: Dataset, model_spec: ModelSpec,
                        settings: TrainSettings) -> tuple[Any, bool]:
    """compiled_model's model, and whether hparams_lab compiled it (its optimizer from the hparams)."""
    hparams = dict(trial_hparams)
    model = build_model(model_spec, hparams, dataset.input_shape, dataset.n_outputs, dataset.task)
    if is_compiled(model):
        return model, False
    model.compile(
        optimizer=build_optimizer(hparams),
        **compile_args(model, dataset.task, settings.loss, settings.metrics),
        steps_per_execution=_STEPS_PER_EXECUTION,
    )
    return model, True


def logged_metrics(trial: Trial, dataset: Dataset, model_spec: ModelSpec, settings: TrainSettings, *,
                   keep: bool = False) -> list[str]:
    """What a trial will log, found by evaluating the first trial's model on a few validation
    samples: the names to declare in TensorBoard and to check --metric against.

    It also finds, before anything is written, what would fail every trial: labels that
    don't fit the model's outputs or loss, an unknown loss or metric, a model that does
    not take the data. Those are UserErrors. ``keep``: this process trains the trials, so
    the evaluation's model and traced validation are kept for the first trial's shape
    (training.epochs), as if that trial had begun.
    """
    keras = import_keras()
    ours = _only_ours(dataset, model_spec, settings.callbacks, settings.fit)
    _fresh_session(keras, ours, trial.seed)
    try:
        with _custom_gradients_released(), _held_stderr(keep=_not_noise):
            model = compiled_model(trial.hparams, dataset, model_spec, settings)
            _check_classes_fit(model, dataset, model_spec)
            if dataset.batched:
                logs = model.evaluate(dataset.x_val.take(1), verbose=0, return_dict=True)
            elif epoch_loop.why_not(model, [], dataset.x_val, dataset.y_val) is None:
                batch_size = _batch_size(trial.hparams, settings)
                kept = (_shape_key(trial.hparams, model_spec, settings, batch_size, True), dataset.x_train,
                        dataset.y_train) if keep and ours else None
                logs = epoch_loop.evaluate(model, _head(dataset.x_val), _head(dataset.y_val), batch_size=batch_size,
                                           kept=kept)
            else:
                logs = model.evaluate(_head(dataset.x_val), _head(dataset.y_val), verbose=0, return_dict=True)
    except UserError:
        raise
    except (Exception, SystemExit) as exc:  # SystemExit: a user's model calling sys.exit()
        raise UserError(
            f"the first trial's model cannot be evaluated on the validation data {dataset.name!r} "
            f"(task {dataset.task}): {one_line(exc)}"
        ) from None
    finally:
        _fresh_session(keras, ours)
    return list(logs)


def _check_classes_fit(model: Any, dataset: Dataset, model_spec: ModelSpec) -> None:
    """Multiclass labels 0..n-1 need n outputs, compiled model or not (said plainly, before
    TensorFlow says 'indices[0] = 7 is not in [0, 5)')."""
    if dataset.task != "multiclass" or not isinstance(dataset.n_outputs, int):
        return
    try:
        width = model.output_shape[-1]
    except (AttributeError, ValueError, IndexError, TypeError):
        return  # a subclassed or multi-output model: Keras will say
    if isinstance(width, int) and width < dataset.n_outputs:
        raise UserError(
            f"model {model_spec.name!r} has {width} outputs, but the labels of {dataset.name!r} go up to "
            f"{dataset.n_outputs - 1}; end the model with Dense({dataset.n_outputs}, activation='softmax')"
        )


def _head(arrays: Any, n: int = 32) -> Any:
    if isinstance(arrays, Mapping):
        return {name: a[:n] for name, a in arrays.items()}
    return arrays[:n]


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
    run_dir: Path | None = None,
    user_callbacks: Callable[..., Any] | None = None,
    user_fit: Callable[..., Any] | None = None,
    warm: Mapping[str, Any] | None = None,
) -> TrainOutcome:
    """Fits one model for one trial and returns its per-epoch history (and test metrics).

    A segment (hyperband) trains epochs ``start``..``stop`` only: it restores the
    weights and optimizer state ``checkpoint`` holds when ``start`` > 0, and saves
    them there at the end. ``user_callbacks(hparams[, run_dir])`` adds the user's Keras
    callbacks; ``user_fit(hparams, model, data, callbacks)`` trains instead of model.fit.
    ``warm``: a coming trial's hparams, whose model shape is traced while this one trains
    (training.epochs.warming), when this trial trains through the epoch loop.
    """
    keras = import_keras()

    # A fresh graph per trial keeps memory flat across many trials; the seed makes the
    # same trial give the same weights, shuffles and dropout masks (a continued segment
    # restores its dropout streams from the checkpoint; model.fit's shuffling draws from
    # the segment's own seeded stream).
    only_ours = _only_ours(dataset, model_spec, user_callbacks, user_fit)
    _fresh_session(keras, only_ours, trial.seed + start)

    hparams = dict(trial.hparams)
    epochs = int(hparams.get("epochs", settings.epochs))
    if settings.max_epochs is not None:
        epochs = min(epochs, settings.max_epochs)
    if stop is not None:
        epochs = stop
    batch_size = _batch_size(hparams, settings)

    with _custom_gradients_released():
        saved = _read_checkpoint(checkpoint) if start > 0 else None
        model = _kept_continuation(hparams, model_spec, settings, batch_size, saved) if saved and only_ours else None
        if model is not None:
            ours = True  # _only_ours: a built-in model, compiled here
        else:
            model, ours = _built_and_compiled(hparams, dataset, model_spec, settings)
            if saved is not None:
                _assign(model, *saved)
        watch = _epoch_watch(keras, on_epoch, start, epochs)
        callbacks = _callbacks(keras, settings, watch) + _users(user_callbacks, hparams, run_dir)
        keeping = settings.keep_model is not None and run_dir is not None
        # A segment keeps its last epoch: the next one goes on from there.
        tracker = (best_epoch_tracker(keras, settings.monitor, settings.monitor_maximizes, start)
                   if keeping and settings.keep_model == "best" and stop is None else None)
        if tracker is not None:
            callbacks.insert(1, tracker)
        cost_timer = costs.epoch_timer(keras)  # cost metrics (training.costs): epoch times
        callbacks.append(cost_timer)
        with _held_stderr(keep=_not_noise), _warming(warm, ours, model, callbacks, dataset, model_spec, settings):
            if user_fit is not None:
                user_fit(hparams, model, dataset, callbacks)
                name = getattr(user_fit, "__qualname__", user_fit)
                if not watch.logs:
                    raise RuntimeError(
                        f"--fit {name!r} trained without hparams_lab's callbacks: pass the callbacks it "
                        "receives on to model.fit(..., callbacks=callbacks)"
                    )
                if not any(key.startswith("val_") for key in watch.logs[-1]):
                    raise RuntimeError(
                        f"--fit {name!r} trained without validation data, so there is nothing to rank: pass "
                        "validation_data=(data.x_val, data.y_val) (tf.data: validation_data=data.x_val) to model.fit"
                    )
            elif dataset.batched:
                # shuffle=False: a Dataset's order is the user's own (Keras warns otherwise).
                model.fit(dataset.x_train, validation_data=dataset.x_val, initial_epoch=start, epochs=epochs,
                          shuffle=False, verbose=0, callbacks=callbacks)
            else:
                model = _fit_arrays(model, dataset, callbacks, seed=trial.seed, initial_epoch=start, epochs=epochs,
                                    batch_size=batch_size,
                                    key=_shape_key(hparams, model_spec, settings, batch_size, ours))
            test = None
            if dataset.x_test is not None:
                if dataset.batched:
                    test = model.evaluate(dataset.x_test, verbose=0, return_dict=True)
                else:
                    test = model.evaluate(dataset.x_test, dataset.y_test, batch_size=512, verbose=0,
                                          return_dict=True)
                test = {name: float(value) for name, value in test.items()}
        if checkpoint is not None:
            _save(model, checkpoint)
        measured = costs.measure(model, dataset, cost_timer)  # cost metrics (training.costs)
    logs = {name: [float(v) for v in values] for name, values in watch.history().items()}
    # A segment's model is kept when it beats the bar, or refreshed when its configuration's is
    # kept already (best_ metrics only improve over the segments; final_ ones are this segment's).
    if keeping and watch.logs and (worth_keeping(run_dir, logs, test) or (stop is not None and has_model(run_dir))):
        _keep(model, run_dir, tracker, start + len(watch.logs), watch.logs[-1], settings.monitor)
    return TrainOutcome(logs, test, epochs=len(watch.logs), costs=measured)


def _only_ours(dataset: Dataset, model_spec: ModelSpec, user_callbacks: Any, user_fit: Any) -> bool:
    """Whether all a trial runs in TensorFlow is hparams_lab's: a built-in model on in-memory
    arrays through the epoch loop, no callbacks or fit of the user's. None of it draws from
    a stateful random op (tests/test_epochs looks through the traced graphs)."""
    return (model_spec.builtin and user_callbacks is None and user_fit is None and not dataset.batched
            and epoch_loop.arrays_fit(dataset.x_train, dataset.y_train))


def _fresh_session(keras: Any, keep_kernels: bool, seed: int | None = None) -> None:
    """clear_session, then set_random_seed(seed) unless None; TensorFlow's kernel cache kept
    through both when ``keep_kernels`` (``_only_ours``)."""
    with _kernels_kept() if keep_kernels else contextlib.nullcontext():
        keras.backend.clear_session()  # with a full collection (gc)
        epoch_loop.settle()
        if seed is not None:
            keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def _kernels_kept():
    """clear_session and set_random_seed, less their clearing of TensorFlow's kernel cache.

    TensorFlow clears it on seeding to restart the stateful random ops' streams; it also
    holds the kept runners' instantiated epoch functions (training.epochs), which would be
    set up again each trial: ~0.2 s, most of what a warm trial of a few epochs costs. For
    a trial whose graphs draw from no stateful random op (``_only_ours``) keeping it
    changes no number. The seed itself is set as TensorFlow sets it. Private TensorFlow
    API: if it moves, the cache is cleared as before."""
    from tensorflow.python.eager import context

    ctx = context.context()
    set_global_seed = getattr(context, "set_global_seed", None)
    if set_global_seed is None or not hasattr(ctx, "_rng") or not hasattr(ctx, "_seed"):
        yield
        return

    def seeded(seed: Any) -> None:  # Context._set_global_seed, without TFE_ContextClearCaches
        ctx._seed = seed
        ctx._rng = random.Random(int(seed))

    context.set_global_seed, ctx.clear_kernel_cache = seeded, lambda: None
    try:
        yield
    finally:
        context.set_global_seed = set_global_seed
        del ctx.clear_kernel_cache  # the class's method again


def _warming(warm: Mapping[str, Any] | None, ours: bool, model: Any, callbacks: list, dataset: Dataset,
             model_spec: ModelSpec, settings: TrainSettings) -> Any:
    """training.epochs.warming for the coming ``warm`` hparams, when both trials train through
    the epoch loop (the same data and callbacks); else nothing."""
    if (warm is None or not ours or dataset.batched
            or epoch_loop.why_not(model, callbacks, dataset.x_train, dataset.y_train) is not None):
        return contextlib.nullcontext()
    hparams, batch_size = dict(warm), _batch_size(warm, settings)
    return epoch_loop.warming(_shape_key(hparams, model_spec, settings, batch_size, True),
                              lambda: _built_and_compiled(hparams, dataset, model_spec, settings)[0], batch_size,
                              dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val)


def _shape_key(hparams: Mapping[str, Any], model_spec: ModelSpec, settings: TrainSettings, batch_size: int,
               ours: bool) -> tuple:
    """Which trials can share one traced epoch loop (training.epochs): the same model, hparams,
    batch size, loss and metrics; the learning rate aside when hparams_lab built the optimizer
    (a Keras optimizer holds it in a variable, not in the graph), and in hparams_lab's own
    models a dropout rate above 0 (a variable too: training.layers; 0 is no layer). ``epochs``
    is not in the graph either: the loop's length."""
    skip = {"epochs", "learning_rate"} if ours else {"epochs"}

    def shape_of(name: str, value: Any) -> str:
        if model_spec.builtin and DROPOUT_RATE.match(name) and isinstance(value, (int, float)) and 0 < value < 1:
            return "a rate"
        return repr(value)

    shape = tuple(sorted((name, shape_of(name, value)) for name, value in hparams.items() if name not in skip))
    return (repr(model_spec), shape, batch_size, repr(settings.loss), repr(settings.metrics))


def _fit_arrays(model: Any, dataset: Dataset, callbacks: list, *, seed: int, initial_epoch: int, epochs: int,
                batch_size: int, key: tuple | None = None) -> Any:
    """In-memory arrays: an epoch per call into TensorFlow (training.epochs), or model.fit
    where that path cannot keep fit's semantics (said once per process and reason). The
    model that trained: a trial of a shape trained before reuses that one (``key``)."""
    reason = epoch_loop.why_not(model, callbacks, dataset.x_train, dataset.y_train)
    if reason is None:
        return epoch_loop.fit(model, dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val,
                              batch_size=batch_size, callbacks=callbacks, seed=seed, initial_epoch=initial_epoch,
                              epochs=epochs, key=key)
    epoch_loop.say_fallback(reason)
    model.fit(
        dataset.x_train,
        dataset.y_train,
        validation_data=(dataset.x_val, dataset.y_val),
        initial_epoch=initial_epoch,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=callbacks,
    )
    return model


def _keep(model: Any, run_dir: Path, tracker: Any, last_epoch: int, last_logs: Mapping[str, Any],
          monitor: str) -> None:
    """The trial's model for --keep-best: its best epoch's weights when tracked, else as trained.
    After the test metrics and the checkpoint, which are of the weights training ended with."""
    try:
        if tracker is not None and tracker.weights is not None:
            model.set_weights(tracker.weights)
            save_model(model, run_dir, epoch=tracker.epoch, logs=tracker.logs, weights="best epoch",
                       monitor=monitor)
        else:
            save_model(model, run_dir, epoch=last_epoch, logs=last_logs, weights="as trained", monitor=monitor)
    except Exception as err:  # a model Keras cannot serialize: the trial still counts; export says why
        unsaved(run_dir, err)


def _users(user_callbacks: Callable[..., Any] | None, hparams: dict, run_dir: Path | None) -> list:
    """The user's callbacks for this trial; a function taking two arguments gets the run directory."""
    if user_callbacks is None:
        return []
    try:
        wants_dir = len(inspect.signature(user_callbacks).parameters) >= 2
    except (TypeError, ValueError):
        wants_dir = False
    made = user_callbacks(dict(hparams), run_dir) if wants_dir else user_callbacks(dict(hparams))
    if made is None:
        return []
    if not isinstance(made, (list, tuple)):
        raise TypeError(f"--callbacks returned a {type(made).__name__}, not a list of Keras callbacks")
    return list(made)


def _save(model: Any, path: Path) -> None:
    """Weights, optimizer state (Adam's moments, the step count) and the rest a continuation
    needs to train as the whole run would: the other variables (dropout's random streams),
    hparams_lab's dropout rates. Atomically."""
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"o{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)})
    arrays.update({f"s{i}": v.numpy() for i, v in enumerate(_others(model))})
    arrays["rates"] = np.asarray(rates(model), np.float64)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, path)


def _read_checkpoint(path: Path | None) -> tuple[dict[str, list], list[float] | None]:
    """A checkpoint's arrays by kind (w: weights, o: optimizer, s: other variables) and its
    dropout rates (None in one of an earlier version)."""
    if path is None or not path.exists():
        raise FileNotFoundError(f"no checkpoint to continue from at {path}")
    with np.load(path) as saved:
        arrays = {prefix: [saved[f"{prefix}{i}"] for i in range(sum(k[0] == prefix and k[1:].isdigit()
                                                                       for k in saved.files))]
                  for prefix in "wos"}
        dropout_rates = [float(r) for r in saved["rates"]] if "rates" in saved.files else None
    return arrays, dropout_rates


def _others(model: Any) -> list[Any]:
    """The model's variables that are not weights: its layers' random streams."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _assign(model: Any, arrays: dict[str, list], dropout_rates: list[float] | None) -> None:
    """``model`` takes a checkpoint's values (``_read_checkpoint``). One written before the random
    streams and rates were kept leaves them as the segment's fresh model drew them."""
    model.set_weights(arrays["w"])
    if not model.optimizer.built:  # a kept model's is (training.epochs): built again, it would have new slots
        model.optimizer.build(model.trainable_variables)
    for variable, value in zip(model.optimizer.variables, arrays["o"], strict=True):
        variable.assign(value)
    if dropout_rates is not None:
        for variable, value in zip(_others(model), arrays["s"], strict=True):
            variable.assign(value)
        set_rates(model, dropout_rates)


def _kept_continuation(hparams: Mapping[str, Any], model_spec: ModelSpec, settings: TrainSettings, batch_size: int,
                       saved: tuple[dict[str, list], list[float] | None]) -> Any | None:
    """A continued segment's model without building one: the model this process keeps for its
    shape (training.epochs), with the checkpoint's values (``saved``: _read_checkpoint's) in
    it, when there is one whose variables they fit (another study's data may differ in shape)
    and they hold all a continuation needs; else None. A built model restored from the same
    checkpoint trains the same, bit for bit (tests/test_epochs), so which path a segment takes,
    on which worker, changes no number."""
    runner = epoch_loop.kept(_shape_key(hparams, model_spec, settings, batch_size, True))
    if runner is None:
        return None
    arrays, dropout_rates = saved
    model = runner.model
    if dropout_rates is None or not model.optimizer.built:
        return None
    kinds = {"w": model.weights, "o": model.optimizer.variables, "s": _others(model)}
    if any([tuple(v.shape) for v in kinds[kind]] != [a.shape for a in arrays[kind]] for kind in kinds):
        return None
    _assign(model, arrays, dropout_rates)
    return model


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


def _callbacks(keras: Any, settings: TrainSettings, watch: Any) -> list:
    callbacks = [watch]
    if settings.patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=settings.monitor,
                mode="max" if settings.monitor_maximizes else "min",
                patience=settings.patience,
                restore_best_weights=True,
            )
        )
    return callbacks


def _epoch_watch(keras: Any, on_epoch: EpochCallback | None, start: int, stop: int) -> Any:
    """Reports each epoch and stops when the report asks to (a pruned trial), on a NaN/inf
    loss, or at ``stop`` (a user's fit that trains longer than the trial or segment).

    It numbers epochs itself from ``start``, so a user's fit that knows nothing of
    segments still reports the right epochs. Epoch-level on purpose: a per-batch hook
    (keras' TerminateOnNaN) makes Keras fetch the logs after every step, which slows
    small models noticeably.
    """

    class EpochWatch(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.logs: list[dict[str, float]] = []

        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            logs = dict(logs or {})
            number = start + len(self.logs)
            self.logs.append(logs)
            if on_epoch is not None and on_epoch(number, logs):
                self.model.stop_training = True
            if not math.isfinite(float(logs.get("loss", 0.0))) or number + 1 >= stop:
                self.model.stop_training = True

        def history(self) -> dict[str, list[float]]:
            names = {name: None for logs in self.logs for name in logs}
            out: dict[str, list[float]] = {}
            for name in names:
                try:
                    out[name] = [float(logs.get(name, math.nan)) for logs in self.logs]
                except (TypeError, ValueError):
                    continue  # not a number: nothing to log
            return out

    return EpochWatch()
