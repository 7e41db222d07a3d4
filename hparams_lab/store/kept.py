"""The models a study keeps (``--keep-best K``): at most the K best trials' files on disk.

Each trial's trainer saves its model into its run directory (``model.keras``, and
``model.json`` saying which epoch's weights it holds and what they scored on the
validation data; ``training.saving``). ``Keeper`` hears of every result as the study
goes and deletes the files of each trial that is not among the K best so far, so disk
use is bounded by K models (plus those of the trials running at that moment), whatever
the number of trials. A worker writes the files into the shared logdir; the study's
own process deletes them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from hparams_lab.core.metrics import higher_is_better, ranked, run_metric
from hparams_lab.core.objectives import Constraint, infeasible
from hparams_lab.core.trial import TrialResult, TrialStatus
from hparams_lab.store.jsonfile import read_json_object, write_json_atomic
from hparams_lab.store.rundirs import scan

MODEL_FILE = "model.keras"
MODEL_INFO = "model.json"  # which epoch's weights, their validation metrics
# In the experiment directory once K models are kept: the K-th best value, which a trial
# must beat for its model to be worth writing at all (training.saving.worth_keeping).
BAR = ".kept-bar.json"


def has_model(run_dir: Path | None) -> bool:
    return run_dir is not None and (run_dir / MODEL_FILE).is_file()


def delete_model(run_dir: Path) -> None:
    for name in (MODEL_FILE, MODEL_INFO):
        (run_dir / name).unlink(missing_ok=True)


class Keeper:
    """Keeps the model files of the K best trials of one experiment, by ``metric``.

    A group aggregate (``mean_best_val_accuracy``) is known only once the study ends, so
    members are kept by their own metric. A hyperband configuration between rungs
    (RUNNING) ranks by its metrics so far; a failed or pruned trial keeps nothing.
    """

    def __init__(self, experiment_dir: Path, k: int, metric: str, directions: Mapping[str, str] | None = None,
                 constraints: Sequence[Constraint] = ()):
        self.bar = experiment_dir / BAR
        self.constraints = tuple(constraints)  # a trial breaking one (core.objectives) is never kept
        self.k = k
        self.metric = run_metric(metric)
        self.directions = dict(directions or {})
        self.kept: dict[Path, TrialResult] = {}
        for attempt in scan(experiment_dir):  # what an earlier run of this experiment kept
            if has_model(attempt.run_dir) and attempt.record is not None:
                try:
                    result = TrialResult.from_json(attempt.record)
                except (KeyError, TypeError, ValueError):
                    delete_model(attempt.run_dir)
                    continue
                self.kept[attempt.run_dir] = dataclasses.replace(result, run_dir=attempt.run_dir)
        self._trim()

    def add(self, result: TrialResult) -> None:
        """Hears of a finished trial (or segment): its file stays only while it is among the K best."""
        if has_model(result.run_dir):
            self.kept[result.run_dir] = result
            self._trim()

    def settle(self, results: Iterable[TrialResult]) -> None:
        """At the study's end: the final results (hyperband closes a rung's losers itself)."""
        final = {r.run_dir: r for r in results if r.run_dir in self.kept}
        self.kept.update(final)
        self._trim()

    def _trim(self) -> None:
        candidates = [dataclasses.replace(r, status=TrialStatus.SUCCESS) if r.status is TrialStatus.RUNNING else r
                      for r in self.kept.values() if infeasible(r.metrics, self.constraints) is None]
        best = [r for r in ranked(candidates, self.metric, self.directions)
                if r.status is TrialStatus.SUCCESS and r.metrics.get(self.metric) is not None][:self.k]
        keep = {r.run_dir for r in best}
        for run_dir in [d for d in self.kept if d not in keep]:
            delete_model(run_dir)
            del self.kept[run_dir]
        if len(best) == self.k:
            write_json_atomic(self.bar, {"metric": self.metric, "value": best[-1].metrics[self.metric],
                                         "maximize": higher_is_better(self.metric, self.directions)})
        else:
            self.bar.unlink(missing_ok=True)


def bar_of(experiment_dir: Path) -> tuple[str, float, bool] | None:
    """(metric, the K-th best value, higher is better) while K models are kept, else None."""
    try:
        bar = read_json_object(experiment_dir / BAR)
        metric, value, maximize = bar["metric"], float(bar["value"]), bar["maximize"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (metric, value, maximize) if isinstance(metric, str) and isinstance(maximize, bool) else None
