"""TFRecord framing, the format of event files: a record is its uint64 length, the masked
CRC-32C of those 8 bytes, the data and the data's masked CRC-32C, all little-endian.

The checksum here is the table-driven pure-Python reference; review.tfrecord checks many
records at once in numpy on top of it. ``RecordWriter`` is what tensorboard's is, written
here because importing tensorboard's loads its TensorFlow stub and tensorboard.summary
(~0.2 s of every study's and worker's start).
"""

import struct

POLYNOMIAL = 0x82F63B78  # CRC-32C (Castagnoli), reflected
MASK_DELTA = 0xA282EAD8


def _make_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (POLYNOMIAL if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


CRC_TABLE = _make_table()


def crc32c(data):
    """CRC-32C of bytes, table-driven pure Python (the reference implementation)."""
    crc = 0xFFFFFFFF
    table = CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc):
    """TFRecord's masking: rotate right by 15 bits and add a constant."""
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data):
    return mask(crc32c(data))


_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


class RecordWriter:
    """Records framed onto a binary file object, as tensorboard's RecordWriter frames them."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        header = _LENGTH.pack(len(data))
        self._file.write(header + _CRC.pack(masked_crc32c(header)) + data + _CRC.pack(masked_crc32c(data)))

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()
