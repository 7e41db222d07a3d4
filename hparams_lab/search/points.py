"""Points of one's own (``--enqueue``): configurations that run first, then the strategy goes on.

As optuna's ``enqueue_trial`` and Ray Tune's ``points_to_evaluate``. A file holds a
list of full or partial configurations: JSON, a list of objects; TOML, an array of
``[[trial]]`` tables. An hparam a point leaves out takes its domain's middle (as
``--base`` does for one-at-a-time); each point is checked against the space, so a name
it lacks, a value outside a domain or a value for an inactive hparam is one error line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from hparams_lab.core.errors import UserError
from hparams_lab.core.files import read_json_or_toml
from hparams_lab.core.space import Space, SpaceError
from hparams_lab.core.trial import Trial


def read_points(source: str | Path | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The configurations of a .json / .toml file, or of a list given in Python."""
    if isinstance(source, (str, Path)):
        return _read_file(Path(source))
    if not isinstance(source, Sequence) or not all(isinstance(p, Mapping) for p in source):
        raise UserError(f"enqueue: expected a list of hparam = value tables, got {source!r}")
    return [dict(p) for p in source]


def _read_file(path: Path) -> list[dict[str, Any]]:
    where = f"--enqueue file {str(path)!r}"
    if path.suffix.lower() not in (".json", ".toml"):
        raise UserError(f"{where}: use a .json or .toml file")
    data = read_json_or_toml(path, "--enqueue file")
    points = data.get("trial") if isinstance(data, dict) else data
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        form = "a list of objects" if path.suffix.lower() == ".json" else "[[trial]] tables of name = value"
        raise UserError(f"{where}: expected {form}")
    return points


def complete_points(space: Space, points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each point made whole and checked; duplicates (after completion) kept once."""
    out: dict[tuple, dict[str, Any]] = {}
    for i, point in enumerate(points, start=1):
        try:
            whole = space.complete(point)
        except SpaceError as err:
            raise UserError(f"enqueued point {i}: {err}") from None
        out.setdefault(tuple(sorted(whole.items())), whole)
    return list(out.values())


def first(points: Sequence[Mapping[str, Any]], planned: Sequence[Trial], *, seed: int,
          count: int | None = None) -> list[Trial]:
    """The enqueued points, then the planned trials not among them, ``count`` in all if given."""
    mine = [Trial(dict(p), seed=seed) for p in points]
    ids = {t.id for t in mine}
    trials = mine + [t for t in planned if t.id not in ids]
    if count is not None:
        trials = trials[:max(count, len(mine))]
    return [Trial(t.hparams, seed=t.seed, repeat=t.repeat, fold=t.fold, index=i) for i, t in enumerate(trials)]
