"""Read TFRecord files (TensorBoard event files) without TensorFlow.

A record on disk is: uint64 length, uint32 masked CRC32C of those 8 bytes,
`length` bytes of data, uint32 masked CRC32C of the data; all little-endian.

Files are framed one by one, then the checksums of many files are verified
in one numpy batch: a pure-Python CRC32C runs at about 13 MB/s, which alone
would break review's one-second budget on a thousand runs (BENCHMARKS.md).
Data checksums are verified for records up to 64 KiB: every scalar and
hparams record is far smaller, while the large ones (images, audio, graphs)
are never read by review and would cost seconds in pure Python. Length
checksums are always verified.

What a reader meets in archived logs, and what we do:
- a last record cut short (a writer still running, or killed): the whole
  records before it are read, silently;
- a record whose length checksum fails (garbage, overwritten bytes): nothing
  after it can be framed, so the file is read up to it, with a warning;
- a record whose data checksum fails but whose length is sound: that record
  is skipped and the rest of the file read, with a warning.
"""

import os
import struct
from dataclasses import dataclass

_POLYNOMIAL = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
# Below this many records of similar length, the numpy set-up costs more than it saves.
_MIN_BATCH = 64
_MAX_CHECKED_RECORD = 64 * 1024  # larger records: length checked, data not (see above)
_BATCH_BYTES = 64 * 1024 * 1024  # files read and checked together, to bound memory


def _make_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLYNOMIAL if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c(data):
    """CRC-32C of bytes, table-driven pure Python (the reference implementation)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc):
    """TFRecord's masking: rotate right by 15 bits and add a constant."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data):
    return mask(crc32c(data))


@dataclass(frozen=True)
class RecordFile:
    """The readable records of one file, and at most one warning about it."""

    path: str
    records: list
    warning: str | None = None


@dataclass
class _Framing:
    """Records of one file found by trusting their lengths; checksums not yet verified."""

    path: str
    offsets: list  # where each record starts in the buffer of all files
    records: list
    stop_note: str | None = None  # damage seen while framing: a bad length at the end


def read_record_files(paths):
    """RecordFile for each path, in the order given, checksums verified."""
    files = []
    for batch in _batches_by_size(paths):
        files += _read_batch(batch)
    return files


def _batches_by_size(paths):
    batch, size = [], 0
    for path in paths:
        file_size = os.path.getsize(path)
        if batch and size + file_size > _BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += file_size
    if batch:
        yield batch


def _read_batch(paths):
    import numpy as np  # here, not at module level: `review --help` should stay quick

    buffers = [_read_bytes(path) for path in paths]
    framings, base = [], 0
    for path, buffer in zip(paths, buffers):
        framings.append(frame_records(path, buffer, base))
        base += len(buffer)
    everything = np.frombuffer(b"".join(buffers), dtype=np.uint8)
    offsets = np.array([o for f in framings for o in f.offsets], dtype=np.int64)
    lengths = np.array([len(r) for f in framings for r in f.records], dtype=np.int64)
    header_sound = _checks_pass(everything, offsets, 8).tolist()
    checked = lengths <= _MAX_CHECKED_RECORD
    data_sound = np.ones(len(lengths), dtype=bool)
    data_sound[checked] = _checks_pass(everything, offsets[checked] + 12, lengths[checked])
    data_sound = data_sound.tolist()
    files, start = [], 0
    for framing in framings:
        stop = start + len(framing.records)
        files.append(_verified(framing, header_sound[start:stop], data_sound[start:stop]))
        start = stop
    return files


def _read_bytes(path):
    with open(path, "rb") as file:
        return file.read()


def frame_records(path, buffer, base=0):
    """Split a file's bytes into records by their lengths; stop at a cut-short end."""
    framing = _Framing(str(path), [], [])
    position, size = 0, len(buffer)
    unpack_length = _LENGTH.unpack_from
    while size - position >= 12:
        (length,) = unpack_length(buffer, position)
        end = position + 12 + length + 4
        if end > size:
            # A sound length running past the end is a record still being written.
            header = buffer[position:position + 12]
            if masked_crc32c(header[:8]) != _CRC.unpack(header[8:])[0]:
                framing.stop_note = f"bad length checksum at byte {position}"
            break
        framing.offsets.append(base + position)
        framing.records.append(buffer[position + 12:end - 4])
        position = end
    return framing


def _verified(framing, header_sound, data_sound):
    records, skipped, note = [], 0, framing.stop_note
    for index, record in enumerate(framing.records):
        if not header_sound[index]:
            # The length is not to be trusted, so neither is anything framed after it.
            note = f"bad length checksum at byte {framing.offsets[index] - framing.offsets[0]}"
            break
        if data_sound[index]:
            records.append(record)
        else:
            skipped += 1
    notes = [f"{skipped} record(s) with a bad data checksum skipped"] if skipped else []
    if note:
        notes.append(f"{note}; read the {len(records)} record(s) before it")
    warning = f"{framing.path}: corrupted: {'; '.join(notes)}" if notes else None
    return RecordFile(framing.path, records, warning)


def _checks_pass(everything, starts, lengths):
    """For each span, whether its masked CRC32C equals the 4 bytes stored right after it."""
    import numpy as np

    lengths = np.broadcast_to(lengths, starts.shape)
    stored_at = (starts + lengths)[:, None] + np.arange(4)
    stored = everything[stored_at].astype(np.uint32) << np.array([0, 8, 16, 24], np.uint32)
    crcs = _crc32c_spans(everything, starts, lengths)
    masked = ((crcs >> 15) | (crcs << 17)) + np.uint32(_MASK_DELTA)
    return masked == np.bitwise_or.reduce(stored, axis=1)


def crc32c_many(chunks):
    """CRC-32C of each byte string, computed in numpy lanes (see _crc32c_spans)."""
    import numpy as np

    lengths = np.array([len(chunk) for chunk in chunks], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    everything = np.frombuffer(b"".join(chunks) or b"\0", dtype=np.uint8)
    return _crc32c_spans(everything, starts, lengths).tolist()


def _crc32c_spans(everything, starts, lengths):
    """CRC-32C of everything[start:start + length] for each span, many spans at once.

    Spans of similar length run side by side, one numpy lane each, left-padded
    with zeros to one width. From a zero register leading zeros leave a CRC
    unchanged, and CRC is linear, so the standard start value's share depends
    only on the length and is added back per lane from a small table.
    """
    import numpy as np

    crcs = np.zeros(len(starts), dtype=np.uint32)
    if not len(starts):
        return crcs
    width_class = np.floor(np.log(lengths + 16.0) / np.log(1.25)).astype(np.int64)
    for klass in np.unique(width_class):
        lanes = np.flatnonzero(width_class == klass)
        if len(lanes) < _MIN_BATCH:
            for lane in lanes:
                span = everything[starts[lane]:starts[lane] + lengths[lane]].tobytes()
                crcs[lane] = crc32c(span)
        else:
            crcs[lanes] = _crc32c_lanes(everything, starts[lanes], lengths[lanes])
    return crcs


def _crc32c_lanes(everything, starts, lengths):
    import numpy as np

    width = int(lengths.max())
    table = np.array(_TABLE, dtype=np.uint32)
    register = np.zeros(len(starts), dtype=np.uint32)
    first = starts + lengths - width  # where each left-padded lane would begin
    for column in range(width):
        positions = first + column
        byte = np.where(positions >= starts, everything[np.maximum(positions, 0)], 0)
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register ^ np.array(_length_corrections(width), dtype=np.uint32)[lengths]


def _length_corrections(width):
    """For each length n <= width: the CRC-32C of n zero bytes, i.e. the start value's share."""
    corrections, register = [0], 0xFFFFFFFF
    for _ in range(width):
        register = _TABLE[register & 0xFF] ^ (register >> 8)
        corrections.append(register ^ 0xFFFFFFFF)
    return corrections
