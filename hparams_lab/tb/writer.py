"""The one place that writes event files: a run's sessions and scalars, and the logdir's union config."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2

from hparams_lab.tb.eventfile import EventFile
from hparams_lab.tb.summaries import CONFIG_RUN_PREFIX, CONFIG_SUFFIX, config_summary


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

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_union_config(logdir: str | os.PathLike, experiment: api_pb2.Experiment) -> Path:
    """Replaces the logdir's union config with one in a new hidden run directory.

    A new run, not a new file in the old one: TensorBoard keeps the first config it
    read for a run, but forgets a run whose directory is gone, so a TensorBoard left
    running picks up every new column at its next reload (both loaders, measured with
    2.21). The new config is complete before every other one goes (callers hold
    store.lock.logdir_lock), and so are configs earlier versions wrote at the root.
    """
    logdir = Path(logdir)
    config = EventFile(logdir / f"{CONFIG_RUN_PREFIX}{time.time_ns()}-{os.getpid()}", CONFIG_SUFFIX)
    config.write(event_pb2.Event(wall_time=time.time(), summary=config_summary(experiment)))
    config.close()
    for run in logdir.glob(f"{CONFIG_RUN_PREFIX}*"):
        if run != config.path.parent:
            _remove_config(run)
    _remove_config(logdir, keep_dir=True)
    return config.path


def _remove_config(directory: Path, keep_dir: bool = False) -> None:
    """Deletes our config files in directory, then the directory if nothing else is in it."""
    for path in directory.glob(f"events.out.tfevents.*{CONFIG_SUFFIX}"):
        path.unlink(missing_ok=True)
    if not keep_dir:
        try:
            directory.rmdir()
        except OSError:
            pass  # something that is not ours is in it: leave it
