"""What a trial's model costs: the cost metrics every trial logs beside its best_/final_ ones.

- ``params``: the model's trainable parameters (the sizes of its trainable weights).
- ``epoch_time_s``: the median wall time of an epoch (training and validation), from a
  Keras callback's ``on_epoch_begin`` to its ``on_epoch_end``; so it holds for
  ``model.fit``, a user's ``--fit`` and any loop that drives the callbacks.
- ``latency_ms``: the median time of one batch-1 inference, ``model(x, training=False)``
  traced once in a ``tf.function`` (not timed), over up to ``LATENCY_CALLS`` validation
  samples, stopping after ``LATENCY_BUDGET_S`` seconds (so a big model gets fewer calls).
  Timed once per model object: the trials of a shape share one kept model (training.epochs),
  whose inference graph their values do not change, so they share its number.
- ``peak_memory_mb``: on a GPU, TensorFlow's peak memory on it during the trial
  (``get_memory_info('GPU:0')['peak']``, reset when training starts); on CPUs, the
  process's peak resident memory so far (``getrusage``'s ``ru_maxrss``), which in one
  process running many trials only grows.

Keras and TensorFlow are imported inside the functions, as everywhere in training/.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
import weakref
from typing import Any

from hparams_lab.core.metrics import COST_METRICS

__all__ = ["COST_METRICS", "epoch_timer", "measure"]
LATENCY_CALLS = 200
LATENCY_BUDGET_S = 0.01  # ~30 calls of a small MLP; fewer of a big model
# Each model's traced inference call, and its latency once timed, as long as the model lives.
_CALLS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_LATENCIES: "weakref.WeakKeyDictionary[Any, float]" = weakref.WeakKeyDictionary()


def epoch_timer(keras: Any) -> Any:
    """A Keras callback that times each epoch (and resets a GPU's peak memory when training starts)."""

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.durations: list[float] = []
            self._began: float | None = None

        def on_train_begin(self, logs: Any = None) -> None:
            _reset_gpu_peak()

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._began = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self._began is not None:
                self.durations.append(time.perf_counter() - self._began)
                self._began = None

    return EpochTimer()


def measure(model: Any, dataset: Any, timer: Any) -> dict[str, float]:
    """The cost metrics of a trained model; a cost that cannot be measured is left out."""
    costs = {"params": float(trainable_params(model))}
    if timer.durations:
        costs["epoch_time_s"] = statistics.median(timer.durations)
    latency = latency_ms(model, dataset)
    if latency is not None:
        costs["latency_ms"] = latency
    costs["peak_memory_mb"] = peak_memory_mb()
    return costs


def trainable_params(model: Any) -> int:
    total = 0
    for weight in model.trainable_weights:
        size = 1
        for dim in weight.shape:
            size *= int(dim)
        total += size
    return total


def latency_ms(model: Any, dataset: Any) -> float | None:
    """Median milliseconds of a batch-1 ``model(x, training=False)`` on validation samples."""
    if model in _LATENCIES:
        return _LATENCIES[model]
    try:
        samples = _samples(dataset, LATENCY_CALLS)
        if not samples:
            return None
        call = inference_call(model)
        call(samples[0])  # traced once, not timed
        times = []
        deadline = time.perf_counter() + LATENCY_BUDGET_S
        for x in samples:
            began = time.perf_counter()
            call(x)
            times.append(time.perf_counter() - began)
            if began > deadline:
                break
        latency = _LATENCIES[model] = statistics.median(times) * 1000.0
        return latency
    except Exception:  # a model that cannot be called on one sample (a user's): no latency
        return None


def inference_call(model: Any) -> Any:
    """``model(x, training=False)`` as a tf.function, one per model: a kept model (training.epochs)
    has its traced call from an earlier trial."""
    import tensorflow as tf

    call = _CALLS.get(model)
    if call is None:
        call = _CALLS[model] = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                                           autograph=False)
    return call


def _samples(dataset: Any, n: int) -> list:
    """Up to n batch-1 inputs from the validation data (arrays, dicts of arrays, tf.data)."""
    import tensorflow as tf

    if getattr(dataset, "batched", False):
        for element in dataset.x_val.take(1):
            x = element[0] if isinstance(element, tuple) else element
            break
        else:
            return []
    else:
        x = dataset.x_val
    first = tf.nest.flatten(x)[0]
    count = min(n, int(first.shape[0]))
    return [tf.nest.map_structure(lambda a, i=i: a[i:i + 1], x) for i in range(count)]


def peak_memory_mb() -> float:
    gpu = _gpu_peak()
    if gpu is not None:
        return gpu / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _gpu_peak() -> int | None:
    import tensorflow as tf

    try:
        if not tf.config.list_logical_devices("GPU"):
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    except (ValueError, RuntimeError, KeyError):
        return None


def _reset_gpu_peak() -> None:
    import tensorflow as tf

    try:
        if tf.config.list_logical_devices("GPU"):
            tf.config.experimental.reset_memory_stats("GPU:0")
    except (ValueError, RuntimeError):
        pass
