"""The Dropout of hparams_lab's own models: its rate a variable, not a constant of the graph.

Keras' Dropout bakes its rate into every graph that calls it, so two trials that differ
only in dropout (a continuous hparam: every trial of a random search) would each trace
the epoch loop anew (training.epochs), ~1 s of a trial of the default MLP. With the rate
in a variable, they share one trace, as trials differing in learning rate do; the kept
model takes each trial's rate (``set_rates``). Masks are Keras' (the same seeded
stateless draw); the kept units are scaled by ``1 / (1 - rate)`` in float32.

To Keras' saving it is a plain ``keras.layers.Dropout`` of its rate (the class's
module and name, ``get_config``, no variables of its own), so a kept ``model.keras``
loads in plain Keras, without hparams_lab. Keras and TensorFlow are imported when the
class is first asked for, as everywhere in training/.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def tuned_dropout() -> type:
    """The class: ``keras.layers.Dropout(rate)`` for 0 < rate < 1, its rate in a variable
    (and no noise_shape: the builders set none)."""
    import keras
    import tensorflow as tf

    class TunedDropout(keras.layers.Dropout):
        def __init__(self, rate: float, **kwargs: Any):
            super().__init__(rate, **kwargs)
            if not 0 < rate < 1:
                raise ValueError(f"TunedDropout needs 0 < rate < 1, got {rate}")
            # A tf.Variable, which Keras neither saves nor counts among the model's weights.
            self.rate_variable = tf.Variable(float(rate), trainable=False, dtype=tf.float32, name="dropout_rate")

        def set_rate(self, rate: float) -> None:
            self.rate = float(rate)  # what get_config and a saved model say
            self.rate_variable.assign(self.rate)

        def call(self, inputs: Any, training: bool = False) -> Any:
            if not training:
                return inputs
            seed = self.seed_generator.next()
            if seed.dtype != tf.int32:  # as Keras' TensorFlow dropout casts its seed
                seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
            rate = tf.cast(self.rate_variable, inputs.dtype)  # float16 under mixed precision
            return tf.nn.experimental.stateless_dropout(inputs, rate=rate, seed=seed)

        def save_own_variables(self, store: Any) -> None:
            """Nothing: the rate is in the config, as a Dropout's."""

        def load_own_variables(self, store: Any) -> None:
            """Nothing, as a Dropout."""

    # Saved and shown as what it is to Keras: a Dropout (get_config gives the rate).
    TunedDropout.__module__, TunedDropout.__name__, TunedDropout.__qualname__ = "keras.layers", "Dropout", "Dropout"
    return TunedDropout


def rates(model: Any) -> list[float]:
    """The rates of ``model``'s tuned dropout layers, in order (a checkpoint keeps them)."""
    return [layer.rate for layer in _tuned(model)]


def set_rates(model: Any, values: list[float]) -> None:
    """``model``'s tuned dropout layers take ``values`` (``rates`` of a model of the same shape)."""
    for layer, rate in zip(_tuned(model), values, strict=True):
        layer.set_rate(rate)


def _tuned(model: Any) -> list[Any]:
    kind = tuned_dropout()
    return [layer for layer in model.layers if isinstance(layer, kind)]  # our builders' models are flat
