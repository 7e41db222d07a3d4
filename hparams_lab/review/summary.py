"""How each hparam relates to the ranking metric: per-value statistics and an importance score.

Importance is epsilon-squared, a one-way ANOVA effect size: the share of the
metric's variance across runs that the hparam's values (or value ranges)
explain on their own, bias-corrected so that an hparam with many values does
not look important by chance in a small study:

    epsilon^2 = (SS_between - (k - 1) * SS_within / (n - k)) / SS_total, floored at 0

It sees one hparam at a time (no interactions), and counts only runs that have
the metric and the hparam: a conditional hparam's inactive runs (absent from the
run) are not a value of it. README.review.md explains it for users.
"""

import math
from dataclasses import dataclass

_MAX_DISTINCT = 6  # numeric hparams with more distinct values are put in ranges
_RANGES = 4


@dataclass(frozen=True)
class Bucket:
    label: str  # a value, or a range "[low, high]"
    count: int
    mean: float
    best: float


@dataclass(frozen=True)
class HParamSummary:
    name: str
    importance: float  # 0 (explains nothing) .. 1 (explains all of the variance)
    buckets: list


def summarize(rows, hparam_names, ranking):
    """An HParamSummary per hparam, most important first."""
    scored = [(row, ranking.value(row)) for row in rows]
    scored = [(row, value) for row, value in scored if value is not None and math.isfinite(value)]
    summaries = [_summarize_one(name, scored, ranking.maximize) for name in hparam_names]
    return sorted(summaries, key=lambda summary: -summary.importance)


def _summarize_one(name, scored, maximize):
    groups = _group(name, scored)
    best = max if maximize else min
    buckets = [Bucket(label, len(values), sum(values) / len(values), best(values))
               for label, values in groups]
    return HParamSummary(name, epsilon_squared([values for _, values in groups]), buckets)


def _group(name, scored):
    """[(label, metric values)] by the hparam's value, or by value range for many numbers."""
    by_value = {}
    for row, metric in scored:
        if row.hparams.get(name) is not None:
            by_value.setdefault(row.hparams[name], []).append(metric)
    numbers = [v for v in by_value if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) > _MAX_DISTINCT and len(numbers) == len(by_value):
        return _ranges(sorted(numbers), by_value)
    ordered = sorted(by_value, key=lambda v: (type(v).__name__, v))
    return [(_label(value), by_value[value]) for value in ordered]


def _ranges(values, by_value):
    """Split sorted distinct values into about _RANGES ranges of similar run counts."""
    total = sum(len(by_value[v]) for v in values)
    groups, current, seen = [], [], 0
    for value in values:
        current.append(value)
        seen += len(by_value[value])
        if seen >= total * (len(groups) + 1) / _RANGES and value != values[-1]:
            groups.append(current)
            current = []
    groups.append(current)
    return [(f"[{_label(group[0])}, {_label(group[-1])}]", [m for v in group for m in by_value[v]])
            for group in groups if group]


def _label(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def epsilon_squared(groups):
    """Bias-corrected share of variance explained by the grouping; 0 when undefined."""
    values = [value for group in groups for value in group]
    n, k = len(values), len(groups)
    if k < 2 or n <= k:
        return 0.0
    mean = sum(values) / n
    total = sum((value - mean) ** 2 for value in values)
    if total == 0:
        return 0.0
    within = sum(_squares(group) for group in groups)
    between = total - within
    return max(0.0, (between - (k - 1) * within / (n - k)) / total)


def _squares(group):
    mean = sum(group) / len(group)
    return sum((value - mean) ** 2 for value in group)
