"""Bayesian optimisation (TPE) through optuna: optuna decides, hparams_lab trains and logs.

optuna's ask-and-tell interface: ``study.ask`` with the space's domains as fixed
distributions gives the next point, which trains as a Trial like any other (its run
directory, session, trial.json), and ``study.tell`` gets its ranked metric, or FAIL,
or PRUNED. The optuna study lives in a journal file in the experiment directory
(``optuna.journal``): worker processes open it to report a trial's epochs and ask the
pruner, and a resumed experiment reopens it, so finished trials are never retrained.

Deterministic given the seed with one worker: every ask gets a TPE sampler seeded from
(seed, trial number), so what is asked depends only on the seed and the results so
far, and a resumed study asks what an uninterrupted one would have. With several
workers, up to that many trials are out at once (TPE's constant liar keeps them apart).

optuna is an optional extra: imported only when a bayes study runs, never by
``import hparams_lab`` or ``--help``.

Several objectives (``--metric`` repeated, core.objectives): the optuna study gets one
direction per objective (``create_study(directions=...)``) and is told every objective's
value; TPE is then optuna's multi-objective TPE (MOTPE). ``--constraint``s go to the
sampler (each trial's values, <= 0 where it holds, also kept as its user attribute:
``Trial.set_constraint`` in optuna >= 5, a ``constraints_func`` before). The pruner
ranks by the first objective's per-epoch values; a pruned trial is told to optuna as
failed then (its multi-objective TPE cannot rank pruned trials).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

from hparams_lab.core import metrics as m
from hparams_lab.core.errors import UserError
from hparams_lab.core.space import Discrete, Domain, IntInterval, RealInterval, Space
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.search.base import Task
from hparams_lab.store import rundirs

JOURNAL = "optuna.journal"  # the optuna study, in the experiment directory
STUDY_NAME = "hparams_lab"
PRUNERS = ("median",)
INSTALL = "pip install -e '.[optuna]'"
_MAX_STARTUP = 10  # optuna's default number of random trials before TPE
_MAX_ASKS = 100  # per wanted trial, before deciding optuna only proposes points already tried
_openings = itertools.count()  # tells apart the studies one journal path held (--overwrite starts over)


def require_optuna() -> Any:
    """The optuna module, or UserError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise UserError(f"--strategy bayes needs optuna, an optional extra: {INSTALL}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per trial on stderr
    return optuna


def startup_trials(trials: int) -> int:
    """Random trials before TPE models the results: optuna's 10, at most half of a small study.

    With optuna's default, a 10-trial study would be random search.
    """
    return max(1, min(_MAX_STARTUP, trials // 2))


# -- the space as optuna distributions ---------------------------------------------------
def _on_grid(domain: Domain) -> bool:
    """A stepped domain optuna has no distribution for: a log grid (min * step**k), a real step."""
    return not isinstance(domain, Discrete) and domain.step is not None and (
        domain.log or isinstance(domain, RealInterval))


def distribution(domain: Domain) -> Any:
    """The optuna distribution of a domain.

    Discrete -> CategoricalDistribution; IntInterval -> IntDistribution (log, or a
    linear step); RealInterval -> FloatDistribution (log). A log grid or a stepped real
    interval becomes an IntDistribution over the index of its ordered values, which TPE
    treats as the ordered, evenly spaced (log-spaced) points they are.
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(domain, Discrete):
        return CategoricalDistribution(domain.values)
    if _on_grid(domain):
        return IntDistribution(0, len(domain.all_values()) - 1)
    if isinstance(domain, IntInterval):
        if domain.step is not None:  # optuna wants max on the grid
            return IntDistribution(domain.min, domain.all_values()[-1], step=domain.step)
        return IntDistribution(domain.min, domain.max, log=domain.log)
    return FloatDistribution(domain.min, domain.max, log=domain.log)


def distributions(space: Space) -> dict[str, Any]:
    return {h.name: distribution(h.domain) for h in space}


def value_of(domain: Domain, param: Any) -> Any:
    """The hparam value of an optuna parameter; reals rounded as random search rounds them."""
    if _on_grid(domain):
        return domain.all_values()[param]
    if isinstance(domain, Discrete):
        return param
    if isinstance(domain, IntInterval):
        return int(param)
    return domain.rounded(param)


def hparams_of(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's hparams from optuna's params; a conditional space's inactive ones are absent."""
    return {h.name: value_of(h.domain, params[h.name]) for h in space if h.name in params}


def params_of(space: Space, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """optuna's params of a point: value_of's inverse (a grid's values by their index)."""
    return {h.name: (h.domain.all_values().index(hparams[h.name]) if _on_grid(h.domain) else hparams[h.name])
            for h in space if h.name in hparams}


def ask_conditional(study: Any, space: Space, distributions_: Mapping[str, Any]) -> Any:
    """optuna's define-by-run: each hparam suggested only once its conditions hold, parents
    first, so TPE (with group=True) models each set of active hparams apart."""
    asked = study.ask()
    point: dict[str, Any] = {}
    for hparam in space.ordered:
        if space.is_active(hparam.name, point):
            point[hparam.name] = value_of(hparam.domain, _suggest(asked, hparam.name, distributions_[hparam.name]))
    return asked


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


# -- pruning, in the process that trains ---------------------------------------------------
@dataclass(frozen=True)
class PruneCheck:
    """A core.contract.PruneCheck: reports each epoch's value to optuna and asks the pruner.

    Plain values, so it travels to worker processes inside the Task; each process
    opens the experiment's journal once. ``monitor`` is the per-epoch Keras log the
    ranked metric comes from (best_val_accuracy -> val_accuracy).
    """

    journal: str
    number: int  # the optuna trial
    monitor: str
    pruner: str
    opening: int  # which BayesSearch wrote the journal: one started over is read afresh
    maximize: bool | None = None  # several objectives: the first's direction, which the pruner ranks by

    def __call__(self, epoch: int, logs: Mapping[str, float]) -> bool:
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False  # a NaN loss stops the trial anyway, as a FAILURE
        storage, study, study_id = _pruning_study(self.journal, self.pruner, self.opening)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
        storage.set_trial_intermediate_value(trial_id, epoch, float(value))
        seen = study if self.maximize is None else _FirstObjective(study, self.maximize)
        return bool(study.pruner.prune(seen, storage.get_trial(trial_id)))


class _FirstObjective:
    """A multi-objective study as the pruner sees it: one direction, the first objective's
    (optuna's pruners ask a study only for its trials and its direction)."""

    def __init__(self, study: Any, maximize: bool) -> None:
        from optuna.study import StudyDirection

        self._study = study
        self.direction = StudyDirection.MAXIMIZE if maximize else StudyDirection.MINIMIZE

    def get_trials(self, *args: Any, **kwargs: Any) -> Any:
        return self._study.get_trials(*args, **kwargs)


@functools.lru_cache(maxsize=1)
def _pruning_study(journal: str, pruner: str, opening: int) -> tuple[Any, Any, int]:
    """The study of a journal as this process sees it, opened once per process and study."""
    optuna = require_optuna()
    storage = _storage(optuna, journal)
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage, pruner=_pruner(optuna, pruner),
                              sampler=optuna.samplers.RandomSampler())  # never samples here
    return storage, study, storage.get_study_id_from_name(STUDY_NAME)


def _pruner(optuna: Any, name: str | None) -> Any:
    if name is None:
        return optuna.pruners.NopPruner()
    if name == "median":
        # optuna's defaults: once 5 trials have finished, a trial whose best value so far
        # is below the median of the finished trials' values at the same epoch stops there.
        return optuna.pruners.MedianPruner()
    raise UserError(f"--pruner {name!r}: choose one of {', '.join(PRUNERS)}")


def _storage(optuna: Any, path: str) -> Any:
    try:
        from optuna.storages.journal import (
            JournalFileBackend as Backend,  # optuna >= 4.0
        )
    except ImportError:
        from optuna.storages import JournalFileStorage as Backend  # optuna 3.x
    with warnings.catch_warnings():  # experimental in optuna 3.x
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.JournalStorage(Backend(path))


# -- the search ----------------------------------------------------------------------------
class BayesSearch:
    """TPE over a space for ``trials`` distinct trials; see the module doc.

    A point optuna proposes again is told the earlier result and not retrained (optuna's
    FAQ); the study ends early if optuna keeps proposing only points already tried.
    """

    def __init__(self, space: Space, *, seed: int, trials: int, metric: str, experiment_dir: Path,
                 slots: int = 1, pruner: str | None = None, directions: Mapping[str, str] | None = None,
                 enqueued: Sequence[Mapping[str, Any]] = (), warm: Sequence[tuple[Mapping[str, Any], float]] = (),
                 objectives: Sequence[Any] = (), constraints: Sequence[Any] = ()):
        self._optuna = optuna = require_optuna()
        self.space, self.seed, self.metric, self.pruner = space, seed, metric, pruner
        # Several objectives (core.objectives.Objective): optuna's multi-objective study; one: as ever.
        self.objectives = tuple(objectives) if len(objectives) > 1 else ()
        self.constraints = tuple(constraints)
        self._wanted = int(min(trials, space.size()))  # distinct trials in all
        self.results: dict[str, TrialResult] = {}  # trial id -> final result, in the order they end
        self._distributions = distributions(space)
        self._journal = str(experiment_dir / JOURNAL)
        self._parallel = slots > 1
        self._opening = next(_openings)
        self._store = _storage(optuna, self._journal)
        if self.objectives:
            chosen = {"directions": ["maximize" if o.maximize else "minimize" for o in self.objectives]}
        else:
            chosen = {"direction": "maximize" if m.higher_is_better(metric, directions) else "minimize"}
        self.study = optuna.create_study(
            study_name=STUDY_NAME, storage=self._store, load_if_exists=True, **chosen,
            sampler=optuna.samplers.RandomSampler(), pruner=_pruner(optuna, None))
        # Fixed when the study starts, so a resume with more --trials does not go back to random.
        if "startup_trials" not in self.study.user_attrs:
            self.study.set_user_attr("startup_trials", startup_trials(self._wanted))
        self._startup = int(self.study.user_attrs["startup_trials"])
        if "started" not in self.study.user_attrs:  # once, when the study is new (not on resume)
            self._warm_start(warm)
            for point in enqueued:  # asked first, as optuna's enqueue_trial promises
                self.study.enqueue_trial(params_of(space, point))
            self.study.set_user_attr("started", True)
        self._numbers: dict[str, int] = {}  # trial id -> its optuna trial number
        self._redo: deque[Trial] = deque()  # out when the study stopped: they run again
        self._asks = 0
        self._resume(experiment_dir)
        # Tasks this run will start, for progress lines: what is left, and what runs again.
        self.total = max(0, self._wanted - len(self._numbers)) + len(self._redo)

    def _warm_start(self, warm: Sequence[tuple[Mapping[str, Any], float]]) -> None:
        """Earlier trials (search.warm) told to optuna as finished ones: TPE learns from them;
        they are not trials of this experiment and never train."""
        for hparams, value in warm:
            params = params_of(self.space, hparams)
            self.study.add_trial(self._optuna.trial.create_trial(
                params=params, distributions={name: self._distributions[name] for name in params}, value=value,
                user_attrs={"warm_start": True}))

    def ask(self) -> Task | None:
        if self._redo:
            return self._task(self._redo.popleft())
        while len(self._numbers) < self._wanted and self._asks < self._wanted * _MAX_ASKS:
            self._asks += 1
            number = len(self.study.get_trials(deepcopy=False))  # the trial ask is about to create
            self.study.sampler = self._sampler(number)
            asked = ask_conditional(self.study, self.space, self._distributions) if self.space.conditional \
                else self.study.ask(self._distributions)
            trial = Trial(hparams_of(self.space, asked.params), seed=self.seed, index=len(self._numbers))
            if trial.id in self._numbers:
                self._told_again(asked, trial.id)
                continue
            asked.set_user_attr("trial_id", trial.id)
            asked.set_user_attr("index", trial.index)  # last: from now on it is one of the study's trials
            self._numbers[trial.id] = asked.number
            return self._task(trial)
        return None

    def tell(self, task: Task, result: TrialResult) -> None:
        self._tell(self._numbers[task.trial.id], result)
        self.results[task.trial.id] = result

    def _task(self, trial: Trial) -> Task:
        first = self.objectives[0].maximize if self.objectives else None
        check = None if self.pruner is None else PruneCheck(
            self._journal, self._numbers[trial.id], m.monitored(self.metric), self.pruner, self._opening, first)
        return Task(trial, prune=check)

    def _sampler(self, number: int) -> Any:
        seed = Random(f"{self.seed}:{number}").randrange(2**32)
        with warnings.catch_warnings():  # multivariate and constant_liar are experimental in optuna 3.x
            warnings.simplefilter("ignore", self._optuna.exceptions.ExperimentalWarning)
            # optuna >= 5 reads each trial's set_constraint values itself; older ones ask a constraints_func.
            extra = {"constraints_func": functools.partial(_constraint_values, len(self.constraints))} \
                if self.constraints and not _has_set_constraint(self._optuna) else {}
            return self._optuna.samplers.TPESampler(n_startup_trials=self._startup, seed=seed, multivariate=True,
                                                    group=self.space.conditional, constant_liar=self._parallel,
                                                    **extra)

    def _value(self, result: TrialResult) -> float | list[float] | None:
        """What optuna is told of a result: the ranked metric, or every objective's value; None if unmeasured."""
        names = [o.name for o in self.objectives] or [self.metric]
        values = [result.metrics.get(name) for name in names]
        if any(v is None or not math.isfinite(v) for v in values):
            return None
        return values if self.objectives else values[0]

    def _constrain(self, number: int, result: TrialResult) -> None:
        """The result's constraint values (<= 0: kept), for the sampler's constraints_func."""
        if not self.constraints:
            return
        values = [_violation(c, result.metrics) for c in self.constraints]
        trial_id = self._store.get_trial_id_from_study_id_trial_number(
            self._store.get_study_id_from_name(STUDY_NAME), number)
        self._store.set_trial_user_attr(trial_id, CONSTRAINTS_ATTR, values)
        if _has_set_constraint(self._optuna):
            asked = self._optuna.trial.Trial(self.study, trial_id)
            for constraint, value in zip(self.constraints, values):
                asked.set_constraint(str(constraint), value)

    def _tell(self, number: int, result: TrialResult) -> None:
        state = self._optuna.trial.TrialState
        value = self._value(result)
        if result.status is TrialStatus.PRUNED:
            # optuna keeps its last reported value; its multi-objective TPE cannot rank pruned trials
            # (one direction), so with several objectives a pruned trial is told as failed.
            self.study.tell(number, state=state.FAIL if self.objectives else state.PRUNED)
        elif result.status is TrialStatus.SUCCESS and value is not None:
            self._constrain(number, result)
            self.study.tell(number, value)
        else:
            self.study.tell(number, state=state.FAIL)

    def _told_again(self, asked: Any, trial_id: str) -> None:
        """optuna proposed a point already tried: it learns the earlier value; nothing trains."""
        asked.set_user_attr("duplicate_of", self._numbers[trial_id])
        earlier = self.results.get(trial_id)
        value = None if earlier is None or earlier.status is not TrialStatus.SUCCESS else self._value(earlier)
        if value is not None:
            self._constrain(asked.number, earlier)
            self.study.tell(asked, value)
        else:  # still running, pruned or failed: nothing to learn from it again
            self.study.tell(asked, state=self._optuna.trial.TrialState.FAIL)

    # -- resuming --------------------------------------------------------------------
    def _resume(self, experiment_dir: Path) -> None:
        """Takes up an earlier run of this experiment from its journal and its run directories.

        A trial the journal still has running was out when the study stopped: told its
        result if its run directory holds one, else it runs again (a fresh attempt).
        """
        running = self._optuna.trial.TrialState.RUNNING
        recorded = _recorded(experiment_dir)
        for frozen in self.study.get_trials(deepcopy=False):
            if "index" not in frozen.user_attrs or "duplicate_of" in frozen.user_attrs:
                if frozen.state is running:  # stopped while being asked or told: never trained
                    self.study.tell(frozen.number, state=self._optuna.trial.TrialState.FAIL)
                continue
            trial = Trial(hparams_of(self.space, frozen.params), seed=self.seed, index=frozen.user_attrs["index"])
            self._numbers[trial.id] = frozen.number
            earlier = recorded.get(trial.id)
            if frozen.state is running:
                if earlier is None or earlier.status is TrialStatus.FAILURE:
                    self._redo.append(trial)
                    continue
                self._tell(frozen.number, earlier)
            if earlier is not None:
                self.results[trial.id] = earlier


CONSTRAINTS_ATTR = "constraints"  # a told trial's constraint values, <= 0 where one holds


def _has_set_constraint(optuna: Any) -> bool:
    return hasattr(optuna.trial.Trial, "set_constraint")


def _constraint_values(count: int, frozen: Any) -> Sequence[float]:
    """optuna's constraints_func: what _constrain recorded (a trial told without, a pruned one: feasible)."""
    return frozen.user_attrs.get(CONSTRAINTS_ATTR, [0.0] * count)


def _violation(constraint: Any, metrics: Mapping[str, float]) -> float:
    """How far a result breaks a core.objectives.Constraint: <= 0 where it holds (the reason
    itself is core.objectives'); 1.0 where its metric is not measured."""
    value = metrics.get(constraint.name)
    if value is None or not math.isfinite(value):
        return 1.0
    if constraint.broken_by(metrics) is None:
        return min(0.0, -abs(constraint.bound - value))
    return max(abs(value - constraint.bound), 1e-12)


def _recorded(experiment_dir: Path) -> dict[str, TrialResult]:
    """Each trial's recorded result: its successful or pruned attempt if any, else its latest."""
    found: dict[str, TrialResult] = {}
    for attempt in rundirs.scan(experiment_dir):
        result = attempt.result  # None: cut off, or a closed cut-off attempt that knows only its id
        if result is None or not result.status.is_finished():
            continue
        earlier = found.get(result.trial.id)
        if earlier is None or earlier.status is TrialStatus.FAILURE:
            found[result.trial.id] = result
    return found
