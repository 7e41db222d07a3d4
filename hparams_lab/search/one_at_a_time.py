"""One at a time: vary each hparam alone from a base configuration, then rank the hparams by effect.

The seeds' advice to tune the most important hparams first. The plan is the base
trial, then for each hparam every value of its grid with the others at base
(Discrete: all its values; an interval: ``points`` values from min to max, evenly
or, on a log domain, log-spaced, snapped to its step), skipping the base's own
value. The base defaults to each domain's middle: the middle of the sorted values
(the lower one of an even count) or the interval's midpoint (geometric on a log
domain). ``effects`` then gives each hparam's metric at each of its values and
ranks the hparams by the spread (max - min).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hparams_lab.core.errors import UserError
from hparams_lab.core.files import read_json_or_toml
from hparams_lab.core.space import (
    Discrete,
    Domain,
    Space,
    SpaceError,
    check_value,
    middle,
)
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus

DEFAULT_POINTS = 5


def one_at_a_time(
    space: Space, base: Mapping[str, Any] | None = None, *, seed: int = 0, points: int = DEFAULT_POINTS
) -> list[Trial]:
    """The base trial, then each hparam's other values with the rest at base.

    With conditional hparams, only those active at the base vary, and each point keeps
    only what is active in it: flipping optimizer to sgd brings momentum in at its base.
    """
    base = resolve_base(space, base)
    planned = {_key(space.active(base)): space.active(base)}
    for hparam in space:
        if not space.is_active(hparam.name, space.active(base)):
            continue
        for value in _axis(hparam.domain, points):
            if value != base[hparam.name]:
                point = space.active({**base, hparam.name: value})
                planned.setdefault(_key(point), point)
    return [Trial(hparams, seed=seed, index=i) for i, hparams in enumerate(planned.values())]


def _key(point: Mapping[str, Any]) -> tuple:
    return tuple(sorted(point.items()))


def _axis(domain: Domain, points: int) -> tuple:
    if isinstance(domain, Discrete):
        return domain.values
    return dataclasses.replace(domain, points=points).grid_values()


def default_base(space: Space) -> dict[str, Any]:
    return {h.name: middle(h.domain) for h in space}


def resolve_base(space: Space, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The middle of every domain, overridden by ``given``; every value checked against its domain."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(space.names))
    if unknown:
        raise UserError(f"--base: unknown hparam(s) {', '.join(unknown)}; the space has {', '.join(space.names)}")
    base = default_base(space)
    for name, value in given.items():
        try:
            base[name] = check_value(name, space[name].domain, value)
        except SpaceError as err:
            raise UserError(f"--base: {err}") from None
    return base


def parse_base(text: str) -> dict[str, Any]:
    """``units=64,optimizer=adam`` (numbers and true/false as such, other text as strings),
    or a .json / .toml file of name = value."""
    if text.lower().endswith((".json", ".toml")):
        return _read_base_file(Path(text))
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, raw = item.partition("=")
        if not equals or not name.strip():
            raise UserError(f"--base: {item!r} is not name=value; write e.g. --base 'units=64,optimizer=adam'")
        out[name.strip()] = _parse_value(raw.strip())
    return out


def _parse_value(raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _read_base_file(path: Path) -> dict[str, Any]:
    data = read_json_or_toml(path, "--base file")
    if not isinstance(data, dict):
        raise UserError(f"--base file {str(path)!r} must hold name = value pairs, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class Effect:
    name: str
    values: tuple[tuple[Any, float | None], ...]  # (hparam value, mean metric or None if failed), by value
    spread: float | None  # max - min of the metric over the values; None with fewer than two


def effects(results: Sequence[TrialResult], base: Mapping[str, Any], metric: str) -> list[Effect]:
    """Each varied hparam's metric at each of its values, largest spread first.

    A result counts for the hparam it alone changes from ``base``; the base trial
    counts for every hparam. Repeats and folds of one point are averaged.
    """
    seen: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        hparams = result.trial.hparams
        if not set(hparams) & set(base):
            continue
        # Compared where both have a value: a conditional hparam a flip brings in or
        # takes out is not a second change.
        varied = [name for name in base if name in hparams and hparams[name] != base[name]]
        if len(varied) > 1:
            continue  # not a point of this plan
        value = result.metrics.get(metric) if result.status is TrialStatus.SUCCESS else None
        for name in varied or [name for name in base if name in hparams]:
            seen[name][hparams[name]].append(value)
    out = []
    for name, by_value in seen.items():
        if len(by_value) < 2:
            continue
        values = tuple((v, _mean(ms)) for v, ms in sorted(by_value.items()))
        finite = [m for _, m in values if m is not None]
        out.append(Effect(name, values, max(finite) - min(finite) if len(finite) > 1 else None))
    return sorted(out, key=lambda e: (e.spread is None, -(e.spread or 0.0), e.name))


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


