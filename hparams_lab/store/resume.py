"""Resuming an experiment: what is done, what failed, what was cut off, and where to go next.

A trial is done once one of its attempts has a SUCCESS trial.json. An attempt
directory without trial.json was cut off (killed mid-trial); on resume it is
closed as FAILURE, in TensorBoard and in a trial.json, so no session stays
open. Every retry gets a fresh attempt directory: <id>, then <id>.2, <id>.3 ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from hparams_lab.core.errors import UserError
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.store import rundirs
from hparams_lab.store.experiment import ExperimentRecord, create_experiment_dir
from hparams_lab.store.lock import LOCK_NAME, ExperimentLock
from hparams_lab.store.rundirs import trial_id_of

# What must match for a resume to continue the same study; the trial count may grow.
_MUST_MATCH = ("space", "strategy", "seed", "dataset", "data", "model", "metric", "objectives", "settings")


@dataclass
class Progress:
    done: dict[str, TrialResult] = field(default_factory=dict)  # trial id -> its SUCCESS
    pruned: dict[str, TrialResult] = field(default_factory=dict)  # trial id -> its PRUNED (bayes --pruner)
    failed: set[str] = field(default_factory=set)  # ids whose attempts all failed
    cut_off: list[Path] = field(default_factory=list)  # attempt dirs without trial.json


def differences(old: ExperimentRecord, new: ExperimentRecord) -> list[str]:
    out = []
    for name in _MUST_MATCH:
        before, after = getattr(old, name), getattr(new, name)
        if name in ("settings", "data"):  # name the one entry that changed, not the whole table
            # Only the entries the old record has: one that an older version didn't record
            # (the task, the loss) was not a choice then.
            keys = sorted(before)
            out += [f"{'data ' if name == 'data' else ''}{k} was {_short(before.get(k))}, now {_short(after.get(k))}"
                    for k in keys if before.get(k) != after.get(k)]
        elif before != after:
            out.append(f"{name} was {_short(before)}, now {_short(after)}")
    return out


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def check_resumable(old: ExperimentRecord, new: ExperimentRecord) -> None:
    diffs = differences(old, new)
    if diffs:
        raise UserError(
            f"experiment {old.name!r} was started with other settings ({'; '.join(diffs)}); "
            "use --overwrite to start it over, or another --experiment"
        )


def scan(experiment_dir: Path) -> Progress:
    progress = Progress()
    for attempt in rundirs.scan(experiment_dir):
        if attempt.record is None:
            progress.cut_off.append(attempt.run_dir)
            continue
        result = attempt.result
        if result is None:  # a closed cut-off attempt knows only its id
            progress.failed.add(str(attempt.record.get("id", trial_id_of(attempt.run_dir))))
        elif result.status is TrialStatus.SUCCESS:
            progress.done[result.trial.id] = result
        elif result.status is TrialStatus.PRUNED:
            progress.pruned[result.trial.id] = result
        else:
            progress.failed.add(result.trial.id)
    progress.failed -= set(progress.done) | set(progress.pruned)
    return progress


def describe(name: str, planned: Sequence[Trial], progress: Progress) -> str:
    ids = [t.id for t in planned]
    cut_ids = {trial_id_of(p) for p in progress.cut_off}
    done = sum(i in progress.done for i in ids)
    cut = sum(i in cut_ids and i not in progress.done for i in ids)
    failed = sum(i in progress.failed and i not in cut_ids for i in ids)
    fresh = len(ids) - done - failed - cut
    if done == len(ids):
        return f"experiment {name!r} is complete: all {len(ids)} trials succeeded; nothing to run"
    return (
        f"resuming experiment {name!r}: {done} of {len(ids)} trials done, {len(ids) - done} to run "
        f"({failed} failed before, {cut} cut off, {fresh} not started)"
    )


def read_record(experiment_dir: Path) -> ExperimentRecord:
    try:
        return ExperimentRecord.read(experiment_dir)
    except (OSError, ValueError, TypeError) as err:
        raise UserError(
            f"{str(experiment_dir)!r} exists but is not an hparams_lab experiment ({err}); "
            "use --overwrite or another --experiment"
        ) from None


@contextlib.contextmanager
def opened(experiment_dir: Path, record: ExperimentRecord, overwrite: bool) -> Iterator[None]:
    """Creates, resumes or starts over an experiment, holding its lock throughout.

    A resumed experiment must have been started with the same settings; ``overwrite``
    deletes its runs (only ever in a directory that holds an experiment.json).
    """
    resuming = experiment_dir.exists() and any(experiment_dir.iterdir()) and not overwrite
    if resuming:
        old = read_record(experiment_dir)
        check_resumable(old, record)
        record = dataclasses.replace(record, created=old.created)
    create_experiment_dir(experiment_dir)
    with ExperimentLock(experiment_dir):
        if overwrite:
            for path in experiment_dir.iterdir():
                if path.name != LOCK_NAME:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        record.write(experiment_dir)
        yield
