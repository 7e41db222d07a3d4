"""TensorBoard event files, written record by record without TensorFlow.

tensorboard's own EventFileWriter reaches for real TensorFlow (via
tensorboard.compat.tf) when it is installed, which costs seconds per process;
the TFRecord framing is simple enough to write here:
length (uint64 LE), masked CRC32C of length, data, masked CRC32C of data.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial
        table.append(crc)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: header, its CRC, the payload, its CRC."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


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
        self._file = open(self.path, "xb")
        self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, event: event_pb2.Event) -> None:
        self._file.write(frame(event.SerializeToString()))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
