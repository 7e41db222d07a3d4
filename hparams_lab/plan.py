"""What a study will run: its space and trials, from the strategy and the strategy's own options.

refine reads an earlier experiment (``refine_from``): its space is the default
space and its successful trials are where the winners come from. one-at-a-time
resolves its base configuration. The options a strategy used go into
experiment.json's settings, so resuming with other ones is refused. An option the
strategy does not use is an error rather than silently ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from hparams_lab import bayes, resume
from hparams_lab.errors import UserError
from hparams_lab.experiment import locate_experiment
from hparams_lab.hyperband import DEFAULT_FACTOR, HyperbandSearch, brackets, capped
from hparams_lab.one_at_a_time import DEFAULT_POINTS as ONE_AT_A_TIME_POINTS
from hparams_lab.one_at_a_time import parse_base, resolve_base
from hparams_lab.refine import DEFAULT_POINTS as REFINE_POINTS
from hparams_lab.refine import DEFAULT_TOP_K
from hparams_lab.space import Space
from hparams_lab.strategies import make_trials
from hparams_lab.scheduler import Search
from hparams_lab.trial import Trial

# The strategy-specific flags each strategy takes.
_OPTIONS = {
    "refine": ("--from", "--top-k", "--points"),
    "one-at-a-time": ("--base", "--points"),
    "hyperband": ("--factor",),
    "successive-halving": ("--factor",),
    "bayes": ("--pruner",),
}
BAYES_TRIALS = 10  # as random search


# An adaptive strategy's search, built for an experiment directory (a resumed
# experiment's search takes what earlier runs left there into account) and the
# number of tasks that run at once.
SearchFactory = Callable[[Path, int], Search]


@dataclass(frozen=True)
class Plan:
    space: Space
    trials: list[Trial]  # a fixed strategy's trials; empty for an adaptive one
    settings: dict[str, Any] = field(default_factory=dict)  # the strategy's options, for experiment.json
    search: SearchFactory | None = None  # adaptive strategies (hyperband, bayes) decide as results come
    size: int | None = None  # an adaptive search's trial count (configurations), for experiment.json

    @property
    def total(self) -> int:
        return len(self.trials) if self.size is None else self.size


def plan_study(
    strategy: str,
    space: Space | None,
    default_space: Space,
    *,
    seed: int,
    trials: int | None,
    metric: str,
    logdir: str | os.PathLike,
    refine_from: str | os.PathLike | None = None,
    top_k: int | None = None,
    points: int | None = None,
    base: Mapping[str, Any] | str | None = None,
    epochs: int = 20,
    factor: int | None = None,
    pruner: str | None = None,
) -> Plan:
    """The space and trials of a study; ``space`` None means the strategy's default space.

    ``epochs`` is the most epochs a trial trains (hyperband's R).
    """
    given = {"--from": refine_from, "--top-k": top_k, "--points": points, "--base": base, "--factor": factor,
             "--pruner": pruner}
    _check_options(strategy, given)
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise UserError(f"--trials must be at least 1, got {trials!r}")
    if strategy == "bayes":
        return _bayes(space or default_space, seed=seed, trials=BAYES_TRIALS if trials is None else trials,
                      metric=metric, pruner=pruner)
    if strategy in ("hyperband", "successive-halving"):
        return _hyperband(strategy, space or default_space, seed=seed, trials=trials, metric=metric,
                          epochs=epochs, factor=DEFAULT_FACTOR if factor is None else factor)
    if strategy == "refine":
        return _refine(space, seed=seed, trials=trials, metric=metric, logdir=logdir, source=refine_from,
                       top_k=DEFAULT_TOP_K if top_k is None else top_k,
                       points=REFINE_POINTS if points is None else points)
    space = space or default_space
    if strategy == "one-at-a-time":
        base = resolve_base(space, parse_base(base) if isinstance(base, str) else base)
        points = ONE_AT_A_TIME_POINTS if points is None else points
        planned = make_trials(strategy, space, seed=seed, trials=trials, base=base, points=points)
        return Plan(space, planned, {"base": base, "points": points})
    return Plan(space, make_trials(strategy, space, seed=seed, trials=trials))


def _refine(space: Space | None, *, seed: int, trials: int | None, metric: str, logdir: str | os.PathLike,
            source: str | os.PathLike | None, top_k: int, points: int) -> Plan:
    if source is None:
        raise UserError("--strategy refine needs --from EXPERIMENT: the experiment whose best trials to refine")
    earlier = locate_experiment(source, logdir)
    record = resume.read_record(earlier)
    space = space or Space.from_dict(record.space, source=str(earlier / "experiment.json"))
    previous = list(resume.scan(earlier).done.values())
    try:
        planned = make_trials("refine", space, seed=seed, trials=trials, previous=previous, metric=metric,
                              top_k=top_k, points=points)
    except UserError as err:
        raise UserError(f"--from {str(source)!r}: {err}") from None
    settings = {"from": str(Path(earlier).resolve()), "top_k": top_k, "points": points}
    return Plan(space, planned, settings)


def _hyperband(strategy: str, space: Space, *, seed: int, trials: int | None, metric: str, epochs: int,
               factor: int) -> Plan:
    if not isinstance(factor, int) or factor < 2:
        raise UserError(f"--factor must be a whole number >= 2, got {factor!r}")
    plan = capped(brackets(epochs, factor, only_first=strategy == "successive-halving"), trials)

    def search(experiment_dir: Path, slots: int) -> HyperbandSearch:
        return HyperbandSearch(space, plan, seed=seed, metric=metric, experiment_dir=experiment_dir,
                               asynchronous=slots > 1)

    settings = {"factor": factor, "brackets": [{"sizes": list(b.sizes), "epochs": list(b.epochs)} for b in plan]}
    return Plan(space, [], settings, search, size=sum(b.sizes[0] for b in plan))


def _bayes(space: Space, *, seed: int, trials: int, metric: str, pruner: str | None) -> Plan:
    bayes.require_optuna()  # before anything is written
    if pruner is not None and pruner not in bayes.PRUNERS:
        raise UserError(f"--pruner {pruner!r}: choose one of {', '.join(bayes.PRUNERS)}")

    def search(experiment_dir: Path, slots: int) -> bayes.BayesSearch:
        return bayes.BayesSearch(space, seed=seed, trials=trials, metric=metric, experiment_dir=experiment_dir,
                                 slots=slots, pruner=pruner)

    return Plan(space, [], {"pruner": pruner}, search, size=int(min(trials, space.size())))


def _check_options(strategy: str, given: Mapping[str, Any]) -> None:
    allowed = _OPTIONS.get(strategy, ())
    for flag, value in given.items():
        if value is not None and flag not in allowed:
            users = [name for name, flags in _OPTIONS.items() if flag in flags]
            raise UserError(f"{flag} is only for --strategy {' or '.join(users)}, not {strategy!r}")
        if flag in ("--top-k", "--points") and value is not None and (not isinstance(value, int) or value < 1):
            raise UserError(f"{flag} must be a whole number >= 1, got {value!r}")
