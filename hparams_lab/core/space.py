"""Search spaces: named hyperparameters over Discrete, IntInterval and RealInterval domains.

Stdlib only, so building and validating a space never imports TensorFlow. Spaces
come from code (``Space([HParam(...), ...])``) or from a TOML/JSON file
(``Space.load(path)``); both are validated the same way, and every error names the
hyperparameter, shows the bad value and says what is allowed.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

from hparams_lab.core.errors import UserError
from hparams_lab.core.files import read_json_or_toml

_MAX_SIG_DIGITS = 4  # sampled reals are rounded so tables and ids stay readable


class SpaceError(UserError):
    """A search space that cannot be used as written."""


def _is_number(value: object) -> bool:
    # bool is an int subclass in Python, but True is not a learning rate.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    if _is_number(value):
        return "number"
    return type(value).__name__


@dataclass(frozen=True)
class Discrete:
    """A finite set of values, all bool, all str or all numbers; kept sorted."""

    values: tuple

    def __post_init__(self) -> None:
        values = tuple(self.values) if isinstance(self.values, (list, tuple)) else None
        if values is None:
            raise SpaceError(f"Discrete needs a list of values, got {self.values!r}")
        if not values:
            raise SpaceError("Discrete needs at least one value, got []")
        kinds = {_value_type(v) for v in values}
        if len(kinds) > 1 or not kinds <= {"bool", "str", "number"}:
            raise SpaceError(
                f"Discrete values must be all numbers, all strings or all bools, got {list(values)!r}"
            )
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise SpaceError(f"Discrete values must be finite, got {list(values)!r}")
        object.__setattr__(self, "values", tuple(sorted(set(values))))

    @property
    def dtype(self) -> str:
        first = self.values[0]
        if isinstance(first, bool):
            return "bool"
        if isinstance(first, str):
            return "str"
        return "int" if all(isinstance(v, int) for v in self.values) else "float"

    def grid_values(self) -> tuple:
        return self.values

    def sample(self, rng: Random) -> Any:
        return self.values[rng.randrange(len(self.values))]

    def all_values(self) -> tuple:
        return self.values

    def size(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict:
        return {"values": list(self.values)}


@dataclass(frozen=True)
class _Interval:
    """Shared checks and grid logic of IntInterval and RealInterval.

    ``log`` samples log-uniformly (min must be > 0). ``step`` snaps values to
    min + k*step, or with ``log`` to min * step**k (then step must be > 1).
    ``points`` is how many values a grid takes, evenly spaced (log-spaced with log).
    """

    min: float
    max: float
    log: bool = False
    step: float | None = None
    points: int | None = None
    kind = ""

    def __post_init__(self) -> None:
        self._check_bound("min", self.min)
        self._check_bound("max", self.max)
        if self.min > self.max:
            raise SpaceError(f"{self.kind} needs min <= max, got min={self.min!r} > max={self.max!r}")
        if not isinstance(self.log, bool):
            raise SpaceError(f"{self.kind} 'log' must be true or false, got {self.log!r}")
        if self.log and self.min <= 0:
            raise SpaceError(f"{self.kind} with log scale needs min > 0, got min={self.min!r}")
        if self.step is not None:
            self._check_bound("step", self.step)
            if self.step <= 0 or (self.log and self.step <= 1):
                rule = "> 1 (a factor) with log scale" if self.log else "> 0"
                raise SpaceError(f"{self.kind} step must be {rule}, got step={self.step!r}")
        if self.points is not None and (
            not isinstance(self.points, int) or isinstance(self.points, bool) or self.points < 1
        ):
            raise SpaceError(f"{self.kind} points must be a whole number >= 1, got points={self.points!r}")
        if not math.isfinite(self.max - self.min):
            raise SpaceError(f"{self.kind}({self.min!r}, {self.max!r}): max - min is not a finite number")

    def _check_enumerable(self, count: int) -> None:
        # Counted, never built: a grid of a billion values would exhaust memory before failing.
        if count > MAX_GRID_VALUES:
            raise SpaceError(f"{self.kind}({self.min!r}, {self.max!r}) would have {count:,} grid values; "
                             f"at most {MAX_GRID_VALUES:,} per hparam (use fewer points or a larger step)")

    def _step_count(self) -> int:
        """How many values min, min+step, ... (min, min*step, ... with log) up to max."""
        if self.log:
            return int(math.floor(math.log(self.max / self.min) / math.log(self.step) + 1e-9)) + 1
        return int(math.floor((self.max - self.min) / self.step * (1 + 1e-12))) + 1

    def _check_bound(self, name: str, value: object) -> None:
        raise NotImplementedError

    def _cast(self, value: float) -> float:
        raise NotImplementedError

    def snap(self, value: float) -> float:
        """Clamps to [min, max] and, with a step, to the nearest step point."""
        if self.step is not None:
            if self.log:
                k = round(math.log(value / self.min) / math.log(self.step))
                value = self.min * self.step**k
            else:
                value = self.min + round((value - self.min) / self.step) * self.step
        return self._cast(min(max(value, self.min), self.max))

    def grid_values(self) -> tuple:
        if self.points is None and self.step is None:
            raise SpaceError(
                f"{self.kind}({self.min!r}, {self.max!r}) has no grid: give it 'points' (or a 'step')"
            )
        if self.points is None:
            return self._stepped_values()
        self._check_enumerable(self.points)
        if self.points == 1:
            return (self._cast(self.min),)
        return tuple(sorted({self.snap(self.at(i / (self.points - 1))) for i in range(self.points)}))

    def _stepped_values(self) -> tuple:
        self._check_enumerable(self._step_count())
        values, value = [], self.min
        while value <= self.max * (1 + 1e-12):
            values.append(self._cast(value))
            value = value * self.step if self.log else value + self.step
        return tuple(sorted(set(values)))

    def at(self, fraction: float) -> float:
        """The value at a fraction of the way from min to max (log-aware)."""
        if self.log:
            lo, hi = math.log(self.min), math.log(self.max)
            return math.exp(lo + fraction * (hi - lo))
        return self.min + fraction * (self.max - self.min)

    def to_dict(self) -> dict:
        out = {"kind": self.kind_name, "min": self.min, "max": self.max}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        if self.points is not None:
            out["points"] = self.points
        return out


@dataclass(frozen=True)
class IntInterval(_Interval):
    kind = "IntInterval"
    kind_name = "int"
    dtype = "int"

    def _check_bound(self, name: str, value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpaceError(f"{self.kind} {name} must be a whole number, got {name}={value!r}")

    def _cast(self, value: float) -> int:
        return int(round(value))

    def sample(self, rng: Random) -> int:
        # Widen by half a unit on each side so both ends are as likely as the rest.
        if self.log:
            # log needs min >= 1 here, so min - 0.5 stays positive.
            lo, hi = math.log(self.min - 0.5), math.log(self.max + 0.5)
            return self.snap(math.exp(rng.uniform(lo, hi)))
        return self.snap(rng.uniform(self.min - 0.5, self.max + 0.5))

    def all_values(self) -> Sequence[int]:
        if self.step is None:
            return range(self.min, self.max + 1)  # a range, not a tuple: it may hold a billion
        return self._stepped_values()

    def size(self) -> int:
        # Arithmetic, not len(all_values()): random search asks the size of any space.
        return self.max - self.min + 1 if self.step is None else self._step_count()


@dataclass(frozen=True)
class RealInterval(_Interval):
    kind = "RealInterval"
    kind_name = "real"
    dtype = "float"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "min", float(self.min))
        object.__setattr__(self, "max", float(self.max))

    def _check_bound(self, name: str, value: object) -> None:
        if not _is_number(value) or not math.isfinite(value):
            raise SpaceError(f"{self.kind} {name} must be a finite number, got {name}={value!r}")

    def _cast(self, value: float) -> float:
        # Ten significant digits drop float noise like 0.30000000000000004 from grids.
        return float(f"{value:.10g}")

    def sample(self, rng: Random) -> float:
        return self.rounded(self.at(rng.random()))

    def rounded(self, value: float) -> float:
        """A sampled value as a trial takes it: snapped to the step, else to a few significant digits."""
        if self.step is None:
            value = min(max(float(f"{value:.{_MAX_SIG_DIGITS}g}"), self.min), self.max)
        return self.snap(value)

    def all_values(self) -> tuple:
        if self.step is None:
            raise SpaceError(f"{self.kind}({self.min!r}, {self.max!r}) without a step is continuous")
        return self._stepped_values()

    def size(self) -> float:
        return math.inf if self.step is None else self._step_count()


Domain = Union[Discrete, IntInterval, RealInterval]


def middle(domain: Domain) -> Any:
    """A domain's middle: of the sorted values (the lower of an even count), or the interval's
    midpoint (geometric on a log domain), snapped to its step."""
    if isinstance(domain, Discrete):
        return domain.values[(len(domain.values) - 1) // 2]
    return domain.snap(domain.at(0.5))


def check_value(name: str, domain: Domain, value: object) -> Any:
    """``value`` as the domain holds it (a RealInterval's int becomes a float), or SpaceError."""
    if isinstance(domain, Discrete):
        if _value_type(value) != _value_type(domain.values[0]) or value not in domain.values:
            raise SpaceError(f"hparam {name!r}: {value!r} is not one of its values {list(domain.values)!r}")
        return value
    whole = isinstance(domain, IntInterval)
    if not _is_number(value) or (whole and not isinstance(value, int)) or not math.isfinite(value):
        wanted = "a whole number" if whole else "a number"
        raise SpaceError(f"hparam {name!r}: {value!r} is not {wanted} in {domain.min!r}..{domain.max!r}")
    if not domain.min <= value <= domain.max:
        raise SpaceError(f"hparam {name!r}: {value!r} is outside its range {domain.min!r}..{domain.max!r}")
    return value if whole else float(value)


@dataclass(frozen=True)
class HParam:
    """A named hyperparameter and the domain its values come from.

    ``when`` makes it conditional: ``{"optimizer": "sgd"}`` (equal to), ``{"optimizer":
    ["sgd", "rmsprop"]}`` (one of), ``{"num_layers": ">= 2"}`` (a comparison, for numbers);
    several entries must all hold. An inactive hparam has no value in a trial. Kept as a
    tuple of (name, condition) pairs, so that an HParam stays hashable.
    """

    name: str
    domain: Domain
    description: str = ""
    when: Mapping[str, Any] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpaceError(f"an hparam name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.domain, (Discrete, IntInterval, RealInterval)):
            raise SpaceError(
                f"hparam {self.name!r}: domain must be Discrete, IntInterval or RealInterval, "
                f"got {self.domain!r}"
            )
        if not isinstance(self.description, str):
            raise SpaceError(f"hparam {self.name!r}: description must be a string, got {self.description!r}")
        when = self.when.items() if isinstance(self.when, Mapping) else self.when
        try:
            pairs = tuple((on, tuple(c) if isinstance(c, list) else c) for on, c in when)
        except (TypeError, ValueError):
            raise SpaceError(f"hparam {self.name!r}: when must be a table of hparam = condition, "
                             f"got {self.when!r}") from None
        for on, condition in pairs:
            if not isinstance(on, str):
                raise SpaceError(f"hparam {self.name!r}: when names hparams by name, got {on!r}")
            if not isinstance(condition, (str, bool, int, float, tuple)) or condition == ():
                raise SpaceError(f"hparam {self.name!r}: when {on} = {condition!r}: expected a value, "
                                 "a list of values or a comparison such as '>= 2'")
        object.__setattr__(self, "when", pairs)


@dataclass(frozen=True)
class Space:
    """An ordered collection of HParams with unique names, and the file's training settings.

    ``training`` is the space file's ``[training]`` table: ``loss``, ``metrics``, ``task``,
    ``direction`` by name (what the study's flags set; a flag given wins).
    """

    hparams: tuple[HParam, ...] = field(default_factory=tuple)
    training: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        hparams = tuple(self.hparams)
        if not hparams:
            raise SpaceError("a search space needs at least one hparam")
        seen: set[str] = set()
        for hparam in hparams:
            if not isinstance(hparam, HParam):
                raise SpaceError(f"a Space holds HParam objects, got {hparam!r}")
            if hparam.name in seen:
                raise SpaceError(f"hparam {hparam.name!r} is defined twice")
            seen.add(hparam.name)
        object.__setattr__(self, "hparams", hparams)
        object.__setattr__(self, "training", _training_table(self.training))
        by_name = {h.name: h for h in hparams}
        conditions = {h.name: tuple(_condition(h, on, spec, by_name) for on, spec in h.when) for h in hparams}
        object.__setattr__(self, "_conditions", conditions)
        object.__setattr__(self, "_order", _topological(hparams, conditions))
        object.__setattr__(self, "_parents", {c.on for cs in conditions.values() for c in cs})
        if self.conditional:
            self._check_conditions()

    def __iter__(self) -> Iterator[HParam]:
        return iter(self.hparams)

    def __len__(self) -> int:
        return len(self.hparams)

    def __getitem__(self, name: str) -> HParam:
        for hparam in self.hparams:
            if hparam.name == name:
                return hparam
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hparams)

    @property
    def conditional(self) -> bool:
        """Whether some hparam is active only under conditions (``when``)."""
        return bool(self._parents)

    @property
    def ordered(self) -> tuple[HParam, ...]:
        """The hparams with every parent before the hparams that depend on it."""
        return self._order

    @property
    def parents(self) -> frozenset[str]:
        """The hparams some condition depends on."""
        return frozenset(self._parents)

    def conditions(self, name: str) -> tuple["Condition", ...]:
        return self._conditions[name]

    def is_active(self, name: str, point: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the values in ``point`` (an inactive parent: not)."""
        return all(c.on in point and c.holds(point[c.on]) for c in self._conditions[name])

    def active(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """``point``'s values of the hparams that are active under it, in the space's order.

        Parents are decided first, so a value given for an hparam whose parent is itself
        inactive is dropped too. Names the space does not have are dropped.
        """
        kept: dict[str, Any] = {}
        for h in self._order:
            if h.name in point and self.is_active(h.name, kept):
                kept[h.name] = point[h.name]
        return {name: kept[name] for name in self.names if name in kept}

    def complete(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """A point of one's own made whole: each value checked against its domain, an active
        hparam not given takes its domain's middle; a name the space lacks, or a value for
        an hparam that is inactive at that point, is a SpaceError."""
        if not isinstance(point, Mapping):
            raise SpaceError(f"a point is a table of hparam = value, got {point!r}")
        unknown = [name for name in point if name not in self.names]
        if unknown:
            raise SpaceError(f"unknown hparam(s) {', '.join(map(repr, unknown))}; the space has {', '.join(self.names)}")
        given = {name: check_value(name, self[name].domain, value) for name, value in point.items()}
        whole: dict[str, Any] = {}
        for h in self._order:
            if self.is_active(h.name, whole):
                whole[h.name] = given[h.name] if h.name in given else middle(h.domain)
            elif h.name in given:
                written = ", ".join(c.describe() for c in self._conditions[h.name])
                raise SpaceError(f"hparam {h.name!r} is inactive at this point (it needs {written})")
        return {name: whole[name] for name in self.names if name in whole}

    def fits(self, hparams: Mapping[str, Any]) -> str | None:
        """Why a logged trial's hparams are not a point of this space, or None if they are."""
        extra = sorted(set(hparams) - set(self.names))
        if extra:
            return f"hparam {extra[0]!r} is not in the space"
        for name, value in hparams.items():
            try:
                check_value(name, self[name].domain, value)
            except SpaceError:
                return f"hparam {name!r} = {value!r} is outside its domain"
        active = self.active(hparams)
        missing = [h.name for h in self._order if self.is_active(h.name, active) and h.name not in active]
        if missing:
            return f"hparam {missing[0]!r} has no value"
        if len(active) != len(hparams):
            return f"hparam {sorted(set(hparams) - set(active))[0]!r} is set where it is inactive"
        return None

    def sample(self, rng: Random) -> dict[str, Any]:
        """One random point: each active hparam drawn from its domain, parents first.

        Without conditions this draws in the space's order, one value per hparam, as
        random search always has (so its trials stay the same).
        """
        point: dict[str, Any] = {}
        for h in self._order:
            if self.is_active(h.name, point):
                point[h.name] = h.domain.sample(rng)
        return {name: point[name] for name in self.names if name in point}

    def points(self, axis: Callable[[HParam], Sequence] | None = None) -> Iterator[dict[str, Any]]:
        """Every point over each hparam's ``axis`` values (default: all its values), only
        active hparams in each, last hparam varying fastest. A product without conditions."""
        axis = axis or (lambda h: h.domain.all_values())
        if not self.conditional:
            for values in itertools.product(*(axis(h) for h in self.hparams)):
                yield dict(zip(self.names, values))
            return
        yield from self._walk(0, {}, axis)

    def _walk(self, i: int, point: dict, axis) -> Iterator[dict[str, Any]]:
        if i == len(self._order):
            yield {name: point[name] for name in self.names if name in point}
            return
        hparam = self._order[i]
        if not self.is_active(hparam.name, point):
            yield from self._walk(i + 1, point, axis)
            return
        for value in axis(hparam):
            point[hparam.name] = value
            yield from self._walk(i + 1, point, axis)
        del point[hparam.name]

    def size(self, axis_size: Callable[[HParam], float] | None = None) -> float:
        """How many distinct points the space has (math.inf with a continuous domain); with
        ``axis_size``, how many over those axes (a grid). Counted, never enumerated."""
        grid = axis_size is not None
        axis_size = axis_size or (lambda h: h.domain.size())
        if not self.conditional:
            return math.prod(axis_size(h) for h in self.hparams)
        total = 0
        for active, weight in self._patterns(lambda h: self.classes(h, grid=grid)):
            total += weight * math.prod(axis_size(h) for h in self.hparams
                                        if h.name in active and h.name not in self._parents)
        return total

    def grid_size(self) -> float:
        return self.size(lambda h: len(h.domain.grid_values()))

    def classes(self, hparam: HParam, grid: bool = False) -> list[tuple[Any, int]]:
        """A parent's values grouped by which conditions on it they meet: (one of them, how many)."""
        values = hparam.domain.grid_values() if grid else hparam.domain.all_values()
        on_it = [c for cs in self._conditions.values() for c in cs if c.on == hparam.name]
        groups: dict[tuple, list] = {}
        for value in values:
            groups.setdefault(tuple(c.holds(value) for c in on_it), [value, 0])[1] += 1
        return [(value, count) for value, count in groups.values()]

    def _patterns(self, classes) -> Iterator[tuple[frozenset, float]]:
        """Each way the conditions can come out: (the active hparams, how many parent values give it)."""
        parents = [h for h in self._order if h.name in self._parents]

        def walk(i, point, weight):
            if i == len(parents):
                active = {name for name in self.names if self.is_active(name, point)}
                yield frozenset(active), weight
                return
            parent = parents[i]
            if not self.is_active(parent.name, point):
                yield from walk(i + 1, point, weight)
                return
            for value, count in classes(parent):
                yield from walk(i + 1, {**point, parent.name: value}, weight * count)

        yield from walk(0, {}, 1)

    def _check_conditions(self) -> None:
        for hparam in self.hparams:
            if hparam.name in self._parents and not isinstance(hparam.domain, Discrete):
                size = hparam.domain.size()
                if size > MAX_CONDITION_VALUES:
                    what = "a continuous range" if math.isinf(size) else f"{size:,} values"
                    raise SpaceError(f"hparam {hparam.name!r} is used in a condition, so it needs at most "
                                     f"{MAX_CONDITION_VALUES:,} values (a list, an int range or a step); "
                                     f"it has {what}")
        ever = set().union(*(active for active, _ in self._patterns(self.classes)))
        for hparam in self.hparams:
            if hparam.name not in ever:
                written = ", ".join(c.describe() for c in self._conditions[hparam.name])
                raise SpaceError(f"hparam {hparam.name!r} is never active: no point of the space has {written}")

    def to_dict(self) -> dict:
        out = {}
        for h in self.hparams:
            entry = h.domain.to_dict()
            if h.description:
                entry["description"] = h.description
            if h.when:
                entry["when"] = {c.on: c.to_spec() for c in self._conditions[h.name]}
            out[h.name] = entry
        return {"hparams": out, **({"training": dict(self.training)} if self.training else {})}

    @classmethod
    def from_dict(cls, data: object, source: str = "space") -> "Space":
        if not isinstance(data, dict) or not isinstance(data.get("hparams"), dict):
            raise SpaceError(f"{source}: expected a table 'hparams' of name = domain entries")
        unknown = sorted(set(data) - {"hparams", "training"})
        if unknown:
            raise SpaceError(f"{source}: unknown top-level key(s) {unknown}; only 'hparams' and 'training' are allowed")
        hparams = []
        for name, spec in data["hparams"].items():
            try:
                hparams.append(_hparam_from_spec(name, spec))
            except SpaceError as err:
                raise SpaceError(f"{source}: {err}") from None
        try:
            return cls(tuple(hparams), data.get("training") or {})
        except SpaceError as err:
            raise SpaceError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> "Space":
        """Reads a space from a .toml or .json file."""
        path = Path(path)
        if path.suffix.lower() not in (".toml", ".json"):
            raise SpaceError(f"space file {str(path)!r}: use a .toml or .json file")
        data = read_json_or_toml(path, "space file", SpaceError)
        return cls.from_dict(data, source=str(path))


MAX_CONDITION_VALUES = 10_000  # values of an hparam others depend on: enumerated to count and check

_COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
                "==": operator.eq, "!=": operator.ne}
_COMPARISON = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Condition:
    """One entry of an hparam's ``when``: the value ``on`` must have for it to be active."""

    on: str
    op: str  # "in" (one of ``value``, a tuple) or a comparison (>=, <=, >, <, ==, !=)
    value: Any

    def holds(self, value: Any) -> bool:
        if self.op == "in":
            return value in self.value
        return _COMPARISONS[self.op](value, self.value)

    def to_spec(self) -> Any:
        """As a space file writes it."""
        if self.op == "in":
            return self.value[0] if len(self.value) == 1 else list(self.value)
        return f"{self.op} {self.value!r}"

    def describe(self) -> str:
        if self.op == "in":
            return f"{self.on} = {self.value[0]!r}" if len(self.value) == 1 else f"{self.on} in {list(self.value)!r}"
        return f"{self.on} {self.op} {self.value!r}"


def _condition(hparam: HParam, on: str, spec: Any, by_name: Mapping[str, HParam]) -> Condition:
    """A ``when`` entry checked against the domain of the hparam it names."""
    where = f"hparam {hparam.name!r}: when {on} = {spec!r}"
    if on == hparam.name:
        raise SpaceError(f"{where}: an hparam cannot depend on itself")
    if on not in by_name:
        raise SpaceError(f"{where}: the space has no hparam {on!r} (it has {', '.join(by_name)})")
    domain = by_name[on].domain
    numeric = not isinstance(domain, Discrete) or domain.dtype in ("int", "float")
    if isinstance(spec, str) and numeric:
        match = _COMPARISON.match(spec)
        number = _number(match.group(2)) if match else None
        if number is None:
            raise SpaceError(f"{where}: {on} is a number; expected a value, a list or a comparison "
                             "such as '>= 2'")
        return Condition(on, match.group(1), number)
    try:
        values = tuple(check_value(on, domain, v) for v in (spec if isinstance(spec, tuple) else (spec,)))
    except SpaceError as err:
        raise SpaceError(f"{where}: {err}") from None
    return Condition(on, "in", values)


def _number(text: str) -> float | int | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if _is_number(value) and math.isfinite(value) else None


def _topological(hparams: Sequence[HParam], conditions: Mapping[str, tuple[Condition, ...]]) -> tuple[HParam, ...]:
    """Parents before the hparams that depend on them, otherwise in the space's order; a cycle is an error."""
    order: list[HParam] = []
    placed: set[str] = set()
    pending = list(hparams)
    while pending:
        ready = next((h for h in pending if all(c.on in placed for c in conditions[h.name])), None)
        if ready is None:
            cycle = " -> ".join(_cycle(pending, conditions))
            raise SpaceError(f"the conditions (when) form a cycle: {cycle}")
        order.append(ready)
        placed.add(ready.name)
        pending.remove(ready)
    return tuple(order)


def _cycle(pending: Sequence[HParam], conditions) -> list[str]:
    left = {h.name for h in pending}
    name, path = pending[0].name, []
    while name not in path:
        path.append(name)
        name = next(c.on for c in conditions[name] if c.on in left)
    return path[path.index(name):] + [name]


# The [training] table: its keys, and what each value must be.
TRAINING_KEYS = {"loss": "a Keras loss name", "metrics": "a list of Keras metric names",
                 "task": "multiclass, binary, multilabel or regression", "direction": "max or min"}


def _training_table(table: object) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise SpaceError(f"[training] must be a table of {', '.join(TRAINING_KEYS)}, got {table!r}")
    unknown = sorted(set(table) - set(TRAINING_KEYS))
    if unknown:
        raise SpaceError(f"[training]: unknown key(s) {unknown}; known are {', '.join(TRAINING_KEYS)}")
    out = dict(table)
    if isinstance(out.get("metrics"), str):
        out["metrics"] = [part.strip() for part in out["metrics"].split(",") if part.strip()]
    for key, value in out.items():
        ok = (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)) \
            if key == "metrics" else (isinstance(value, str) and value)
        if not ok:
            raise SpaceError(f"[training] {key} = {value!r}: expected {TRAINING_KEYS[key]}")
    return out


MAX_GRID_VALUES = 100_000  # per hparam: a grid beyond it is a typo, not a study


_DOMAIN_KEYS = {
    "discrete": {"values"},
    "int": {"min", "max", "log", "step", "points"},
    "real": {"min", "max", "log", "step", "points"},
}


def _hparam_from_spec(name: str, spec: object) -> HParam:
    """One file entry: a list (discrete), a scalar (one fixed value) or a table."""
    if isinstance(spec, list):
        return HParam(name, _domain(name, Discrete, spec))
    if not isinstance(spec, dict):
        return HParam(name, _domain(name, Discrete, [spec]))
    spec = dict(spec)
    description = spec.pop("description", "")
    when = spec.pop("when", {})
    if not isinstance(when, dict):
        raise SpaceError(f"hparam {name!r}: when must be a table, e.g. when = {{ optimizer = \"sgd\" }}; "
                         f"got {when!r}")
    kind = spec.pop("kind", None)
    if kind is None:
        kind = _infer_kind(spec)
    if kind not in _DOMAIN_KEYS:
        raise SpaceError(f"hparam {name!r}: unknown domain kind {kind!r}; use discrete, int or real")
    unknown = sorted(set(spec) - _DOMAIN_KEYS[kind])
    if unknown:
        raise SpaceError(
            f"hparam {name!r}: unknown key(s) {unknown} for a {kind} domain; "
            f"allowed: {sorted(_DOMAIN_KEYS[kind])}"
        )
    if kind == "discrete":
        return HParam(name, _domain(name, Discrete, spec.get("values")), description, when)
    missing = sorted({"min", "max"} - set(spec))
    if missing:
        raise SpaceError(f"hparam {name!r}: an interval needs min and max, missing {missing}")
    cls = IntInterval if kind == "int" else RealInterval
    return HParam(name, _domain(name, cls, **spec), description, when)


def _infer_kind(spec: dict) -> str:
    if "values" in spec:
        return "discrete"
    bounds = [spec.get("min"), spec.get("max")]
    if all(isinstance(b, int) and not isinstance(b, bool) for b in bounds) and not isinstance(
        spec.get("step"), float
    ):
        return "int"
    return "real"


def _domain(name: str, cls: type, *args: Any, **kwargs: Any) -> Domain:
    try:
        return cls(*args, **kwargs)
    except SpaceError as err:
        raise SpaceError(f"hparam {name!r}: {err}") from None
