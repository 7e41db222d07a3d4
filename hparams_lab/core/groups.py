"""Repeats and cross-validation folds: runs of one hparams set, summarised as mean and std.

Each member run is its own TensorBoard session in one session group. Once every
member has succeeded, the group's ``<prefix>mean_*`` / ``<prefix>std_*`` metrics are
added to every member (TensorBoard averages a group's sessions, so the group
shows them unchanged); a group with a failed member gets none and is never ranked.
"""

from __future__ import annotations

import statistics
from typing import Iterable, Sequence

from hparams_lab.core.metrics import PARETO_RANK  # a place among trials, not a measure to average
from hparams_lab.core.trial import TrialResult, TrialStatus


def prefix(repeats: int, folds: int | None) -> str | None:
    """'cv_' with --cv, '' with --repeats > 1, None when trials are not grouped."""
    if folds is not None:
        return "cv_"
    return "" if repeats > 1 else None


def aggregate_names(summary: Iterable[str], group_prefix: str) -> list[str]:
    return [f"{group_prefix}{stat}_{name}" for name in summary for stat in ("mean", "std")]


def by_group(results: Iterable[TrialResult]) -> dict[str, list[TrialResult]]:
    groups: dict[str, list[TrialResult]] = {}
    for result in results:
        groups.setdefault(result.trial.group, []).append(result)
    return groups


def aggregate(members: Sequence[TrialResult], group_prefix: str, expected: int) -> dict[str, float]:
    """mean/std (population) of each summary metric, when all ``expected`` members succeeded."""
    if len(members) < expected or any(r.status is not TrialStatus.SUCCESS for r in members):
        return {}
    names = [n for n in members[0].metrics if not _is_aggregate(n, group_prefix) and n != PARETO_RANK]
    out = {}
    for name in names:
        values = [r.metrics[name] for r in members]
        out[f"{group_prefix}mean_{name}"] = statistics.fmean(values)
        out[f"{group_prefix}std_{name}"] = statistics.pstdev(values)
    return out


def _is_aggregate(name: str, group_prefix: str) -> bool:
    return name.startswith((f"{group_prefix}mean_", f"{group_prefix}std_"))
