"""Hyperband and successive halving: many configurations on few epochs, the best go on.

Li et al. (2018), "Hyperband: a novel bandit-based approach": with R = the most
epochs any configuration trains and factor η, bracket s (s = s_max .. 0, s_max =
floor(log_η R)) starts n = ceil((s_max + 1) η^s / (s + 1)) configurations on R η^-s
epochs; each rung keeps the best 1/η and trains them η times longer, up to R.
Successive halving is the most aggressive bracket alone. Epochs are rounded up, as
keras-tuner does, and a promoted configuration continues from its weights (its
checkpoint) instead of starting over, in the same run directory: one TensorBoard
session per configuration, its scalars its whole training.

With one worker a rung is decided when all its configurations are in (synchronous,
deterministic given the seed). With several, promotions are asynchronous as in ASHA
(Li et al. 2020): a free worker takes the best configuration in the top 1/η of what
a rung has so far, else starts a new one, so no worker idles waiting for a rung to fill.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hparams_lab.core import metrics as m
from hparams_lab.core.space import Space
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.search.base import Task
from hparams_lab.search.points import first
from hparams_lab.search.random import random_search
from hparams_lab.store import rundirs
from hparams_lab.store.rundirs import close_paused

DEFAULT_FACTOR = 3


@dataclass(frozen=True)
class Bracket:
    """Rung i trains ``sizes[i]`` configurations up to ``epochs[i]`` epochs in all."""

    sizes: tuple[int, ...]
    epochs: tuple[int, ...]

    @property
    def total_epochs(self) -> int:
        """Epochs trained when every rung is full, continuing from weights."""
        steps = (self.epochs[0],) + tuple(b - a for a, b in zip(self.epochs, self.epochs[1:]))
        return sum(n * e for n, e in zip(self.sizes, steps))


def brackets(max_epochs: int, factor: int = DEFAULT_FACTOR, *, only_first: bool = False) -> list[Bracket]:
    """Hyperband's brackets, most aggressive first; ``only_first``: successive halving."""
    if factor < 2:
        raise ValueError(f"factor must be at least 2, got {factor}")
    s_max = _floor_log(max_epochs, factor)
    out = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) * factor**s / (s + 1))
        sizes = tuple(max(1, n // factor**i) for i in range(s + 1))
        epochs = tuple(max(1, math.ceil(max_epochs / factor ** (s - i))) for i in range(s + 1))
        out.append(Bracket(sizes, epochs))
        if only_first:
            break
    return out


def _floor_log(value: int, base: int) -> int:
    """floor(log_base(value)) in integers (math.log rounds 243 to 4.999...)."""
    power, n = base, 0
    while power <= value:
        power, n = power * base, n + 1
    return n


def capped(plan: Sequence[Bracket], configurations: int | None) -> list[Bracket]:
    """The first ``configurations`` of the plan: later brackets shrink, then go (``--trials``)."""
    if configurations is None:
        return list(plan)
    out, left = [], configurations
    for bracket in plan:
        if left <= 0:
            break
        n = min(bracket.sizes[0], left)
        left -= n
        scale = n / bracket.sizes[0]
        sizes = tuple(max(1, math.floor(size * scale)) if i else n for i, size in enumerate(bracket.sizes))
        out.append(Bracket(sizes, bracket.epochs))
    return out


@dataclass(eq=False)
class _Config:
    trial: Trial
    bracket: int
    values: dict[int, float] = field(default_factory=dict)  # rung -> ranked metric there
    failed_at: int | None = None  # the rung whose segment failed
    promoted: set[int] = field(default_factory=set)  # rungs it went on from
    result: TrialResult | None = None  # its latest
    busy: bool = False

    @property
    def rung(self) -> int:
        return max(self.values, default=-1)

    @property
    def final(self) -> bool:
        return self.result is not None and self.result.status is not TrialStatus.RUNNING


class HyperbandSearch:
    """The hyperband (or successive halving) search of one experiment; see the module doc."""

    def __init__(self, space: Space, plan: Sequence[Bracket], *, seed: int, metric: str,
                 experiment_dir: Path, asynchronous: bool = False, directions: Mapping[str, str] | None = None,
                 enqueued: Sequence[Mapping[str, Any]] = ()):
        self.plan, self.metric, self.asynchronous = list(plan), metric, asynchronous
        self.directions = directions
        self._key = m.sort_key(metric, directions)
        count = sum(b.sizes[0] for b in self.plan)
        # Points of the user's own are the first configurations (of the first bracket).
        trials = first(enqueued, random_search(space, seed=seed, trials=count), seed=seed, count=count)
        self.configs: list[_Config] = []
        for b, bracket in enumerate(self.plan):
            taken = len(self.configs)
            self.configs += [_Config(t, b) for t in trials[taken:taken + bracket.sizes[0]]]
        self.total = sum(sum(b.sizes) for b in self.plan)  # segments, for progress lines
        self._by_id = {c.trial.id: c for c in self.configs}
        self._earlier = _earlier_attempts(experiment_dir)
        self.results: dict[str, TrialResult] = {}  # trial id -> final result, in the order they end

    def ask(self) -> Task | None:
        while (task := self._next()) is not None:
            done = self._replayed(task)
            if done is None:
                return task
            self.tell(task, done)  # a resumed experiment: this segment ran before
        return None

    def tell(self, task: Task, result: TrialResult) -> None:
        config = self._by_id[task.trial.id]
        rung = self.plan[config.bracket].epochs.index(task.stop)
        config.busy, config.result = False, result
        if result.status is TrialStatus.FAILURE:
            config.failed_at = rung
            self.results[task.trial.id] = result
        else:
            value = result.metrics.get(self.metric)
            if value is None or not math.isfinite(value):
                value = -math.inf if m.higher_is_better(self.metric, self.directions) else math.inf  # the worst: never sent on
            config.values[rung] = value
        self._close_decided()

    # -- decisions -------------------------------------------------------------------
    def _next(self) -> Task | None:
        for b, bracket in enumerate(self.plan):
            for rung in range(len(bracket.sizes) - 2, -1, -1):  # the highest rung first
                candidates = self._candidates(b, rung)
                if candidates:
                    config = candidates[0]
                    config.promoted.add(rung)
                    config.busy = True
                    return Task(config.trial, config.result.run_dir, bracket.epochs[rung], bracket.epochs[rung + 1])
            fresh = next((c for c in self._members(b) if c.result is None and not c.busy), None)
            if fresh is not None:
                fresh.busy = True
                return Task(fresh.trial, None, 0, bracket.epochs[0])
            if not self.asynchronous and not all(c.final for c in self._members(b)):
                return None  # one worker: the next bracket waits for this one, as in the paper
        return None

    def _members(self, b: int) -> list[_Config]:
        return [c for c in self.configs if c.bracket == b]

    def _candidates(self, b: int, rung: int) -> list[_Config]:
        """Configurations rung ``rung`` of bracket ``b`` should send on now, best first.

        A complete rung sends its best sizes[rung+1]; before that, asynchronously, the
        top 1/factor of what it has so far (ASHA); never more than sizes[rung+1] in all.
        """
        size_next = self.plan[b].sizes[rung + 1]
        done = sorted((c for c in self._members(b) if rung in c.values),
                      key=lambda c: self._key({self.metric: c.values[rung]}))
        if self._complete(b, rung):
            quota = size_next
        elif self.asynchronous:
            quota = len(done) * size_next // self.plan[b].sizes[rung]
        else:
            return []
        sent = sum(rung in c.promoted for c in self._members(b))
        fresh = [c for c in done[:quota] if rung not in c.promoted]
        return fresh[: max(0, size_next - sent)]

    def _complete(self, b: int, rung: int) -> bool:
        """Whether every configuration that will ever reach ``rung`` has reported it."""
        members = self._members(b)
        if rung == 0:
            expected = members
        else:
            if not self._complete(b, rung - 1) or self._candidates(b, rung - 1):
                return False
            expected = [c for c in members if rung - 1 in c.promoted]
        return all(rung in c.values or c.failed_at == rung for c in expected)

    def _close_decided(self) -> None:
        """Ends the sessions of configurations that will train no further."""
        for config in self.configs:
            if config.final or config.busy or config.rung < 0:
                continue
            rung, top = config.rung, len(self.plan[config.bracket].sizes) - 1
            if rung == top or (rung not in config.promoted and self._complete(config.bracket, rung)
                               and config not in self._candidates(config.bracket, rung)):
                config.result = close_paused(config.result.run_dir, config.trial)
                self.results[config.trial.id] = config.result

    # -- resuming --------------------------------------------------------------------
    def _replayed(self, task: Task) -> TrialResult | None:
        """The task's result if an earlier run of this experiment got that far."""
        earlier = self._earlier.get(task.trial.id)
        if earlier is None:
            return None
        if earlier.status is TrialStatus.SUCCESS:
            return earlier
        if earlier.status is TrialStatus.RUNNING and earlier.epochs >= task.stop:
            return earlier
        return None


def _earlier_attempts(experiment_dir: Path) -> dict[str, TrialResult]:
    """Each trial's latest successful attempt in the experiment directory, else its first paused one."""
    attempts = rundirs.scan(experiment_dir)
    found = {a.result.trial.id: a.result for a in attempts if a.status is TrialStatus.SUCCESS and a.result}
    for attempt in attempts:
        if attempt.status is TrialStatus.RUNNING and attempt.result is not None:
            found.setdefault(attempt.result.trial.id, attempt.result)
    return found
