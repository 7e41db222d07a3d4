"""Write TensorBoard HParams logs for tests, with tensorboard's pure-Python
pieces and hparams_lab's own TF-free event files: the proto builders of
`tensorboard.plugins.hparams.summary_v2` and `tensorboard.plugins.scalar.summary_v2`,
`hparams_lab.tb.eventfile.EventFile` and `hparams_lab.tb.summaries.session_end_summary`
(tensorboard's `session_end_pb` imports TensorFlow at module level).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.plugins.scalar.summary_v2 import scalar_pb

from hparams_lab.tb import summaries as writer
from hparams_lab.tb.eventfile import EventFile
from hparams_lab.core.trial import TrialStatus


def write_events(directory, summaries: list[tuple[int, summary_pb2.Summary]]) -> Path:
    """Write one event file holding `(step, summary)` records into `directory`."""
    events = EventFile(directory)
    for step, summary in summaries:
        events.write(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    events.close()
    return events.path


def session_end_summary(status: str) -> summary_pb2.Summary:
    """The record of `hparams.summary.session_end_pb`, without TensorFlow."""
    return writer.session_end_summary(TrialStatus(status.removeprefix("STATUS_")))


def write_config(directory, hparams: list[hp.HParam], metrics: list[hp.Metric]) -> Path:
    """The experiment-level hparams_config record, alone in `directory`."""
    return write_events(directory, [(0, hp.hparams_config_pb(hparams=hparams, metrics=metrics))])


@dataclass(frozen=True)
class Run:
    """One trial's run dir: session start, scalars, session end.

    root: scalars at the run root, e.g. {"best_val_accuracy": 0.9}.
    epochs: per sub-run ("train", "validation") and tag, one value per epoch.
    status: session_end status name, or None for no session_end record.
    """

    name: str
    hparams: dict
    group: str | None = None
    root: dict[str, float] = field(default_factory=dict)
    epochs: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    status: str | None = "STATUS_SUCCESS"

    def last_values(self) -> dict[tuple[str, str], float]:
        """(group, tag) -> the value TensorBoard should show (the last one)."""
        values = {("", tag): v for tag, v in self.root.items()}
        for sub, tags in self.epochs.items():
            values.update({(sub, tag): series[-1] for tag, series in tags.items()})
        return values


def write_run(experiment_dir, run: Run) -> Path:
    run_dir = Path(experiment_dir) / run.name
    n_epochs = max((len(s) for tags in run.epochs.values() for s in tags.values()), default=1)
    records = [(0, hp.hparams_pb(run.hparams, trial_id=run.group))]
    records += [(n_epochs - 1, scalar_pb(tag, value)) for tag, value in run.root.items()]
    if run.status is not None:
        records.append((n_epochs - 1, session_end_summary(run.status)))
    write_events(run_dir, records)
    for sub, tags in run.epochs.items():
        write_events(run_dir / sub, [
            (epoch, scalar_pb(tag, value))
            for tag, series in tags.items()
            for epoch, value in enumerate(series)
        ])
    return run_dir
