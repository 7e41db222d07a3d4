"""What a trial's model is compiled with: each task's loss, metrics and ranking metric.

The table is plain data, so checking a study (its default ``--metric``) never imports
Keras; turning names into Keras objects happens in ``compile_args``, inside a trial.
A model that comes back from its builder already compiled keeps its own loss,
metrics and optimizer (``is_compiled``); an uncompiled one gets these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from hparams_lab.core.errors import UserError, one_line


@dataclass(frozen=True)
class TaskDefaults:
    loss: str
    metrics: tuple[str, ...]
    rank_by: str  # the default --metric
    head: str  # the activation of a built-in model's last layer


DEFAULTS: dict[str, TaskDefaults] = {
    # multiclass: today's compile, bit for bit.
    "multiclass": TaskDefaults("sparse_categorical_crossentropy", ("accuracy",), "best_val_accuracy", "softmax"),
    "binary": TaskDefaults("binary_crossentropy", ("accuracy", "auc"), "best_val_auc", "sigmoid"),
    "multilabel": TaskDefaults("binary_crossentropy", ("binary_accuracy", "auc"), "best_val_auc", "sigmoid"),
    "regression": TaskDefaults("mse", ("mae",), "best_val_loss", "linear"),
}


def default_metric(task: str) -> str:
    return DEFAULTS[task].rank_by


def metric_names(metrics: str | Sequence[Any] | None) -> tuple[str, ...] | None:
    """``--metrics auc,precision`` (or a list of names / Keras metric objects) as a tuple."""
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [part.strip() for part in metrics.split(",") if part.strip()]
    return tuple(metrics)


def describe(value: Any) -> Any:
    """A loss or metric as experiment.json records it: its name, for an object its class name."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    return getattr(value, "name", None) or getattr(value, "__name__", None) or type(value).__name__


def is_compiled(model: Any) -> bool:
    return bool(getattr(model, "compiled", False)) and getattr(model, "optimizer", None) is not None


def compile_args(model: Any, task: str, loss: Any = None, metrics: Sequence[Any] | None = None) -> dict[str, Any]:
    """``loss=`` and ``metrics=`` for model.compile: the user's, else the task's, per output
    for a model with several outputs (Keras wants one entry per output name then)."""
    import keras

    defaults = DEFAULTS[task]
    chosen_loss = loss if loss is not None else defaults.loss
    chosen = list(metrics) if metrics is not None else list(defaults.metrics)
    try:
        if isinstance(chosen_loss, str):
            keras.losses.get(chosen_loss)
    except (ValueError, TypeError) as exc:
        raise UserError(f"unknown loss {chosen_loss!r}: Keras does not know it ({one_line(exc)})") from None
    built = [_metric(keras, name, task) for name in chosen]
    outputs = list(getattr(model, "output_names", None) or [])
    if len(outputs) > 1:
        return {"loss": {name: chosen_loss for name in outputs},
                "metrics": {name: [_metric(keras, n, task) for n in chosen] for name in outputs}}
    return {"loss": chosen_loss, "metrics": built}


# Keras' metrics that compare a label with one output unit: integer class labels against
# a softmax don't fit them (they fail deep inside the graph otherwise).
_ONE_UNIT = ("auc", "precision", "recall")


def _metric(keras: Any, name: Any, task: str) -> Any:
    if not isinstance(name, str):
        return name  # a Keras metric object: the user's, as given
    if task == "multiclass" and name.lower() in _ONE_UNIT:
        raise UserError(
            f"metric {name!r} needs binary or multilabel labels (one output unit per label), not the "
            "integer classes of a multiclass task; use accuracy, or a metric object of your own"
        )
    if name.lower() == "auc":
        # One AUC over all labels of a multilabel model, not one per label averaged away.
        return keras.metrics.AUC(name="auc", multi_label=task == "multilabel")
    if name in ("accuracy", "acc"):
        return name  # Keras picks binary / sparse categorical accuracy from the loss
    try:
        keras.metrics.get(name)
    except (ValueError, TypeError) as exc:
        raise UserError(f"unknown metric {name!r}: Keras does not know it ({one_line(exc)})") from None
    return name
