"""Read TFRecord files (TensorBoard event files) without TensorFlow.

A record on disk is: uint64 length, uint32 masked CRC32C of those 8 bytes,
`length` bytes of data, uint32 masked CRC32C of the data; all little-endian.

Files are framed one by one, then the checksums of many files are verified
in one numpy batch: a pure-Python CRC32C runs at about 13 MB/s, which alone
would break review's one-second budget on a thousand runs (BENCHMARKS.md).
Data checksums are verified for records up to 64 KiB: every scalar and
hparams record is far smaller, while the large ones (images, audio, graphs)
are never read by review and would cost seconds in pure Python. Length
checksums are always verified, while framing: a file is read a chunk at a
time and abandoned at its first bad length, so a zero-filled or sparse file
that claims gigabytes costs one chunk. Only regular files are read, opened
without blocking; records over 64 MiB (never scalars) are skipped unread.

What a reader meets in archived logs, and what we do:
- a last record cut short (a writer still running, or killed): the whole
  records before it are read, silently;
- a record whose length checksum fails (garbage, overwritten bytes): nothing
  after it can be framed, so the file is read up to it, with a warning;
- a record whose data checksum fails but whose length is sound: that record
  is skipped and the rest of the file read, with a warning.
"""

import os
import stat
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
_MAX_RECORD = 64 * 1024 * 1024  # larger records are skipped unread (never scalars: graphs, images)
_CHUNK = 1024 * 1024  # files are read this much at a time, framing as they come
_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


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
    stop_note: str | None = None  # damage seen while framing: a bad length
    unread: str | None = None  # why the file (or its rest) could not be read
    too_large: int = 0  # records over _MAX_RECORD, skipped without reading them


def read_record_files(paths):
    """RecordFile for each path, in the order given, checksums verified."""
    files = []
    for batch in _batches_by_size(paths):
        files += _read_batch(batch)
    return files


def _batches_by_size(paths):
    batch, size = [], 0
    for path in paths:
        try:
            # A sparse or zero-filled file may claim gigabytes it will never be read for:
            # count at most one batch's worth of it.
            file_size = min(os.path.getsize(path), _BATCH_BYTES)
        except OSError:
            file_size = 0
        if batch and size + file_size > _BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += file_size
    if batch:
        yield batch


def _read_batch(paths):
    import numpy as np  # here, not at module level: `review --help` should stay quick

    buffers, framings, base = [], [], 0
    for path in paths:
        buffer, framing = _read_framed(path, base)
        buffers.append(buffer)
        framings.append(framing)
        base += len(buffer)
    everything = np.frombuffer(b"".join(buffers) or b"\0", dtype=np.uint8)
    offsets = np.array([o for f in framings for o in f.offsets], dtype=np.int64)
    lengths = np.array([len(r) for f in framings for r in f.records], dtype=np.int64)
    checked = lengths <= _MAX_CHECKED_RECORD
    data_sound = np.ones(len(lengths), dtype=bool)
    data_sound[checked] = _checks_pass(everything, offsets[checked] + 12, lengths[checked])
    data_sound = data_sound.tolist()
    files, start = [], 0
    for framing in framings:
        stop = start + len(framing.records)
        files.append(_verified(framing, data_sound[start:stop]))
        start = stop
    return files


def _read_framed(path, base):
    """(the bytes of the records framed, their framing) for one file, read a chunk at a time.

    Length checksums are verified while framing, so a zero-filled or sparse file is
    abandoned at its first bad length after one chunk, however large it claims to be.
    Only a regular file is read: a FIFO, socket or device met here (a race with the
    directory walk) is opened without blocking and left unread.
    """
    framing = _Framing(str(path), [], [])
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except OSError as error:
        framing.unread = f"not readable ({error.strerror or error.__class__.__name__})"
        return b"", framing
    with open(fd, "rb", buffering=0) as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            framing.unread = "not a regular file"
            return b"", framing
        size, kept, pieces, rest, at, want = info.st_size, 0, [], b"", 0, _CHUNK
        try:
            while True:  # rest: the bytes read but not framed yet, from file offset `at`
                chunk = file.read(want)
                if not chunk:
                    break
                buffer = rest + chunk if rest else chunk
                position, outcome = _frame(buffer, framing, base + kept, size - at, at)
                if position:
                    pieces.append(buffer[:position])
                    kept += position
                at += position
                rest, want = buffer[position:], _CHUNK
                if outcome is _STOP:
                    break
                if outcome is not _MORE:  # a record too large to be read: skip past it
                    framing.too_large += 1
                    at += outcome
                    file.seek(at)
                    rest = b""
                elif len(rest) >= 12:  # read the rest of the pending record at once
                    want = max(_CHUNK, 16 + _LENGTH.unpack_from(rest)[0] - len(rest))
        except OSError as error:
            framing.unread = f"read failed ({error.strerror or error.__class__.__name__})"
    return b"".join(pieces), framing


def frame_records(path, buffer, base=0):
    """Split a whole file's bytes into records by their lengths, each length's checksum
    verified; stop at a bad length or a cut-short end."""
    framing = _Framing(str(path), [], [])
    _frame(buffer, framing, base, len(buffer), 0)
    return framing


_STOP, _MORE = "stop", "more"


def _frame(buffer, framing, base, size, file_at):
    """Frame the records of buffer: the file's bytes from offset file_at, size of them left
    in the file, buffer's first byte at base in the buffer of all files read together.
    Return (where framing stopped in buffer, then _STOP, _MORE or, for a record too large
    to read, its whole length: header and checksums included)."""
    unpack_length, unpack_crc, have, position = _LENGTH.unpack_from, _CRC.unpack_from, len(buffer), 0
    while have - position >= 12:
        (length,) = unpack_length(buffer, position)
        if _length_crc(length) != unpack_crc(buffer, position + 8)[0]:
            framing.stop_note = f"bad length checksum at byte {file_at + position}"
            return position, _STOP
        end = position + 12 + length + 4
        if end > size:
            return position, _STOP  # a sound length running past the end: a record still being written
        if length > _MAX_RECORD:
            return position, 12 + length + 4
        if end > have:
            return position, _MORE
        framing.offsets.append(base + position)
        framing.records.append(buffer[position + 12:end - 4])
        position = end
    return position, (_STOP if have >= size else _MORE)


_LENGTH_CRCS = {}


def _length_crc(length):
    """The masked CRC32C of a record's 8-byte length; cached, as event files repeat lengths."""
    crc = _LENGTH_CRCS.get(length)
    if crc is None:
        if len(_LENGTH_CRCS) > 100_000:
            _LENGTH_CRCS.clear()
        crc = _LENGTH_CRCS[length] = masked_crc32c(_LENGTH.pack(length))
    return crc


def _verified(framing, data_sound):
    records, skipped = [], 0
    for index, record in enumerate(framing.records):
        if data_sound[index]:
            records.append(record)
        else:
            skipped += 1
    if framing.unread and not framing.records and not framing.stop_note:
        return RecordFile(framing.path, [], f"{framing.path}: skipped: {framing.unread}")
    notes = [f"{skipped} record(s) with a bad data checksum skipped"] if skipped else []
    if framing.too_large:
        notes.append(f"{framing.too_large} record(s) over {_MAX_RECORD >> 20} MiB skipped unread")
    if framing.stop_note:
        notes.append(f"{framing.stop_note}; read the {len(records)} record(s) before it")
    if framing.unread:
        notes.append(framing.unread)
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
