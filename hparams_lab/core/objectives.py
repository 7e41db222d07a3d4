"""Several objectives: ``--metric NAME[:min|max]`` repeated, ``--constraint NAME<=V``, the Pareto front.

The one owner of ranking by several objectives (``core.metrics.ranked`` ranks by one,
unchanged). A trial *dominates* another when it is at least as good on every objective
and better on one; its ``pareto_rank`` is 1 on the front (dominated by no other), 2 on
the front of what is left, and so on. Only successful trials with a finite value of
every objective get a rank. A trial that breaks a ``--constraint`` is *infeasible*: it
is ranked after every feasible one (its ranks continue after theirs), so it is never on
the front and never best. Pure Python.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from hparams_lab.core.errors import UserError
from hparams_lab.core.metrics import COST_METRICS, DIRECTIONS, PARETO_RANK, higher_is_better
from hparams_lab.core.trial import TrialResult, TrialStatus

__all__ = ["COST_METRICS", "PARETO_RANK", "Constraint", "Objective", "Placed", "check_names", "dominates",
           "front", "infeasible", "nondominated_ranks", "order", "parse_constraint", "parse_objective", "pareto_ranks",
           "placements", "ranked"]

_NAME = r"[A-Za-z_][A-Za-z0-9_./-]*"
_OBJECTIVE = re.compile(rf"^\s*(?P<name>{_NAME})\s*(?::\s*(?P<direction>\w+)\s*)?$")
_CONSTRAINT = re.compile(rf"^\s*(?P<name>{_NAME})\s*(?P<op><=|>=|==|<|>)\s*(?P<bound>\S+)\s*$")
_HOLDS = {"<=": lambda v, b: v <= b, "<": lambda v, b: v < b, ">=": lambda v, b: v >= b,
          ">": lambda v, b: v > b, "==": lambda v, b: v == b}
_BROKEN = {"<=": ">", "<": ">=", ">=": "<", ">": "<=", "==": "!="}  # how a broken one is worded


@dataclass(frozen=True)
class Objective:
    """One ranked metric and which way is better."""

    name: str
    maximize: bool

    @property
    def direction(self) -> str:
        return "max" if self.maximize else "min"

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


@dataclass(frozen=True)
class Constraint:
    """``NAME OP BOUND``: a trial whose metric breaks it is infeasible."""

    name: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_number(self.bound)}"

    def broken_by(self, metrics: Mapping[str, float]) -> str | None:
        """Why ``metrics`` break this constraint ("params=63000 > 50000"), or None if they keep it."""
        value = metrics.get(self.name)
        if value is None or not math.isfinite(value):
            return f"{self.name} not measured"
        if _HOLDS[self.op](value, self.bound):
            return None
        return f"{self.name}={_number(value)} {_BROKEN[self.op]} {_number(self.bound)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def parse_objective(text: str, directions: Mapping[str, str] | None = None) -> Objective:
    """``best_val_accuracy``, ``params:min``, ``best_val_loss:max``: the direction after the
    colon, else the one rule (core.metrics, with --direction's ``directions``)."""
    match = _OBJECTIVE.match(str(text))
    if match is None:
        raise UserError(f"--metric {text!r}: write NAME or NAME:min / NAME:max, e.g. params:min")
    name, direction = match["name"], match["direction"]
    if direction is None:
        return Objective(name, higher_is_better(name, directions))
    if direction not in DIRECTIONS:
        raise UserError(f"--metric {text!r}: direction {direction!r}; choose min or max")
    return Objective(name, DIRECTIONS[direction])


def parse_constraint(text: str) -> Constraint:
    """``params<=50000``, ``latency_ms<2``, ``best_val_accuracy>=0.9`` (also ``>``, ``<``, ``==``)."""
    match = _CONSTRAINT.match(str(text))
    bound = _float(match["bound"]) if match else None
    if bound is None:
        raise UserError(f"--constraint {text!r}: write NAME<=NUMBER (or <, >=, >, ==), e.g. 'params<=50000'")
    return Constraint(match["name"], match["op"], bound)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_names(objectives: Sequence[Objective], constraints: Sequence[Constraint], allowed: Sequence[str]) -> None:
    """Every objective and constraint names a metric the trials write; no objective twice."""
    seen: set[str] = set()
    for objective in objectives:
        if objective.name in seen:
            raise UserError(f"--metric {objective.name!r} is given twice")
        seen.add(objective.name)
    for flag, name in [("--metric", o.name) for o in objectives] + [("--constraint", c.name) for c in constraints]:
        if name not in allowed:
            raise UserError(f"{flag} {name!r}: the trials do not log it; choose one of {', '.join(allowed)}")


def infeasible(metrics: Mapping[str, float], constraints: Sequence[Constraint]) -> str | None:
    """Why a trial is infeasible (every broken constraint, '; '-joined), or None."""
    reasons = [reason for c in constraints if (reason := c.broken_by(metrics)) is not None]
    return "; ".join(reasons) or None


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """Whether point ``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for x, y, up in zip(a, b, maximize, strict=True):
        if up:
            x, y = -x, -y
        if x > y:
            return False
        better = better or x < y
    return better


def nondominated_ranks(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Each point's front: 1 = dominated by none, 2 = by none once front 1 is set aside, ...

    Equal points dominate neither; they share a front.
    """
    ranks = [0] * len(points)
    left = set(range(len(points)))
    front = 1
    while left:
        current = {i for i in left if not any(dominates(points[j], points[i], maximize) for j in left if j != i)}
        for i in current:
            ranks[i] = front
        left -= current
        front += 1
    return ranks


def _point(metrics: Mapping[str, float] | None, objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    if metrics is None:
        return None
    values = tuple(metrics.get(o.name, math.nan) for o in objectives)
    return values if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) else None


def placements(points: Sequence[Mapping[str, float] | None], objectives: Sequence[Objective],
               constraints: Sequence[Constraint] = ()) -> list[tuple[int | None, str | None]]:
    """(pareto rank, why infeasible) of each candidate's metrics (None: not a candidate, a
    failure): rank None where an objective is not measured; infeasible ones ranked after
    every feasible one. What ``pareto_ranks`` does for results and review does for its rows."""
    maximize = [o.maximize for o in objectives]
    located = [_point(metrics, objectives) for metrics in points]
    why = [infeasible(metrics, constraints) if metrics is not None else None for metrics in points]
    feasible = [i for i, p in enumerate(located) if p is not None and why[i] is None]
    broken = [i for i, p in enumerate(located) if p is not None and why[i] is not None]
    ranks: list[int | None] = [None] * len(points)
    for i, rank in zip(feasible, nondominated_ranks([located[i] for i in feasible], maximize)):
        ranks[i] = rank
    offset = max((ranks[i] for i in feasible), default=1)  # infeasible trials start at 2 at least: never on the front
    for i, rank in zip(broken, nondominated_ranks([located[i] for i in broken], maximize)):
        ranks[i] = rank + offset
    return list(zip(ranks, why))


def order(points: Sequence[Mapping[str, float] | None], objectives: Sequence[Objective],
          constraints: Sequence[Constraint] = ()) -> list[tuple[int, int | None, str | None]]:
    """(index, rank, why infeasible) in ranked order: the front first, then later fronts,
    then infeasible trials, each part by the first objective (best first); candidates
    without every objective measured, then non-candidates (None), last; ties in given order."""
    placed = placements(points, objectives, constraints)
    first = objectives[0]

    def key(index: int) -> tuple:
        rank = placed[index][0]
        if rank is None:
            return (1 if points[index] is not None else 2, 0, 0.0, index)
        value = points[index][first.name]
        return (0, rank, -value if first.maximize else value, index)

    return [(i, *placed[i]) for i in sorted(range(len(points)), key=key)]


def _metrics(result: TrialResult) -> Mapping[str, float] | None:
    return result.metrics if result.status is TrialStatus.SUCCESS else None


def pareto_ranks(results: Sequence[TrialResult], objectives: Sequence[Objective],
                 constraints: Sequence[Constraint] = ()) -> dict[str, int]:
    """{trial id: pareto rank} of the successful trials with every objective measured;
    infeasible ones ranked after all feasible ones."""
    placed = placements([_metrics(r) for r in results], objectives, constraints)
    return {r.trial.id: rank for r, (rank, _) in zip(results, placed) if rank is not None}


@dataclass(frozen=True)
class Placed:
    """A trial in a multi-objective leaderboard: its rank (None: unranked), why it is infeasible."""

    result: TrialResult
    rank: int | None
    infeasible: str | None

    @property
    def on_front(self) -> bool:
        return self.rank == 1 and self.infeasible is None


def ranked(results: Sequence[TrialResult], objectives: Sequence[Objective],
           constraints: Sequence[Constraint] = ()) -> list[Placed]:
    """Front first, then later fronts, then infeasible trials, each part by the first
    objective (best first); trials without every objective measured, then failures, last."""
    return [Placed(results[i], rank, why)
            for i, rank, why in order([_metrics(r) for r in results], objectives, constraints)]


def front(results: Sequence[TrialResult], objectives: Sequence[Objective],
          constraints: Sequence[Constraint] = ()) -> list[TrialResult]:
    """The feasible non-dominated trials, best first by the first objective."""
    return [p.result for p in ranked(results, objectives, constraints) if p.on_front]
