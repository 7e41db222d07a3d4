"""Training a trial on in-memory arrays with one call into TensorFlow per epoch.

``model.fit`` on numpy arrays pays, every epoch, for a tf.data pipeline, an iterator
and a Python round trip per ``steps_per_execution`` steps; for the small and medium
models a study tries, that is most of a trial's time. Here an epoch is one
``tf.function``: it takes the epoch's order of the training samples (drawn with numpy
from the trial's seed and the epoch number, so a trial is reproducible bit for bit and
a continued hyperband segment shuffles as the whole run would), gathers each batch from
the training data held as tensors and calls the model's own Keras ``train_step`` in a
graph loop, so the compiled loss, metrics, optimizer and loss scaling stay Keras'.
Validation is a second ``tf.function`` over the validation set through ``test_step``.
Keras callbacks still run, per epoch, with the logs ``model.fit`` gives them.

``why_not`` says when this path cannot keep fit's semantics, and the trainer then
calls ``model.fit`` instead (``training.fit``). Keras and TensorFlow are imported
inside the functions.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import Any, Hashable, Sequence

import numpy as np

# Training data held as tensors on the device: above this, fit's streaming pipeline.
MAX_BYTES = 1 << 30

# Callback hooks the fast path never calls: a callback with any of its own uses model.fit.
BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
               "on_test_batch_begin", "on_test_batch_end")


def why_not(model: Any, callbacks: Sequence[Any], x: Any, y: Any) -> str | None:
    """Why this fit must go through ``model.fit`` (a short reason), or None."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer
    from keras.src.utils.python_utils import is_default

    for callback in callbacks:
        hooks = [name for name in BATCH_HOOKS if not is_default(getattr(callback, name))]
        if hooks:
            return f"callback {type(callback).__name__} has per-batch hooks ({', '.join(hooks)})"
    for step in ("train_step", "test_step"):
        if getattr(type(model), step, None) is not getattr(TensorFlowTrainer, step):
            return f"model {type(model).__name__} has its own {step}"
    if getattr(model, "_distribute_strategy", None) is not None:
        return "the model was built under a distribution strategy"
    if getattr(model, "jit_compile", False) is True:
        return "the model is compiled with jit_compile=True"
    arrays = _flat(x) + _flat(y)
    if not arrays or not all(isinstance(a, np.ndarray) for a in arrays):
        return "the data is not numpy arrays"
    if sum(a.nbytes for a in arrays) > MAX_BYTES:
        return f"the training data is over {MAX_BYTES >> 20} MiB"
    return None


class FitFallback(UserWarning):
    """A trial trains through model.fit, the slower path: why_not's reason."""


_SAID: set[str] = set()


def say_fallback(reason: str) -> None:
    """Once per process and reason: this trial trains with model.fit, and why."""
    if reason in _SAID:
        return
    _SAID.add(reason)
    warnings.warn(FitFallback(f"hparams_lab trains with model.fit, not its faster epoch loop: {reason}"),
                  stacklevel=2)


def _flat(arrays: Any) -> list[Any]:
    import tensorflow as tf

    return tf.nest.flatten(arrays)


def order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training samples' order in ``epoch``: fixed by the trial's seed and the epoch alone."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


class EpochRunner:
    """One model's epoch and validation functions over fixed training and validation arrays."""

    def __init__(self, model: Any, x: Any, y: Any, x_val: Any, y_val: Any, batch_size: int):
        import tensorflow as tf

        self.model, self.batch_size = model, int(batch_size)
        self.n = len(_flat(x)[0])
        self.steps = math.ceil(self.n / self.batch_size)
        self.val_steps = math.ceil(len(_flat(x_val)[0]) / self.batch_size)
        tensors = lambda arrays: tf.nest.map_structure(lambda a: tf.identity(tf.convert_to_tensor(a)), arrays)
        self.train_data, self.val_data = tensors((x, y)), tensors((x_val, y_val))
        self.arrays = _flat((x, y, x_val, y_val))  # what the tensors hold (matches)
        self.train_epoch = tf.function(self._train_epoch)
        self.evaluate = tf.function(self._evaluate)

    def build(self) -> None:
        """Model, loss, metrics and optimizer variables made before tracing, as fit would."""
        import tensorflow as tf

        model = self.model
        first = tf.nest.map_structure(lambda t: t[:1], self.train_data)
        model._symbolic_build(data_batch=first)

    def _train_epoch(self, order: Any) -> None:
        import tensorflow as tf

        b, model, data = self.batch_size, self.model, self.train_data

        def body(i: Any) -> Any:
            index = order[i * b:(i + 1) * b]
            model.train_step(tf.nest.map_structure(lambda t: tf.gather(t, index), data))
            return (i + 1,)

        tf.while_loop(lambda i: i < self.steps, body, (tf.constant(0),))

    def _evaluate(self) -> None:
        import tensorflow as tf

        b, model, data = self.batch_size, self.model, self.val_data

        def body(i: Any) -> Any:
            model.test_step(tf.nest.map_structure(lambda t: t[i * b:(i + 1) * b], data))
            return (i + 1,)

        tf.while_loop(lambda i: i < self.val_steps, body, (tf.constant(0),))

    def fit(self, callbacks: Any, *, seed: int, initial_epoch: int, epochs: int) -> None:
        """model.fit's epoch loop, callbacks included, one graph call per epoch and split."""
        import tensorflow as tf

        model = self.model
        self.build()
        model.stop_training = False
        callbacks.on_train_begin()
        logs: dict[str, Any] | None = None
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            self.train_epoch(tf.constant(order(seed, epoch, self.n)))
            logs = dict(model.get_metrics_result())
            callbacks.on_test_begin()
            model.reset_metrics()
            self.evaluate()
            val = dict(model.get_metrics_result())
            callbacks.on_test_end(val)
            logs.update({f"val_{name}": value for name, value in val.items()})
            callbacks.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        if epochs > initial_epoch and hasattr(model.optimizer, "finalize_variable_values"):
            model.optimizer.finalize_variable_values(model.trainable_weights)
        callbacks.on_train_end(logs)


    def matches(self, model: Any, x: Any, y: Any, x_val: Any, y_val: Any, batch_size: int) -> bool:
        """Whether ``model`` (a fresh build of the same shape) can train on this runner's
        traced functions: equal arrays (the same data loaded again by the next study is equal,
        for a fraction of a trace's cost), the same batch size, variables of equal shapes."""
        arrays = _flat((x, y, x_val, y_val))
        same_data = len(arrays) == len(self.arrays) and all(map(_equal, arrays, self.arrays))
        return (same_data and int(batch_size) == self.batch_size
                and _shapes(model.variables) == _shapes(self.model.variables)
                and type(model.optimizer) is type(self.model.optimizer))

    def adopt(self, fresh: Any) -> Any:
        """The kept model, with every value of ``fresh``: weights and dropout seeds as the trial's
        seed built them, the optimizer's step count, slots and learning rate (a variable) as
        new. So the trial trains exactly as it would on a model of its own, without tracing."""
        model = self.model
        for kept, value in zip(model.variables, fresh.variables, strict=True):
            kept.assign(value)
        if not fresh.optimizer.built:  # built already when a segment restored its checkpoint
            fresh.optimizer.build(fresh.trainable_variables)
        for kept, value in zip(model.optimizer.variables, fresh.optimizer.variables, strict=True):
            kept.assign(value)
        return model


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a is b or (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b))


def _shapes(variables: Sequence[Any]) -> list[tuple]:
    return [(tuple(v.shape), str(v.dtype)) for v in variables]


# Runners kept between trials, by the trainer's key for a model's shape (training.fit): a
# trial of a shape seen before reuses its traced epoch and validation functions (~0.7 s of
# tracing for the default MLP). Few, most recent first out, so memory stays bounded.
_KEPT: "OrderedDict[Hashable, EpochRunner]" = OrderedDict()
KEPT_RUNNERS = 4


def fit(model: Any, x: Any, y: Any, x_val: Any, y_val: Any, *, batch_size: int, callbacks: list,
        seed: int, initial_epoch: int, epochs: int, key: Hashable | None = None) -> Any:
    """Trains like ``model.fit(x, y, validation_data=(x_val, y_val), ...)``; returns the model
    that trained: ``model``, or with a ``key`` seen before a kept model of the same shape
    holding ``model``'s values (``EpochRunner.adopt``). Its History is ``model.history``."""
    import keras

    runner = _KEPT.get(key) if key is not None else None
    if runner is not None and runner.matches(model, x, y, x_val, y_val, batch_size):
        model = runner.adopt(model)
        _KEPT.move_to_end(key)
    else:
        runner = EpochRunner(model, x, y, x_val, y_val, batch_size)
        if key is not None:
            _KEPT[key] = runner
            while len(_KEPT) > KEPT_RUNNERS:
                _KEPT.popitem(last=False)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=False, verbose=0, epochs=epochs, steps=runner.steps, model=model)
    runner.fit(callback_list, seed=seed, initial_epoch=initial_epoch, epochs=epochs)
    return model
