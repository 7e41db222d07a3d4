"""How each hparam relates to the ranking metric: per-value statistics and an importance score.

Importance is epsilon-squared, a one-way ANOVA effect size: the share of the
metric's variance across runs that the hparam's values (or value ranges)
explain on their own, bias-corrected so that an hparam with many values does
not look important by chance in a small study:

    epsilon^2 = (SS_between - (k - 1) * SS_within / (n - k)) / SS_total, floored at 0

It sees one hparam at a time (no interactions), and counts only runs that have
the metric and the hparam: a conditional hparam's inactive runs (absent from the
run) are not a value of it. README.md's review section explains it for users.

The noise level of an hparam's importance is what the same grouping explains of
shuffled metric values: the NOISE_QUANTILE (95th) percentile of epsilon-squared
over NOISE_PERMUTATIONS (200) permutations of the metric values across the runs
it counts, drawn from numpy's legacy RandomState(0) (a stream numpy keeps fixed),
the same permutations for every hparam counted on the same runs. An importance at
or below it is not distinguishable from noise. It is None (not judged) with fewer
than MIN_NOISE_RUNS runs or fewer than two values.
"""

import math
from dataclasses import dataclass

_MAX_DISTINCT = 6  # numeric hparams with more distinct values are put in ranges
_RANGES = 4
NOISE_PERMUTATIONS = 200
NOISE_QUANTILE = 0.95
MIN_NOISE_RUNS = 10


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
    noise: float | None = None  # the importance shuffled metric values reach; None: not judged

    @property
    def below_noise(self):
        return self.noise is not None and self.importance <= self.noise


def summarize(rows, hparam_names, ranking, noise=False, kept=None):
    """An HParamSummary per hparam, most important first; with noise, each one's noise level
    (``kept``: those computed before, review.cache.NoiseLevels)."""
    return summarize_points([(row.hparams, ranking.value(row)) for row in rows], hparam_names, ranking.maximize,
                            noise, kept)


def summarize_points(points, hparam_names, maximize, noise=False, kept=None):
    """summarize for (hparams dict, metric value) pairs (a study's results, review's rows)."""
    scored = [(hparams, value) for hparams, value in points if value is not None and math.isfinite(value)]
    grouped = [_group(name, scored) for name in hparam_names]
    noises = _noises(scored, grouped, kept) if noise else [None] * len(grouped)
    best = max if maximize else min
    summaries = [HParamSummary(name, epsilon_squared([values for _, values in groups]),
                               [Bucket(label, len(values), sum(values) / len(values), best(values))
                                for label, values in groups], noise)
                 for name, (groups, _), noise in zip(hparam_names, grouped, noises)]
    return sorted(summaries, key=lambda summary: -summary.importance)


def _group(name, scored):
    """[(label, metric values)] by the hparam's value, or by value range for many numbers;
    and (index in scored, group index) of each run counted (those that have the hparam)."""
    by_value = {}
    for hparams, metric in scored:
        if hparams.get(name) is not None:
            by_value.setdefault(hparams[name], []).append(metric)
    numbers = [v for v in by_value if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) > _MAX_DISTINCT and len(numbers) == len(by_value):
        grouped = _ranges(sorted(numbers), by_value)
    else:
        ordered = sorted(by_value, key=lambda v: (type(v).__name__, v))
        grouped = [([value], _label(value)) for value in ordered]
    index = {value: i for i, (values, _) in enumerate(grouped) for value in values}
    members = [(i, index[hparams[name]]) for i, (hparams, _) in enumerate(scored) if hparams.get(name) is not None]
    return [(label, [m for v in values for m in by_value[v]]) for values, label in grouped], members


def _ranges(values, by_value):
    """Split sorted distinct values into about _RANGES ranges of similar run counts: [(values, label)]."""
    total = sum(len(by_value[v]) for v in values)
    groups, current, seen = [], [], 0
    for value in values:
        current.append(value)
        seen += len(by_value[value])
        if seen >= total * (len(groups) + 1) / _RANGES and value != values[-1]:
            groups.append(current)
            current = []
    groups.append(current)
    return [(group, f"[{_label(group[0])}, {_label(group[-1])}]") for group in groups if group]


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


def _noises(scored, grouped, kept=None):
    """Each hparam's noise level; hparams counted on the same runs share their shuffles. With
    ``kept``, levels computed before from the same values and groupings are read back."""
    levels = [None] * len(grouped)
    by_runs = {}
    for position, (groups, members) in enumerate(grouped):
        by_runs.setdefault(tuple(i for i, _ in members), []).append(position)
    for runs, positions in by_runs.items():
        values = [scored[i][1] for i in runs]
        groupings = [([label for _, label in grouped[p][1]], len(grouped[p][0])) for p in positions]
        if kept is None or len(values) < MIN_NOISE_RUNS:  # too few runs: nothing is computed
            found = noise_levels(values, groupings)
        else:
            found = kept.get(_noise_key(values, groupings), len(groupings), lambda: noise_levels(values, groupings))
        for position, level in zip(positions, found):
            levels[position] = level
    return levels


def _noise_key(values, groupings):
    """What noise levels are computed from, hashed: the values, the groupings, the shuffles' settings."""
    import hashlib
    import json

    what = [NOISE_PERMUTATIONS, NOISE_QUANTILE, MIN_NOISE_RUNS, values, groupings]
    return hashlib.sha256(json.dumps(what, allow_nan=False).encode()).hexdigest()


def noise_levels(values, groupings):
    """For each grouping (labels: a group index per value, k groups) of the same metric values:
    the NOISE_QUANTILE of its epsilon-squared over NOISE_PERMUTATIONS seeded shuffles of the
    values (the same shuffles for every grouping), or None where it is not judged."""
    n = len(values)
    levels = [None] * len(groupings)
    judged = [i for i, (_, k) in enumerate(groupings) if k >= 2 and n >= MIN_NOISE_RUNS and n > k]
    if not judged:
        return levels
    import numpy as np  # loaded already by review's reader and by a study's training

    centred = np.asarray(values, dtype=float)
    centred = centred - centred.mean()  # then a grouping's sums alone give SS_between
    total = float(centred @ centred)
    if total <= 1e-24 * n * max(1.0, float(np.abs(centred).max(initial=0.0)) ** 2):
        # a constant metric (up to rounding): nothing explains anything
        for i in judged:
            levels[i] = 0.0
        return levels
    # Each grouping's runs in group order, so that a shuffle's group sums are one reduceat.
    orders = {i: np.argsort(np.asarray(groupings[i][0], dtype=np.int64), kind="stable") for i in judged}
    counts = {i: np.bincount(np.asarray(groupings[i][0], dtype=np.int64), minlength=groupings[i][1])
              for i in judged}
    starts = {i: np.concatenate(([0], np.cumsum(counts[i])[:-1])) for i in judged}
    shuffled = {i: [] for i in judged}
    state = np.random.RandomState(0)  # the legacy generator: numpy keeps its stream fixed
    batch = max(1, min(NOISE_PERMUTATIONS, 1_000_000 // n))  # bounded memory on huge logdirs
    for start in range(0, NOISE_PERMUTATIONS, batch):
        size = min(batch, NOISE_PERMUTATIONS - start)
        permuted = np.stack([centred[state.permutation(n)] for _ in range(size)])
        for i in judged:
            k = groupings[i][1]
            sums = np.add.reduceat(permuted[:, orders[i]], starts[i], axis=1)
            between = (sums ** 2 / counts[i]).sum(axis=1)
            within = total - between
            shuffled[i].append(np.maximum(0.0, (between - (k - 1) * within / (n - k)) / total))
    for i in judged:
        levels[i] = float(np.quantile(np.concatenate(shuffled[i]), NOISE_QUANTILE))
    return levels


def _squares(group):
    mean = sum(group) / len(group)
    return sum((value - mean) ** 2 for value in group)
