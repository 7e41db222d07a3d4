"""One writer per experiment: an OS file lock, released by the OS when the holder dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from hparams_lab.core.errors import UserError

LOCK_NAME = ".lock"
LOGDIR_LOCK_NAME = ".hparams_lab-config.lock"  # at the logdir root: serialises union-config rebuilds


def check_unlocked(experiment_dir: Path) -> None:
    """Fails fast, before any heavy work, when another process holds the experiment."""
    if (experiment_dir / LOCK_NAME).exists():
        with ExperimentLock(experiment_dir):
            pass


@contextlib.contextmanager
def logdir_lock(logdir: Path) -> Iterator[None]:
    """The logdir-wide lock, waited for: held only while the union config is rebuilt."""
    with open(Path(logdir) / LOGDIR_LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ExperimentLock:
    """Held for a whole study; a second runner on the same experiment is refused at once."""

    def __init__(self, experiment_dir: Path) -> None:
        self.path = experiment_dir / LOCK_NAME
        self._file = None

    def __enter__(self) -> "ExperimentLock":
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(
                f"experiment {self.path.parent.name!r} is being run by another process (pid {holder}); "
                "wait for it to finish or choose another --experiment"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
