"""The metrics a trial reports: their TensorBoard names, summaries and which way is better.

Per-epoch scalars follow Keras' TensorBoard callback layout (``train/epoch_loss``,
``validation/epoch_auc``); TensorBoard shows the last value of a scalar, so explicit
``best_val_*`` and ``final_val_*`` scalars are written at the trial's run root too.
Which metrics there are is whatever the model logs (``logged``: Keras' log names
without ``val_``, e.g. ``["accuracy", "auc", "loss"]``); the default is today's pair.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from hparams_lab.core.trial import TrialResult, TrialStatus

TRAIN, VALIDATION = "train", "validation"
BASE_METRICS = ("accuracy", "loss")  # what a multiclass model logs by default (training.compile)
DEFAULT_METRIC = "best_val_accuracy"
# Losses and error-like metrics are minimised; everything else (accuracy, auc, precision,
# recall, f1, r2, ...) is maximised. Matched anywhere in the tag's last part, any case, so
# Keras' long names (mean_squared_logarithmic_error) and per-output ones (out1_mae) follow.
_LOWER_IS_BETTER = re.compile(
    r"loss|crossentropy|error|err\b|mse|mae|mape|msle|hinge|perplexity|logcosh|kld|"
    r"kl_divergence|poisson|huber|false_(?:positives|negatives)",
    re.IGNORECASE,
)
# What every trial's model costs (training.costs measures them): lower is better for each.
COST_METRICS = ("params", "epoch_time_s", "latency_ms", "peak_memory_mb")
MEASURED_COSTS = COST_METRICS[1:]  # timed or sampled: they vary from run to run (params does not)
PARETO_RANK = "pareto_rank"  # with several objectives: 1 = on the Pareto front (core.objectives)
DIRECTIONS = {"max": True, "min": False}  # experiment.json's "direction" -> higher is better
# Name prefixes around a base metric (the Keras log name): stripped to find what the rule,
# or a --direction given for the base, decides.
_PREFIXES = ("cv_mean_", "cv_std_", "mean_", "std_", "best_val_", "final_val_", "test_", "val_", "epoch_")


def base_of(name: str) -> str:
    """The Keras log name behind a metric: cv_mean_best_val_auc -> auc, validation/epoch_mae -> mae."""
    name = name.rsplit("/", 1)[-1]
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                name, stripped = name[len(prefix):], True
    return name


@dataclass(frozen=True)
class Metric:
    """A scalar as TensorBoard names it: a tag inside a group (run subdirectory, "" = the run)."""

    tag: str
    group: str = ""
    direction: str = ""  # "max" / "min"; "" = the rule's, from the tag

    @property
    def key(self) -> str:
        return f"{self.group}/{self.tag}" if self.group else self.tag

    @property
    def maximize(self) -> bool:
        return DIRECTIONS[self.direction] if self.direction else higher_is_better(self.tag)

    def to_json(self) -> dict:
        # The direction is recorded so that review reads it instead of guessing from the name.
        return {"tag": self.tag, "group": self.group, "direction": "max" if self.maximize else "min"}


def higher_is_better(name: str, directions: Mapping[str, str] | None = None) -> bool:
    """The one rule for which way a metric is better.

    ``directions`` ({base metric: "max"/"min"}, from ``--direction``) decides for the
    metrics it names; otherwise the tag (the part after the last '/') decides: lower for
    losses, crossentropies, errors, mse, mae, mape, msle, hinge, perplexity ... (any
    case), for the cost metrics (``COST_METRICS``: params, epoch_time_s ...) and pareto_rank, higher
    for everything else.
    """
    if directions:
        chosen = directions.get(base_of(name))
        if chosen is not None:
            return DIRECTIONS[chosen]
    tag = name.rsplit("/", 1)[-1]
    return run_metric(tag) not in (*COST_METRICS, PARETO_RANK) and not _LOWER_IS_BETTER.search(tag)


def direction_of(name: str, directions: Mapping[str, str] | None = None) -> str:
    return "max" if higher_is_better(name, directions) else "min"


def ordered_logged(logged: Iterable[str]) -> list[str]:
    """Keras log names in the order the HParams table shows them: alphabetical, losses last."""
    return sorted(set(logged), key=lambda name: ("loss" in name, name))


def summary_names(has_test: bool, logged: Sequence[str] = BASE_METRICS) -> list[str]:
    """best_val_/final_val_ of every logged metric (and test_ where there is a test split)."""
    bases = ordered_logged(logged)
    names = [f"{kind}_val_{base}" for base in bases for kind in ("best", "final")]
    if has_test:
        names += [f"test_{base}" for base in bases]
    return names


def declared_metrics(has_test: bool, logged: Sequence[str] = BASE_METRICS,
                     directions: Mapping[str, str] | None = None) -> list[Metric]:
    """Every metric a trial writes, in the order the HParams table shows them: summaries, costs, epochs."""
    def metric(tag: str, group: str = "") -> Metric:
        return Metric(tag, group, direction_of(tag, directions))

    bases = ordered_logged(logged)
    summaries = [metric(name) for name in summary_names(has_test, bases)]
    costs = [metric(name) for name in COST_METRICS]
    epochs = [metric(f"epoch_{base}", group) for group in (VALIDATION, TRAIN) for base in bases]
    return summaries + costs + epochs


def epoch_scalars(logs: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Keras epoch logs ({'loss', 'val_loss', 'auc', ...}) as {group: {tag: value}}.

    Every numeric log is kept (a user's metric, a per-output loss); the learning rate a
    schedule logs too.
    """
    out: dict[str, dict[str, float]] = {}
    for name, value in logs.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue  # not a scalar (a callback's own entry)
        group, base = (VALIDATION, name[4:]) if name.startswith("val_") else (TRAIN, name)
        out.setdefault(group, {})[f"epoch_{base}"] = value
    return out


def best(values: Sequence[float], name: str, directions: Mapping[str, str] | None = None) -> tuple[float, int]:
    """The best finite value of a series and its index (epoch)."""
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return math.nan, -1
    pick = max if higher_is_better(name, directions) else min
    return pick(finite, key=lambda pair: pair[0])


def summarize(history: Mapping[str, Sequence[float]], test: Mapping[str, float] | None,
              directions: Mapping[str, str] | None = None) -> dict[str, float]:
    """best_/final_ of every validation metric in a Keras history, plus test_ metrics."""
    out: dict[str, float] = {}
    for name in ordered_logged(n[4:] for n in history if n.startswith("val_")):
        values = history.get(f"val_{name}") or []
        if values:
            out[f"best_val_{name}"] = best(values, name, directions)[0]
            out[f"final_val_{name}"] = float(values[-1])
    for name, value in (test or {}).items():
        out[f"test_{name}"] = float(value)
    return out


def first_non_finite(history: Mapping[str, Sequence[float]]) -> tuple[str, int] | None:
    """(metric, epoch) of the first NaN/inf in a history, or None."""
    for name, values in history.items():
        for epoch, value in enumerate(values):
            if not math.isfinite(value):
                return name, epoch
    return None


def sort_key(metric: str, directions: Mapping[str, str] | None = None):
    """Key for sorted(): best first, missing or non-finite values last."""
    sign = -1.0 if higher_is_better(metric, directions) else 1.0

    def key(metrics: Mapping[str, float]) -> tuple[int, float]:
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            return (1, 0.0)
        return (0, sign * value)

    return key


def monitored(metric: str) -> str:
    """The per-epoch Keras log a ranking metric comes from: best_val_binary_accuracy -> val_binary_accuracy."""
    return "val_" + base_of(metric)


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


def ranked(results: Sequence[TrialResult], metric: str,
           directions: Mapping[str, str] | None = None) -> list[TrialResult]:
    """Successful trials best first by ``metric``; failures after them, never ranked best."""
    key = sort_key(metric, directions)
    ok = [r for r in results if r.status is TrialStatus.SUCCESS]
    rest = [r for r in results if r.status is not TrialStatus.SUCCESS]
    return sorted(ok, key=lambda r: key(r.metrics)) + rest
