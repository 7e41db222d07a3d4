"""Every strategy in one table: the options of its own it takes, its default trial count, its plan.

``STRATEGIES`` is the only list of strategies; the CLI's choices, the check of
strategy-specific flags and the plan all come from it. A fixed strategy (grid,
random, refine, one-at-a-time) plans its trials up front; an adaptive one
(hyperband, successive halving, bayes) plans a search that decides as results come
in. refine reads an earlier experiment (``--from``): its space is the default space
and its successful trials are where the winners come from. The options a strategy
used go into experiment.json's settings, so resuming with other ones is refused. An
option the strategy does not use is an error rather than silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hparams_lab.core.errors import UserError
from hparams_lab.core.metrics import DEFAULT_METRIC
from hparams_lab.core.space import Space
from hparams_lab.core.trial import Trial, TrialResult
from hparams_lab.search.base import Search
from hparams_lab.search.grid import grid
from hparams_lab.search.one_at_a_time import DEFAULT_POINTS as ONE_AT_A_TIME_POINTS
from hparams_lab.search.one_at_a_time import one_at_a_time, parse_base, resolve_base
from hparams_lab.search.points import complete_points, first, read_points
from hparams_lab.search.random import random_search
from hparams_lab.search.refine import DEFAULT_POINTS as REFINE_POINTS
from hparams_lab.search.refine import DEFAULT_TOP_K, refine

# hyperband, bayes and the store (tensorboard's protos) load when a plan needs them, so
# that the CLI, which reads this table for its --strategy choices, starts in a blink.

# An adaptive strategy's search, built for an experiment directory (a resumed
# experiment's search takes what earlier runs left there into account) and the
# number of tasks that run at once.
SearchFactory = Callable[[Path, int], Search]

# A strategy-specific flag and the keyword plan_study takes it as.
OPTION_NAMES = {"--from": "refine_from", "--from-metric": "from_metric", "--top-k": "top_k", "--points": "points",
                "--widen": "widen", "--base": "base", "--factor": "factor", "--pruner": "pruner"}


@dataclass(frozen=True)
class Plan:
    space: Space
    trials: list[Trial]  # a fixed strategy's trials; empty for an adaptive one
    settings: dict[str, Any] = field(default_factory=dict)  # the strategy's options, for experiment.json
    search: SearchFactory | None = None  # adaptive strategies (hyperband, bayes) decide as results come
    size: int | None = None  # an adaptive search's trial count (configurations), for experiment.json
    notes: tuple[str, ...] = ()  # what the study says before it starts (e.g. how a warm start went)

    @property
    def total(self) -> int:
        return len(self.trials) if self.size is None else self.size


@dataclass(frozen=True)
class Request:
    """What a study asks of its strategy: the trial count defaulted, the options checked."""

    name: str
    space: Space | None  # the user's; None: the strategy's default
    default_space: Space
    seed: int
    trials: int | None  # None: as many as the plan holds
    metric: str
    logdir: str | os.PathLike
    epochs: int  # the most epochs a trial trains (hyperband's R)
    options: Mapping[str, Any]  # keyword -> value given, None when not given
    directions: Mapping[str, str] | None = None  # --direction (core.metrics.higher_is_better)
    enqueue: tuple = ()  # --enqueue: points of the user's own, run first (search.points)
    objectives: tuple = ()  # several --metric (core.objectives.Objective): bayes's multi-objective study
    constraints: tuple = ()  # --constraint (core.objectives.Constraint): bayes's constraints_func

    @property
    def chosen_space(self) -> Space:
        return self.space or self.default_space


@dataclass(frozen=True)
class Strategy:
    plan: Callable[[Request], Plan]
    options: tuple[str, ...] = ()  # the strategy-specific flags it takes
    default_trials: int | None = None  # None: every trial its plan holds
    adaptive: bool = False  # decides as results come in (no --repeats / --cv)


def plan_study(
    strategy: str,
    space: Space | None,
    default_space: Space,
    *,
    seed: int,
    trials: int | None,
    metric: str,
    logdir: str | os.PathLike,
    epochs: int = 20,
    directions: Mapping[str, str] | None = None,
    enqueue: str | os.PathLike | Sequence[Mapping[str, Any]] | None = None,
    objectives: Sequence[Any] = (),
    constraints: Sequence[Any] = (),
    **options: Any,
) -> Plan:
    """The space and trials of a study; ``space`` None means the strategy's default space.

    ``options`` are the strategy-specific ones, by keyword (``OPTION_NAMES``). ``enqueue``
    (a file or a list of points) runs first, counted in ``trials`` where the strategy
    draws a number of them; the strategy's own trials follow.
    """
    entry = _strategy(strategy)
    _check_options(strategy, options)
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise UserError(f"--trials must be at least 1, got {trials!r}")
    points = () if enqueue is None else tuple(read_points(enqueue))
    request = Request(strategy, space, default_space, seed, entry.default_trials if trials is None else trials,
                      metric, logdir, epochs, options, directions, points, tuple(objectives), tuple(constraints))
    plan = entry.plan(request)
    if not points:
        return plan
    if entry.adaptive:
        return plan  # its search runs them first (the plan's settings say which)
    enqueued = complete_points(plan.space, points)
    trials_ = first(enqueued, plan.trials, seed=seed, count=trials)
    return Plan(plan.space, trials_, {**plan.settings, "enqueue": enqueued}, plan.search, plan.size, plan.notes)


def make_trials(
    strategy: str,
    space: Space,
    *,
    seed: int,
    trials: int | None,
    previous: Sequence[TrialResult] = (),
    metric: str = DEFAULT_METRIC,
    top_k: int = DEFAULT_TOP_K,
    points: int | None = None,
    base: Mapping[str, Any] | None = None,
    directions: Mapping[str, str] | None = None,
) -> list[Trial]:
    """The trials a fixed strategy plans for a space; UserError for a bad combination.

    ``trials`` caps every strategy but random (there: how many to draw). refine
    uses ``previous``, ``metric``, ``top_k`` and ``points``; one-at-a-time ``base``
    and ``points`` (None: each strategy's default).
    """
    if strategy not in _FIXED:
        raise UserError(f"unknown strategy {strategy!r}; choose one of {', '.join(_FIXED)}")
    if trials is not None and trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    if trials is None:
        trials = STRATEGIES[strategy].default_trials
    planned = _FIXED[strategy](space, seed=seed, trials=trials, previous=previous, metric=metric, top_k=top_k,
                               points=points, base=base, directions=directions)
    return planned if trials is None else planned[:trials]


# -- each strategy's trials (fixed) and plan -------------------------------------------
def _grid_trials(space: Space, *, seed: int, trials: int | None, **_: Any) -> list[Trial]:
    return grid(space, seed=seed, trials=trials)


def _random_trials(space: Space, *, seed: int, trials: int, **_: Any) -> list[Trial]:
    return random_search(space, seed=seed, trials=trials)


def _refine_trials(space: Space, *, seed: int, previous: Sequence[TrialResult], metric: str, top_k: int,
                   points: int | None, directions: Mapping[str, str] | None = None, **_: Any) -> list[Trial]:
    return refine(space, previous, metric=metric, top_k=top_k, points=REFINE_POINTS if points is None else points,
                  seed=seed, directions=directions)


def _one_at_a_time_trials(space: Space, *, seed: int, points: int | None, base: Mapping[str, Any] | None,
                          **_: Any) -> list[Trial]:
    return one_at_a_time(space, base, seed=seed, points=ONE_AT_A_TIME_POINTS if points is None else points)


_FIXED: dict[str, Callable[..., list[Trial]]] = {
    "grid": _grid_trials,
    "random": _random_trials,
    "refine": _refine_trials,
    "one-at-a-time": _one_at_a_time_trials,
}


def _fixed_plan(request: Request) -> Plan:
    space = request.chosen_space
    return Plan(space, make_trials(request.name, space, seed=request.seed, trials=request.trials))


def _refine_plan(request: Request) -> Plan:
    from hparams_lab.store import resume
    from hparams_lab.store.experiment import locate_experiment

    source = request.options.get("refine_from")
    if source is None:
        raise UserError("--strategy refine needs --from EXPERIMENT: the experiment whose best trials to refine")
    top_k = _or(request.options.get("top_k"), DEFAULT_TOP_K)
    points = _or(request.options.get("points"), REFINE_POINTS)
    from_metric = request.options.get("from_metric")
    try:
        earlier = locate_experiment(source, request.logdir)
    except UserError:
        if not any(p.is_dir() for p in (Path(request.logdir) / source, Path(source))):
            raise
        earlier = None  # not ours: any TensorBoard HParams logs, read as review reads them
    if earlier is not None and from_metric is None:
        record = resume.read_record(earlier)
        space = request.space or Space.from_dict(record.space, source=str(earlier / "experiment.json"))
        previous, metric, notes = list(resume.scan(earlier).done.values()), request.metric, ()
        source_path = str(Path(earlier).resolve())
    else:
        from hparams_lab.search.warm import previous_results

        if request.space is None and earlier is None:
            raise UserError(f"--from {str(source)!r} is not an hparams_lab experiment: give the space to refine "
                            "with --space (its hparams are matched by name and domain)")
        space = request.space or Space.from_dict(resume.read_record(earlier).space)
        metric = from_metric or request.metric
        found = previous_results(source, request.logdir, space, metric, seed=request.seed)
        previous, notes, source_path = found.results, (found.note,), found.source
    widened, widen_notes = {}, ()
    if request.options.get("widen"):
        space, widened = _widened(space, previous, metric, request.directions)
        widen_notes = tuple(f"--widen: {name} {_span(moved['was'])} -> {_span(moved['now'])} (its winners sit at "
                            f"the {moved['edge']} edge)" for name, moved in widened.items())
    try:
        planned = make_trials("refine", space, seed=request.seed, trials=request.trials, previous=previous,
                              metric=metric, top_k=top_k, points=points, directions=request.directions)
    except UserError as err:
        raise UserError(f"--from {str(source)!r}: {err}") from None
    settings = {"from": source_path, "top_k": top_k, "points": points,
                **({"from_metric": from_metric} if from_metric else {})}
    if widened:  # only with --widen, so experiments refined before it existed resume unchanged
        settings["widen"] = widened
    return Plan(space, planned, settings, notes=notes + widen_notes)


def _widened(space: Space, previous: Sequence[TrialResult], metric: str,
             directions: Mapping[str, str] | None) -> tuple[Space, dict[str, dict[str, Any]]]:
    """--widen: the space with each edge its winners sit at moved out (core.edges' rule), and what moved.

    No edge to widen is a UserError: the user asked for a wider search that would not happen.
    Without any successful trial nothing changes here: refine itself says what is missing.
    """
    from hparams_lab.core import edges

    winners = edges.winners(previous, metric, directions)
    if not winners:
        return space, {}
    found = edges.find_edges(edges.interval_domains(space), [r.trial.hparams for r in winners])
    moved = [edge for edge in found if edge.widened is not None]
    if not moved:
        stuck = "".join(f"; {edge.name}'s sit at its {edge.side} edge, which is at its limit" for edge in found)
        raise UserError(f"--widen: no interval hparam's {edges.TOP_K} best trials all sit within "
                        f"{edges.EDGE_SHARE:.0%} of one end of its domain{stuck}; nothing to widen "
                        "(refine without --widen)")
    widened = {edge.name: {"edge": edge.side, "was": [edge.domain.min, edge.domain.max],
                           "now": [edge.widened.min, edge.widened.max]} for edge in moved}
    return edges.widen_space(space, moved), widened


def _span(bounds: Sequence[float]) -> str:
    return "..".join(f"{bound:.6g}" for bound in bounds)


def _one_at_a_time_plan(request: Request) -> Plan:
    space = request.chosen_space
    given = request.options.get("base")
    base = resolve_base(space, parse_base(given) if isinstance(given, str) else given)
    points = _or(request.options.get("points"), ONE_AT_A_TIME_POINTS)
    planned = make_trials("one-at-a-time", space, seed=request.seed, trials=request.trials, base=base,
                          points=points)
    return Plan(space, planned, {"base": base, "points": points})


def _hyperband_plan(request: Request) -> Plan:
    from hparams_lab.search.hyperband import (
        DEFAULT_FACTOR,
        HyperbandSearch,
        brackets,
        capped,
    )

    factor = _or(request.options.get("factor"), DEFAULT_FACTOR)
    if not isinstance(factor, int) or factor < 2:
        raise UserError(f"--factor must be a whole number >= 2, got {factor!r}")
    space, seed, metric = request.chosen_space, request.seed, request.metric
    plan = capped(brackets(request.epochs, factor, only_first=request.name == "successive-halving"), request.trials)

    enqueued = complete_points(space, request.enqueue)
    if len(enqueued) > sum(b.sizes[0] for b in plan):
        raise UserError(f"--enqueue: {len(enqueued)} points, but this hyperband plan starts only "
                        f"{sum(b.sizes[0] for b in plan)} configurations")

    def search(experiment_dir: Path, slots: int) -> Search:
        return HyperbandSearch(space, plan, seed=seed, metric=metric, experiment_dir=experiment_dir,
                               asynchronous=slots > 1, directions=request.directions, enqueued=enqueued)

    settings = {"factor": factor, "brackets": [{"sizes": list(b.sizes), "epochs": list(b.epochs)} for b in plan],
                **({"enqueue": enqueued} if enqueued else {})}
    return Plan(space, [], settings, search, size=sum(b.sizes[0] for b in plan))


def _bayes_plan(request: Request) -> Plan:
    from hparams_lab.search import bayes

    bayes.require_optuna()  # before anything is written
    pruner = request.options.get("pruner")
    if pruner is not None and pruner not in bayes.PRUNERS:
        raise UserError(f"--pruner {pruner!r}: choose one of {', '.join(bayes.PRUNERS)}")
    space, seed, metric, trials = request.chosen_space, request.seed, request.metric, request.trials
    enqueued = complete_points(space, request.enqueue)
    settings: dict[str, Any] = {"pruner": pruner, **({"enqueue": enqueued} if enqueued else {})}
    notes: tuple[str, ...] = ()
    warm: list = []
    if request.options.get("refine_from") is not None and len(request.objectives) > 1:
        raise UserError("--strategy bayes --from learns from one metric's values; it does not combine with "
                        "several --metric yet")
    if request.options.get("refine_from") is not None:
        from hparams_lab.search.warm import previous_results

        source = request.options["refine_from"]
        from_metric = request.options.get("from_metric") or metric
        found = previous_results(source, request.logdir, space, from_metric, seed=seed)
        warm = [(r.trial.hparams, r.metrics[from_metric]) for r in found.results]
        settings.update({"from": found.source, "from_metric": from_metric})
        notes = (found.note,)

    def search(experiment_dir: Path, slots: int) -> Search:
        return bayes.BayesSearch(space, seed=seed, trials=trials, metric=metric, experiment_dir=experiment_dir,
                                 slots=slots, pruner=pruner, directions=request.directions, enqueued=enqueued,
                                 warm=warm, objectives=request.objectives, constraints=request.constraints)

    return Plan(space, [], settings, search, size=int(min(trials, space.size())), notes=notes)


STRATEGIES: dict[str, Strategy] = {
    "grid": Strategy(_fixed_plan),
    "random": Strategy(_fixed_plan, default_trials=10),
    "refine": Strategy(_refine_plan, ("--from", "--from-metric", "--top-k", "--points", "--widen")),
    "one-at-a-time": Strategy(_one_at_a_time_plan, ("--base", "--points")),
    "hyperband": Strategy(_hyperband_plan, ("--factor",), adaptive=True),
    "successive-halving": Strategy(_hyperband_plan, ("--factor",), adaptive=True),
    "bayes": Strategy(_bayes_plan, ("--pruner", "--from", "--from-metric"), default_trials=10, adaptive=True),
}
NAMES = tuple(STRATEGIES)


def _strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _check_options(strategy: str, options: Mapping[str, Any]) -> None:
    allowed = STRATEGIES[strategy].options
    for flag, keyword in OPTION_NAMES.items():
        value = options.get(keyword)
        if value is not None and flag not in allowed:
            users = [name for name, entry in STRATEGIES.items() if flag in entry.options]
            raise UserError(f"{flag} is only for --strategy {' or '.join(dict.fromkeys(users))}, not {strategy!r}")
        if flag in ("--top-k", "--points") and value is not None and (not isinstance(value, int) or value < 1):
            raise UserError(f"{flag} must be a whole number >= 1, got {value!r}")
    unknown = sorted(set(options) - set(OPTION_NAMES.values()))
    if unknown:
        raise TypeError(f"plan_study() got unexpected options {unknown}")
