"""The one place that writes event files: a run's sessions and scalars, and the logdir's root config."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2

from hparams_lab.tb.eventfile import EventFile
from hparams_lab.tb.summaries import CONFIG_SUFFIX, config_summary


class RunWriter:
    """Event files of one run directory and its group subdirectories (train/, validation/)."""

    def __init__(self, run_dir: str | os.PathLike, filename_suffix: str = "") -> None:
        self.run_dir = Path(run_dir)
        self._suffix = filename_suffix
        self._writers: dict[str, EventFile] = {}

    def write(self, summary: summary_pb2.Summary, step: int = 0, group: str = "") -> None:
        if group not in self._writers:
            self._writers[group] = EventFile(self.run_dir / group if group else self.run_dir, self._suffix)
        self._writers[group].write(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_root_config(logdir: str | os.PathLike, experiment: api_pb2.Experiment) -> Path:
    """Replaces the logdir's union config: the new file is complete before the others go
    (every other one, not only those seen before: callers hold store.lock.logdir_lock)."""
    logdir = Path(logdir)
    config = EventFile(logdir, CONFIG_SUFFIX)
    config.write(event_pb2.Event(wall_time=time.time(), summary=config_summary(experiment)))
    config.close()
    for path in logdir.glob(f"events.out.tfevents.*{CONFIG_SUFFIX}"):
        if path != config.path:
            path.unlink(missing_ok=True)
    return config.path
