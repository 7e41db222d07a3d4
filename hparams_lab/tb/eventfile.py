"""TensorBoard event files, written without TensorFlow.

tensorboard's EventFileWriter reaches for real TensorFlow (tf.io.gfile, via
tensorboard.compat.tf) whenever it is installed, which costs seconds; the TFRecord
framing is ours (tb.records), over a plain file.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2

from hparams_lab.tb.records import RecordWriter

_file_numbers = itertools.count()


class EventFile:
    """An append-only events.out.tfevents.* file in ``directory`` (created if needed)."""

    def __init__(self, directory: str | os.PathLike, suffix: str = "") -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
            f"{os.getpid()}.{next(_file_numbers)}{suffix}"
        )
        self.path = directory / name
        self._records = RecordWriter(open(self.path, "xb"))
        self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        self._records.close()
