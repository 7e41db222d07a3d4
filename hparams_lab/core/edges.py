"""Where the best trials sit in an interval domain: the one rule of "at the edge", and widening.

A study's leaderboard and `review` warn with it; `refine --widen` widens by it, so a
warning's suggested range is exactly what `--widen` plans over. Stdlib only.

- **Winners**: the ``TOP_K`` (5) best successful trials with distinct hparams, ranked
  by the ranking metric, among those that have a number for the hparam (a
  conditional hparam is judged on the trials where it is active). Fewer if fewer
  succeeded; below ``MIN_WINNERS`` (3), nothing is said.
- **At an edge**: every winner's value is within ``EDGE_SHARE`` (10%) of the
  domain's width from its min (the bottom edge), or every one from its max (the
  top edge). Width and distance are in log units on a log domain. A domain of one
  value has no edge.
- **Widened**: that edge moved out by the domain's width (in log units on a log
  domain, so 1e-4..1e-2 at the top becomes 1e-4..1). With a step, by whole steps
  (rounded outward), so the grid stays aligned; an int domain's new bound is
  rounded outward. Hard limits: a log domain's min stays > 0 (>= 1 for ints), which
  moving in log units guarantees; and a bound never crosses zero (min >= 0 stays >= 0,
  max <= 0 stays <= 0): the space does not say whether an hparam can be negative, and
  most non-negative ones (dropout, units, layers) cannot. An edge at zero therefore
  cannot be widened; that is said instead of a range.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from hparams_lab.core.metrics import sort_key
from hparams_lab.core.space import IntInterval, RealInterval, Space
from hparams_lab.core.trial import TrialResult, TrialStatus

TOP_K = 5
MIN_WINNERS = 3
EDGE_SHARE = 0.1
BOTTOM, TOP = "bottom", "top"

Interval = IntInterval | RealInterval


@dataclass(frozen=True)
class Edge:
    """The winners of one hparam all sit at one edge of its domain."""

    name: str
    side: str  # BOTTOM (near min) or TOP (near max)
    values: tuple  # the winners' values, best first
    domain: Interval
    widened: Interval | None  # None: that edge cannot be widened (it is at zero)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _scale(domain: Interval):
    return math.log if domain.log else float


def side_of(domain: Interval, values: Sequence[float]) -> str | None:
    """BOTTOM or TOP when every value is within EDGE_SHARE of the width from that bound, else None."""
    scale = _scale(domain)
    if domain.log and any(v <= 0 for v in values):
        return None
    low, high = scale(domain.min), scale(domain.max)
    width = high - low
    if not values or not width > 0:
        return None
    reach = EDGE_SHARE * width * (1 + 1e-9)  # a value exactly 10% in counts
    points = [scale(v) for v in values]
    if all(p - low <= reach for p in points):
        return BOTTOM
    if all(high - p <= reach for p in points):
        return TOP
    return None


def widen(domain: Interval, side: str) -> Interval | None:
    """The domain with that edge moved out by its width (see the module's docstring); None if it cannot move."""
    log, step = domain.log, domain.step
    if log:
        factor = domain.max / domain.min
        if step is not None:  # whole steps, rounded outward: step**n >= factor
            factor = step ** math.ceil(math.log(factor) / math.log(step) - 1e-9)
        bound = domain.min / factor if side == BOTTOM else domain.max * factor
    else:
        width = domain.max - domain.min
        if step is not None:
            width = step * math.ceil(width / step - 1e-9)
        bound = domain.min - width if side == BOTTOM else domain.max + width
        if side == BOTTOM and domain.min >= 0 and bound < 0:
            bound = 0.0 if step is None else domain.min - step * math.floor(domain.min / step + 1e-9)
        if side == TOP and domain.max <= 0 and bound > 0:
            bound = 0.0 if step is None else domain.max + step * math.floor(-domain.max / step + 1e-9)
    if isinstance(domain, IntInterval):
        bound = math.floor(bound + 1e-9) if side == BOTTOM else math.ceil(bound - 1e-9)
        if log:
            bound = max(bound, 1)
    else:
        bound = float(f"{bound:.10g}")
        if log and bound <= 0:  # cannot happen for factors of finite floats; the limit, said here
            return None
    new = dataclasses.replace(domain, min=bound) if side == BOTTOM else dataclasses.replace(domain, max=bound)
    return None if (new.min, new.max) == (domain.min, domain.max) else new


def find_edges(domains: Mapping[str, Interval], ranked: Iterable[Mapping[str, Any]],
               top_k: int = TOP_K) -> list[Edge]:
    """The Edges of the interval ``domains`` (name -> IntInterval/RealInterval), in their order.

    ``ranked``: the successful trials' hparams, best first, one per distinct hparams set.
    """
    ranked = list(ranked)
    edges = []
    for name, domain in domains.items():
        values = [hparams[name] for hparams in ranked if _is_number(hparams.get(name))][:top_k]
        if len(values) < MIN_WINNERS:
            continue
        side = side_of(domain, values)
        if side is not None:
            edges.append(Edge(name, side, tuple(values), domain, widen(domain, side)))
    return edges


def interval_domains(space: Space) -> dict[str, Interval]:
    return {h.name: h.domain for h in space if isinstance(h.domain, (IntInterval, RealInterval))}


def widen_space(space: Space, edges: Iterable[Edge]) -> Space:
    """The space with each widenable edge's domain replaced by its widened one."""
    wider = {edge.name: edge.widened for edge in edges if edge.widened is not None}
    hparams = tuple(dataclasses.replace(h, domain=wider[h.name]) if h.name in wider else h for h in space)
    return dataclasses.replace(space, hparams=hparams)


def winners(results: Iterable[TrialResult], metric: str,
            directions: Mapping[str, str] | None = None) -> list[TrialResult]:
    """Successful results with a finite ``metric``, best first (ties: by trial id, as refine ranks
    them), one per session group (repeats and folds of one hparams set count once)."""
    key = sort_key(metric, directions)
    scored = [r for r in results if r.status is TrialStatus.SUCCESS and _is_number(r.metrics.get(metric))]
    best: dict[str, TrialResult] = {}
    for result in sorted(scored, key=lambda r: (key(r.metrics), r.trial.id)):
        best.setdefault(result.trial.group, result)
    return list(best.values())


def distinct(hparams_sets: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The first of each equal hparams set, in order (a repeated trial counts once)."""
    seen, out = set(), []
    for hparams in hparams_sets:
        key = tuple(sorted((name, repr(value)) for name, value in hparams.items()))
        if key not in seen:
            seen.add(key)
            out.append(hparams)
    return out
