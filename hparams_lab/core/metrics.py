"""The metrics a trial reports: their TensorBoard names, summaries and which way is better.

Per-epoch scalars follow Keras' TensorBoard callback layout (``train/epoch_loss``,
``validation/epoch_accuracy``); TensorBoard shows the last value of a scalar, so
explicit ``best_*`` and ``final_*`` scalars are written at the trial's run root too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from hparams_lab.core.trial import TrialResult, TrialStatus

TRAIN, VALIDATION = "train", "validation"
BASE_METRICS = ("accuracy", "loss")  # compiled into every model by training.fit
DEFAULT_METRIC = "best_val_accuracy"
# Loss- and error-like tags are minimised; everything else is maximised.
_LOWER_IS_BETTER = re.compile(r"loss|error|err\b|mse|mae|perplexity", re.IGNORECASE)
DIRECTIONS = {"max": True, "min": False}  # experiment.json's "direction" -> higher is better


@dataclass(frozen=True)
class Metric:
    """A scalar as TensorBoard names it: a tag inside a group (run subdirectory, "" = the run)."""

    tag: str
    group: str = ""

    @property
    def key(self) -> str:
        return f"{self.group}/{self.tag}" if self.group else self.tag

    @property
    def direction(self) -> str:
        return "max" if higher_is_better(self.tag) else "min"

    def to_json(self) -> dict:
        # The direction is recorded so that review reads it instead of guessing from the name.
        return {"tag": self.tag, "group": self.group, "direction": self.direction}


def higher_is_better(name: str) -> bool:
    """The one rule for which way a metric is better, by its tag (the part after the last '/'):
    lower for loss, error, err at a word's end, mse, mae, perplexity (any case); higher otherwise."""
    return not _LOWER_IS_BETTER.search(name.rsplit("/", 1)[-1])


def summary_names(has_test: bool) -> list[str]:
    names = [f"{kind}_val_{base}" for base in BASE_METRICS for kind in ("best", "final")]
    if has_test:
        names += [f"test_{base}" for base in BASE_METRICS]
    return names


def declared_metrics(has_test: bool) -> list[Metric]:
    """Every metric a trial writes, in the order the HParams table shows them."""
    summaries = [Metric(name) for name in summary_names(has_test)]
    epochs = [Metric(f"epoch_{base}", group) for group in (VALIDATION, TRAIN) for base in BASE_METRICS]
    return summaries + epochs


def epoch_scalars(logs: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Keras epoch logs ({'loss', 'val_loss', ...}) as {group: {tag: value}}."""
    out: dict[str, dict[str, float]] = {}
    for name, value in logs.items():
        group, base = (VALIDATION, name[4:]) if name.startswith("val_") else (TRAIN, name)
        if base in BASE_METRICS:
            out.setdefault(group, {})[f"epoch_{base}"] = float(value)
    return out


def best(values: Sequence[float], name: str) -> tuple[float, int]:
    """The best finite value of a series and its index (epoch)."""
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return math.nan, -1
    pick = max if higher_is_better(name) else min
    return pick(finite, key=lambda pair: pair[0])


def summarize(history: Mapping[str, Sequence[float]], test: Mapping[str, float] | None) -> dict[str, float]:
    """best_/final_ validation metrics from a Keras history, plus test_ metrics."""
    out: dict[str, float] = {}
    for base in BASE_METRICS:
        values = history.get(f"val_{base}") or []
        if values:
            out[f"best_val_{base}"] = best(values, base)[0]
            out[f"final_val_{base}"] = float(values[-1])
    for base, value in (test or {}).items():
        if base in BASE_METRICS:
            out[f"test_{base}"] = float(value)
    return out


def first_non_finite(history: Mapping[str, Sequence[float]]) -> tuple[str, int] | None:
    """(metric, epoch) of the first NaN/inf in a history, or None."""
    for name, values in history.items():
        for epoch, value in enumerate(values):
            if not math.isfinite(value):
                return name, epoch
    return None


def sort_key(metric: str):
    """Key for sorted(): best first, missing or non-finite values last."""
    sign = -1.0 if higher_is_better(metric) else 1.0

    def key(metrics: Mapping[str, float]) -> tuple[int, float]:
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            return (1, 0.0)
        return (0, sign * value)

    return key


def monitored(metric: str) -> str:
    """The per-epoch Keras log a ranking metric comes from: best_val_accuracy -> val_accuracy."""
    return "val_" + metric.rsplit("_", 1)[-1]


def run_metric(name: str) -> str:
    """The per-run metric behind a group aggregate: cv_mean_best_val_accuracy -> best_val_accuracy."""
    for prefix in ("cv_mean_", "cv_std_", "mean_", "std_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def std_of(name: str) -> str | None:
    """The std aggregate paired with a mean aggregate, or None."""
    for mean, std in (("cv_mean_", "cv_std_"), ("mean_", "std_")):
        if name.startswith(mean):
            return std + name[len(mean):]
    return None


def ranked(results: Sequence[TrialResult], metric: str) -> list[TrialResult]:
    """Successful trials best first by ``metric``; failures after them, never ranked best."""
    key = sort_key(metric)
    ok = [r for r in results if r.status is TrialStatus.SUCCESS]
    rest = [r for r in results if r.status is not TrialStatus.SUCCESS]
    return sorted(ok, key=lambda r: key(r.metrics)) + rest
