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

import contextlib
import gc
import math
import threading
import warnings
from collections import OrderedDict
from typing import Any, Callable, Hashable, Iterator, Sequence

import numpy as np

from hparams_lab.training import costs

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
    return _arrays_why_not(x, y)


def arrays_fit(x: Any, y: Any) -> bool:
    """Whether the data alone can train through the epoch loop (why_not's part of it)."""
    return _arrays_why_not(x, y) is None


def _arrays_why_not(x: Any, y: Any) -> str | None:
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
    """One model's epoch and validation functions.

    The data are the functions' arguments, not constants in their graphs: trials whose
    models agree in shape share one trace whatever their data (another seed's split, a
    cross-validation fold, the next study's load), and validation and test share one."""

    def __init__(self, model: Any, batch_size: int, train_spec: Any, val_spec: Any):
        import tensorflow as tf

        self.model, self.batch_size = model, int(batch_size)
        self.specs = (train_spec, val_spec)
        self.built = self.traced = False
        # Signatures of any number of samples: one trace serves every size. No autograph, as
        # Keras' own fit (its steps are do_not_convert): converting these two functions cost a
        # process's first trace 0.1-0.2 s, and their loops are tf.while_loop already.
        self.train_epoch = tf.function(self._train_epoch, autograph=False,
                                       input_signature=[tf.TensorSpec([None], tf.int32), train_spec])
        self.evaluate = tf.function(self._evaluate, autograph=False, input_signature=[val_spec])

    def build(self, train: Any) -> None:
        """Model, loss, metrics and optimizer variables made before tracing, as fit would; once
        (a kept model stays built)."""
        import tensorflow as tf

        if not self.built:
            self.model._symbolic_build(data_batch=tf.nest.map_structure(lambda t: t[:1], train))
            self.built = True

    def trace(self, train: Any) -> None:
        """Both functions traced, the epoch function's graph also set up, once. Setting it up is
        TensorFlow's work, in C++ without Python's lock, so it runs in a thread, on no samples
        (no variable changes but the metrics' reset each epoch starts with), while validation
        traces in Python: ~75 ms less of a new shape's ~0.6 s (the default MLP)."""
        import tensorflow as tf

        if self.traced:
            return
        self.build(train)
        self.train_epoch.get_concrete_function()
        failed: list[BaseException] = []

        def set_up() -> None:
            try:
                self.train_epoch(tf.zeros([0], tf.int32), train)
            except Exception as err:  # noqa: BLE001 - the first epoch raises it again, in the trial
                failed.append(err)

        thread = threading.Thread(target=set_up, name="hparams_lab-set-up", daemon=True)
        thread.start()
        try:
            self.evaluate.get_concrete_function()
        finally:
            thread.join()
        self.traced = not failed

    def _train_epoch(self, order: Any, data: Any) -> Any:
        """One epoch of train_step over ``data`` in ``order``; the epoch's metrics."""
        import tensorflow as tf

        b, model = self.batch_size, self.model
        model.reset_metrics()  # in the graph: no host round trip per metric

        def body(i: Any) -> Any:
            index = order[i * b:(i + 1) * b]
            model.train_step(tf.nest.map_structure(lambda t: tf.gather(t, index), data))
            return (i + 1,)

        steps = (tf.shape(order)[0] + b - 1) // b
        tf.while_loop(lambda i: i < steps, body, (tf.constant(0),))
        return model.get_metrics_result()

    def _evaluate(self, data: Any) -> Any:
        """test_step over ``data`` in batches; its metrics."""
        import tensorflow as tf

        b, model = self.batch_size, self.model
        model.reset_metrics()

        def body(i: Any) -> Any:
            model.test_step(tf.nest.map_structure(lambda t: t[i * b:(i + 1) * b], data))
            return (i + 1,)

        steps = (tf.shape(tf.nest.flatten(data)[0])[0] + b - 1) // b
        tf.while_loop(lambda i: i < steps, body, (tf.constant(0),))
        return model.get_metrics_result()

    def fit(self, callbacks: Any, train: Any, val: Any, *, seed: int, initial_epoch: int, epochs: int) -> None:
        """model.fit's epoch loop over tensors ``train`` and ``val``, callbacks included, one
        graph call per epoch and split."""
        import tensorflow as tf

        model = self.model
        self.trace(train)
        n = int(_flat(train)[0].shape[0])
        model.stop_training = False
        callbacks.on_train_begin()
        logs: dict[str, Any] | None = None
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            logs = dict(self.train_epoch(tf.constant(order(seed, epoch, n)), train))
            callbacks.on_test_begin()
            val_logs = dict(self.evaluate(val))
            callbacks.on_test_end(val_logs)
            logs.update({f"val_{name}": value for name, value in val_logs.items()})
            callbacks.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        if epochs > initial_epoch and hasattr(model.optimizer, "finalize_variable_values"):
            model.optimizer.finalize_variable_values(model.trainable_weights)
        callbacks.on_train_end(logs)

    def matches(self, model: Any, batch_size: int, specs: tuple) -> bool:
        """Whether ``model`` (a fresh build of the same shape) can train on this runner's
        traced functions: the same batch size and kind of data, variables of equal shapes,
        the same optimizer."""
        return (int(batch_size) == self.batch_size and specs == self.specs
                and _shapes(model.variables) == _shapes(self.model.variables)
                and type(model.optimizer) is type(self.model.optimizer))

    def adopt(self, fresh: Any) -> Any:
        """The kept model, with every value of ``fresh``: weights and dropout seeds as the trial's
        seed built them, dropout rates (training.layers), the optimizer's step count, slots and
        learning rate (a variable) as new. So the trial trains exactly as it would on a model of
        its own, without tracing."""
        from hparams_lab.training.layers import rates, set_rates

        model = self.model
        for kept, value in zip(model.variables, fresh.variables, strict=True):
            kept.assign(value)
        set_rates(model, rates(fresh))  # hparams_lab's dropout layers: their rates
        if not fresh.optimizer.built:  # built already when a segment restored its checkpoint
            fresh.optimizer.build(fresh.trainable_variables)
        for kept, value in zip(model.optimizer.variables, fresh.optimizer.variables, strict=True):
            kept.assign(value)
        return model


# The last data converted (its arrays, its tensors): a study passes the same arrays to each trial.
_DATA: list[Any] = [[], None]


def tensors(arrays: Any) -> Any:
    """``arrays`` as tensors on the device, converted once while the same arrays come back
    (one copy for all the kept runners)."""
    import tensorflow as tf

    flat, (held, converted) = _flat(arrays), _DATA
    if len(flat) != len(held) or any(a is not b for a, b in zip(flat, held)):
        converted = tf.nest.map_structure(lambda a: tf.identity(tf.convert_to_tensor(a)), arrays)
        _DATA[:] = [flat, converted]
    return converted


def evaluate(model: Any, x: Any, y: Any, *, batch_size: int, kept: tuple | None = None) -> dict[str, Any]:
    """``model.evaluate(x, y, return_dict=True)`` through one traced test_step loop (a
    fraction of evaluate's trace): the metrics' values, as tensors. ``kept``: (a trial's
    shape key, its training arrays): the runner is kept for that trial, its validation
    traced already (``x, y`` are validation samples)."""
    import tensorflow as tf

    data = tf.nest.map_structure(tf.convert_to_tensor, (x, y))
    runner = (EpochRunner(model, batch_size, spec(data), spec(data)) if kept is None
              else _runner(model, batch_size, (spec(kept[1:]), spec(data)), kept[0]))  # a study before may have kept it
    runner.build(data)
    return dict(runner.evaluate(data))


def spec(data: Any) -> Any:
    """The signature of ``data`` (tensors) for any number of samples."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), data)


def _kept_bytes() -> int:
    """The kept models' variables (weights, optimizer slots), in bytes."""
    return sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize
               for runner in _KEPT.values() for v in [*runner.model.variables, *runner.model.optimizer.variables])


def _shapes(variables: Sequence[Any]) -> list[tuple]:
    return [(tuple(v.shape), str(v.dtype)) for v in variables]


# Runners kept between trials, by the trainer's key for a model's shape (training.fit): a
# trial of a shape seen before reuses its traced epoch and validation functions (~0.7 s of
# tracing for the default MLP), whatever its data. The least recently used go first once
# there are more than KEPT_RUNNERS or their models' variables pass KEPT_BYTES (a 32-point
# grid revisits each of its 16 shapes; a big model's runners take the memory of few).
_KEPT: "OrderedDict[Hashable, EpochRunner]" = OrderedDict()
KEPT_RUNNERS = 16
KEPT_BYTES = 1 << 28


def fit(model: Any, x: Any, y: Any, x_val: Any, y_val: Any, *, batch_size: int, callbacks: list,
        seed: int, initial_epoch: int, epochs: int, key: Hashable | None = None) -> Any:
    """Trains like ``model.fit(x, y, validation_data=(x_val, y_val), ...)``; returns the model
    that trained: ``model``, or with a ``key`` seen before a kept model of the same shape
    holding ``model``'s values (``EpochRunner.adopt``). Its History is ``model.history``."""
    import keras

    train, val = tensors(((x, y), (x_val, y_val)))
    specs = (spec(train), spec(val))
    runner = _runner(model, batch_size, specs, key)
    model = runner.model
    steps = math.ceil(len(_flat(x)[0]) / runner.batch_size)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=False, verbose=0, epochs=epochs, steps=steps, model=model)
    runner.fit(callback_list, train, val, seed=seed, initial_epoch=initial_epoch, epochs=epochs)
    return model


def _runner(model: Any, batch_size: int, specs: tuple, key: Hashable | None) -> EpochRunner:
    """The runner kept for ``key`` holding ``model``'s values (EpochRunner.adopt) when it fits,
    else a new one for ``model``, kept under ``key``. The model to train is its ``model``."""
    runner = _KEPT.get(key) if key is not None else None
    if runner is not None and runner.matches(model, batch_size, specs):
        if model is not runner.model:  # else a continued segment's values are in it already (training.fit)
            runner.adopt(model)
        _KEPT.move_to_end(key)
        return runner
    runner = EpochRunner(model, batch_size, *specs)
    if key is not None:
        _keep(key, runner)
    return runner


def _keep(key: Hashable, runner: EpochRunner) -> None:
    from tensorflow.python.eager import context

    global _UNSETTLED
    _KEPT[key] = runner
    _UNSETTLED = True
    evicted = False
    while len(_KEPT) > 1 and (len(_KEPT) > KEPT_RUNNERS or _kept_bytes() > KEPT_BYTES):
        _KEPT.popitem(last=False)
        evicted = True
    if evicted:  # trials keep TensorFlow's kernel cache (training.fit): the ones let go leave it
        context.context().clear_kernel_cache()
        gc.unfreeze()  # and Python's collector, their graphs (settle)


# A runner was kept or let go since the last settle().
_UNSETTLED = False


def settle() -> None:
    """Right after a full collection (each trial's clear_session runs one): whatever lives on
    is frozen, out of later collections, when the kept runners changed since the last time.
    Their traced graphs are ~10^5 Python objects each, which every trial's collection walked
    again: 2-40 ms a trial, rising with each shape kept. A runner let go unfreezes all, and
    the next collection frees its graphs."""
    global _UNSETTLED
    if _UNSETTLED:
        gc.freeze()
        _UNSETTLED = False


def kept(key: Hashable) -> EpochRunner | None:
    """The runner kept for ``key``, if any."""
    return _KEPT.get(key)


@contextlib.contextmanager
def warming(key: Hashable, build: Callable[[], Any], batch_size: int, x: Any, y: Any, x_val: Any,
            y_val: Any) -> Iterator[None]:
    """While the block runs (a trial training), a coming trial's runner is traced in a thread.

    ``build`` makes a model of the coming trial's shape: its values do not matter, the trial
    that uses the runner brings its own (``EpochRunner.adopt``), so its numbers are those of
    a model of its own, bit for bit. An epoch runs in TensorFlow without Python's lock, so
    tracing (~0.5-1 s, Python's) hides behind the epochs, wholly when they last longer. The
    thread is done when the block ends: the next trial's clear_session and seeding must not
    meet a model being built. Anything that fails here fails again, and is said, in the trial."""
    import keras

    train, val = tensors(((x, y), (x_val, y_val)))  # the trials' own tensors: one copy
    policy = keras.config.dtype_policy()  # Keras' settings are per thread
    made: list[EpochRunner] = []

    def trace() -> None:
        import tensorflow as tf

        try:
            keras.config.set_dtype_policy(policy)
            runner = EpochRunner(build(), batch_size, spec(train), spec(val))
            runner.trace(train)
            runner.evaluate(tf.nest.map_structure(lambda t: t[:0], val))  # no samples: set up, nothing changed
            costs.inference_call(runner.model)(tf.nest.map_structure(lambda t: t[:1], val[0]))
            made.append(runner)
        except Exception:  # noqa: BLE001 - the trial of that shape traces its own
            pass

    thread = threading.Thread(target=trace, name="hparams_lab-warming", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
        if made and kept(key) is None:
            _keep(key, made[0])
