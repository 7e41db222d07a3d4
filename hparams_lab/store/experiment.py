"""experiment.json: what an experiment was asked to do, recorded before its first trial."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from hparams_lab.core.errors import UserError
from hparams_lab.core.metrics import Metric
from hparams_lab.core.space import Space
from hparams_lab.store.jsonfile import read_json_object, write_json_atomic
from hparams_lab.store.lock import LOCK_NAME, LOGDIR_LOCK_NAME, logdir_lock
from hparams_lab.tb.summaries import CONFIG_SUFFIX, union_config
from hparams_lab.tb.writer import write_union_config

FILENAME = "experiment.json"
_RESERVED = frozenset({FILENAME, "trial.json", LOCK_NAME, LOGDIR_LOCK_NAME})
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]*$")


def check_experiment_name(name: str) -> None:
    """One directory name: no path separators, no '..', nothing hidden, no name of a file hparams_lab writes."""
    if not _NAME.match(name) or ".." in name:
        raise UserError(
            f"experiment name {name!r} is not allowed: use letters, digits and _ . + = - "
            "(no path separators, no '..', not starting with '.')"
        )
    if name in _RESERVED or "tfevents" in name or name.endswith(CONFIG_SUFFIX):
        raise UserError(f"experiment name {name!r} is not allowed: it is the name of a file hparams_lab "
                        "or TensorBoard keeps in a logdir")


def create_experiment_dir(path: Path) -> None:
    """Creates (or keeps, to resume) an experiment directory; the OS's refusal is the user's error.

    The logdir checks before it use access(), which cannot see every refusal: root
    passes access() under /proc or /sys, and read-only mounts refuse anyway.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"logdir {str(path.parent)!r} is not writable: cannot create {str(path)!r} ({err.strerror})"
        ) from None


@dataclass(frozen=True)
class ExperimentRecord:
    name: str
    space: dict
    strategy: str
    seed: int
    trials: int
    dataset: str
    model: str
    metric: str
    metrics: list[dict]
    settings: dict = field(default_factory=dict)  # epochs, batch size, patience, task, loss, ...
    data: dict = field(default_factory=dict)  # where the data came from (training.data's source record)
    classes: list | None = None  # class names in label order, when the labels were strings
    versions: dict = field(default_factory=dict)
    command: str = ""
    created: str = ""
    stopped: dict | None = None  # when a budget (--timeout, ...) ended the last run: by what, when, the message
    # Several --metric or a --constraint (core.objectives): ["best_val_accuracy:max", "params:min"],
    # ["params<=50000"]; absent from a single-metric study's file (and from older files).
    objectives: list[str] | None = None
    constraints: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("objectives", "constraints"):
            if out[key] is None:
                del out[key]
        return out

    @property
    def declared_metrics(self) -> list[Metric]:
        return [Metric(m["tag"], m.get("group", "")) for m in self.metrics]

    def write(self, experiment_dir: str | os.PathLike) -> None:
        write_json_atomic(Path(experiment_dir) / FILENAME, self.to_json())

    @classmethod
    def read(cls, experiment_dir: str | os.PathLike) -> "ExperimentRecord":
        data = read_json_object(Path(experiment_dir) / FILENAME)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def find_experiments(logdir: str | os.PathLike) -> Iterator[tuple[Path, ExperimentRecord]]:
    """Experiments directly under a logdir; unreadable or foreign records are skipped."""
    for path in sorted(Path(logdir).glob(f"*/{FILENAME}")):
        try:
            record = ExperimentRecord.read(path.parent)
            Space.from_dict(record.space)
        except (OSError, ValueError, TypeError, KeyError):
            continue
        yield path.parent, record


def locate_experiment(source: str | os.PathLike, logdir: str | os.PathLike) -> Path:
    """An experiment named under ``logdir``, or at a path; UserError if neither has an experiment.json."""
    candidates = list(dict.fromkeys([Path(logdir) / source, Path(source)]))
    for candidate in candidates:
        if (candidate / FILENAME).is_file():
            return candidate
    where = " or ".join(repr(str(c)) for c in candidates)
    raise UserError(f"unknown experiment {str(source)!r}: no {FILENAME} in {where}")


def refresh_union_config(logdir: Path) -> None:
    """The logdir's one hparams config: the union of every experiment's space and metrics.

    Under the logdir-wide lock, read and written in one go: two studies starting together
    would otherwise each write a union without the other's columns, or leave two files.
    """
    with logdir_lock(logdir):
        write_union_config(logdir, union_config(
            (Space.from_dict(record.space), record.declared_metrics) for _, record in find_experiments(logdir)
        ))
