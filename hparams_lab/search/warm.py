"""Earlier trials from any TensorBoard HParams logs, for warm starts (bayes, refine ``--from``).

An hparams_lab experiment (an ``experiment.json``) gives its recorded results; any other
logdir is read with ``review``'s reader, so a study can go on from a hand-written
TensorBoard HParams loop, KerasTuner's or tensorboardX's logs. Only trials whose hparams
are a point of the space (names, domains, the active ones exactly) and that have a
finite value of the metric count; the note says how many did and why the others did not.
Reading never imports TensorFlow and never runs anything the logs name.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hparams_lab.core.errors import UserError
from hparams_lab.core.space import Space
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus


@dataclass(frozen=True)
class Previous:
    results: list[TrialResult]  # SUCCESS results whose hparams fit the space, with a finite metric
    source: str  # the resolved path, for experiment.json
    note: str  # one line: how many were used, and why the others were not


def previous_results(source: str | os.PathLike, logdir: str | os.PathLike, space: Space, metric: str, *,
                     seed: int) -> Previous:
    path = _locate(source, logdir)
    found = _recorded(path) if (path / "experiment.json").is_file() else _logged(path, metric, seed)
    used, skipped = [], Counter()
    for result in found:
        why = _why_not(result, space, metric)
        if why is None:
            used.append(result)
        else:
            skipped[why] += 1
    others = "; ".join(f"{n} {why}" for why, n in skipped.most_common())
    note = (f"--from {str(path)!r}: {len(used)} of {len(found)} earlier trial(s) used"
            + (f"; not used: {others}" if others else ""))
    return Previous(used, str(path.resolve()), note)


def _locate(source, logdir) -> Path:
    for candidate in dict.fromkeys([Path(logdir) / source, Path(source)]):
        if candidate.is_dir():
            return candidate
    raise UserError(f"--from {str(source)!r}: no such directory (looked under --logdir and as a path)")


def _recorded(path: Path) -> list[TrialResult]:
    from hparams_lab.store import resume

    return list(resume.scan(path).done.values())


def _logged(path: Path, metric: str, seed: int) -> list[TrialResult]:
    from hparams_lab.review import reader

    try:
        logs = reader.load(str(path))
    except UserError as err:
        raise UserError(f"--from {str(path)!r}: {err}") from None
    if metric not in logs.metric_keys:
        known = ", ".join(logs.metric_keys[:12]) or "none"
        raise UserError(f"--from {str(path)!r}: its sessions log no {metric!r} (they log {known}); "
                        "name the one to use with --from-metric")
    results = []
    for row in logs.rows:
        # A hand-written loop often writes no session end: its status is UNKNOWN, its metric real.
        ok = row.status in (TrialStatus.SUCCESS, TrialStatus.UNKNOWN)
        value = row.metrics.get(metric)
        results.append(TrialResult(Trial(dict(row.hparams), seed=seed),
                                   TrialStatus.SUCCESS if ok else row.status,
                                   {} if value is None else {metric: value}))
    return results


def _why_not(result: TrialResult, space: Space, metric: str) -> str | None:
    if result.status is not TrialStatus.SUCCESS:
        return f"{result.status.value.lower()}"
    value = result.metrics.get(metric)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"without a value of {metric!r}"
    why = space.fits(result.trial.hparams)
    return None if why is None else f"not in the space ({why})"
