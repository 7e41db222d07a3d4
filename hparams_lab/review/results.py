"""Review's rows in Python: ``hparams_lab.review.load(LOGDIR)``.

The rows ``review --format json`` prints, as objects, ranked as review ranks them, for
hparams_lab's logs and any other writer's; ``to_pandas()`` / ``to_polars()`` (when those
are installed; neither is a dependency) give one column per hparam and per metric, with
each per-epoch metric's best value and step beside it: the columns of ``--format csv``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any


@dataclass(frozen=True)
class Run:
    """One session, as ``review --format json`` prints it."""

    experiment: str
    run: str
    trial_id: str | None
    status: str
    hparams: dict[str, Any]
    metrics: dict[str, float]  # each scalar's last value (what TensorBoard shows)
    best: dict[str, dict[str, float]]  # per-epoch scalars: {"value": best, "step": its step}


@dataclass(frozen=True)
class Results(Sequence):
    """Every run, best first by ``ranked_by``; a sequence of ``Run``."""

    runs: tuple[Run, ...]
    ranked_by: str | None  # None: nothing to rank by (the runs logged no scalars)
    higher_is_better: bool | None
    warnings: tuple[str, ...] = ()  # what the reader skipped and why
    _records: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    def __getitem__(self, index):
        return self.runs[index]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per run: the columns of ``review --format csv``, values unformatted."""
        return [dict(record) for record in self._records]

    def to_pandas(self) -> Any:
        try:
            import pandas
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        return pandas.DataFrame.from_records(self.to_records(), columns=self._columns())

    def to_polars(self) -> Any:
        try:
            import polars
        except ImportError:
            raise ImportError("to_polars() needs polars: pip install polars") from None
        return polars.DataFrame(self.to_records(), schema=self._columns(), strict=False, infer_schema_length=None)

    def _columns(self) -> list[str]:
        return list(self._records[0]) if self._records else []


def load(logdir, *, sort: str | None = None, where: Sequence[str] = (), status: Sequence[str] = (),
         maximize: Sequence[str] = (), minimize: Sequence[str] = ()) -> Results:
    """The runs under ``logdir`` as review reads, filters and ranks them (its options by name)."""
    from hparams_lab.review import query, reader, views

    logs = reader.load(logdir)
    maximizes = partial(reader.maximizes, maximize=tuple(maximize), minimize=tuple(minimize),
                        recorded=logs.directions)
    ranking = query.ranking(logs, sort, maximizes)
    rows = query.select(logs, where, status, ranking)
    runs = tuple(Run(**{**entry, "status": str(entry["status"])})
                 for entry in views.leaderboard_json(rows, logs, maximizes))
    table = views.leaderboard_table(rows, logs, ranking, maximizes, complete=True)
    records = tuple({header: (str(cell) if header == "status" else cell) for header, cell in zip(table.headers, row)}
                    for row in table.rows)
    return Results(runs, None if ranking is None else ranking.key, None if ranking is None else ranking.maximize,
                   tuple(logs.warnings), records)
