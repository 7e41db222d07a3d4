"""Read TFRecord files (TensorBoard event files) without TensorFlow.

A record on disk is: uint64 length, uint32 masked CRC32C of those 8 bytes,
`length` bytes of data, uint32 masked CRC32C of the data; all little-endian.

Files are framed one by one, then the checksums of many files are verified
in one numpy batch: a pure-Python CRC32C runs at about 13 MB/s, which alone
would break review's budget on a thousand runs (BENCHMARKS.md). A batch
keeps the records where they lie in the joined bytes of its files (a start
and a length each), so that review.events can decode them in numpy too.
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

from hparams_lab.tb.records import CRC_TABLE as _TABLE
from hparams_lab.tb.records import MASK_DELTA as _MASK_DELTA
from hparams_lab.tb.records import crc32c, masked_crc32c

_LENGTH = struct.Struct("<Q")
_HEADER = struct.Struct("<QI")  # a record's length and the masked CRC32C of those 8 bytes
# Below this many records of similar length, the numpy set-up costs more than it saves.
_MIN_BATCH = 64
_MAX_CHECKED_RECORD = 64 * 1024  # larger records: length checked, data not (see above)
_BATCH_BYTES = 64 * 1024 * 1024  # files read and checked together, to bound memory
_MAX_RECORD = 64 * 1024 * 1024  # larger records are skipped unread (never scalars: graphs, images)
_CHUNK = 1024 * 1024  # files are read this much at a time, framing as they come
_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)




@dataclass(frozen=True)
class RecordFile:
    """The readable records of one file, and at most one warning about it."""

    path: str
    records: list
    warning: str | None = None


class FileRecords:
    """One file of a Batch: its sound records are the batch's records first .. first + count - 1."""

    __slots__ = ("count", "first", "path", "stat", "warning")

    def __init__(self, path, first, count, warning=None, stat=None):
        self.path, self.first, self.count, self.warning = path, first, count, warning
        self.stat = stat  # (st_size, st_mtime_ns, st_ino, st_dev) of the file as opened, if it was


class Batch:
    """Files read together: their bytes joined, and where each record whose checksums hold lies.

    starts/lengths (numpy int64) locate the data of each sound record in `data`, files in the
    order given and records in file order; `array` is `data` as numpy uint8.
    """

    __slots__ = ("array", "data", "files", "lengths", "starts")

    def __init__(self, data, array, starts, lengths, files):
        self.data, self.array, self.starts, self.lengths, self.files = data, array, starts, lengths, files

    def record(self, index):
        start = int(self.starts[index])
        return self.data[start:start + int(self.lengths[index])]


class _Framing:
    """Records of one file found by trusting their lengths; checksums not yet verified."""

    __slots__ = ("base", "have", "lengths", "offsets", "path", "size", "stat", "stop_note", "too_large", "unread",
                 "whole")

    def __init__(self, path):
        self.path = path
        self.offsets, self.lengths = [], []  # where each record starts in the buffer of all files, its length
        self.stop_note = None  # damage seen while framing: a bad length
        self.unread = None  # why the file (or its rest) could not be read
        self.too_large = 0  # records over _MAX_RECORD, skipped without reading them
        self.stat = None
        self.whole = False  # read whole and not framed yet: its bytes are the buffer's have bytes from base
        self.base = self.have = self.size = 0


def read_record_files(paths):
    """RecordFile for each path, in the order given, checksums verified."""
    files = []
    for batch in read_batches(paths):
        files += [RecordFile(file.path, [batch.record(index) for index in range(file.first, file.first + file.count)],
                             file.warning) for file in batch.files]
    return files


def read_batches(paths):
    """A Batch per group of files of at most about _BATCH_BYTES, in the order given."""
    pending, size, base = [], 0, 0
    for path in paths:
        buffer, framing = _read_file(path, base)
        # A sparse or zero-filled file may claim gigabytes it will never be read for:
        # count at most one batch's worth of it.
        file_size = min(framing.stat[0], _BATCH_BYTES) if framing.stat else 0
        if pending and size + file_size > _BATCH_BYTES:
            yield _read_batch(pending)
            framing.base -= base
            framing.offsets = [offset - base for offset in framing.offsets]
            pending, size, base = [], 0, 0
        pending.append((buffer, framing))
        size += file_size
        base += len(buffer)
    if pending:
        yield _read_batch(pending)


def _read_batch(files_read):
    """The Batch of files read: [(bytes, _Framing)], each file's bytes at its framing's base."""
    import numpy as np  # here, not at module level: `review --help` should stay quick

    framings = [framing for _, framing in files_read]
    data = b"".join([*(buffer for buffer, _ in files_read), bytes(16)])  # 16 to spare: _frame_files
    array = np.frombuffer(data, dtype=np.uint8)
    file_of, offsets, lengths = _frame_files(array, data, framings)
    sound = np.ones(len(lengths), dtype=bool)
    checked = np.flatnonzero(lengths <= _MAX_CHECKED_RECORD)
    if len(checked):
        sound[checked] = _checks_pass(array, offsets[checked] + 12, lengths[checked])
    bad = np.bincount(file_of[~sound], minlength=len(framings)).tolist()
    kept = np.flatnonzero(sound)
    read = np.bincount(file_of[kept], minlength=len(framings)).tolist()
    files, first = [], 0
    for framing, skipped, count in zip(framings, bad, read):
        files.append(FileRecords(framing.path, first, count, _warning(framing, skipped, count), framing.stat))
        first += count
    return Batch(data, array, offsets[kept] + 12, lengths[kept], files)


def _read_file(path, base):
    """(bytes, _Framing) of one file, whose bytes will be at base in the buffer of all files.

    A file of at most _CHUNK bytes is read whole, to be framed with the others (_frame_files);
    a larger one a chunk at a time, framing as it comes and keeping only the records' bytes.
    Length checksums are verified while framing, so a zero-filled or sparse file is abandoned
    at its first bad length after one chunk, however large it claims to be. Only a regular
    file is read: a FIFO, socket or device met here (a race with the directory walk) is
    opened without blocking and left unread.
    """
    framing = _Framing(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except OSError as error:
        framing.unread = f"not readable ({error.strerror or error.__class__.__name__})"
        return b"", framing
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            framing.unread = "not a regular file"
            return b"", framing
        framing.stat = (info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)
        if info.st_size <= _CHUNK:
            pieces, have = [], 0
            try:
                while have < info.st_size:  # what fstat says: asking for more costs a large allocation
                    chunk = os.read(fd, info.st_size - have)
                    if not chunk:
                        break
                    pieces.append(chunk)
                    have += len(chunk)
            except OSError as error:
                framing.unread = f"read failed ({error.strerror or error.__class__.__name__})"
            buffer = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            framing.whole, framing.base, framing.have, framing.size = True, base, len(buffer), info.st_size
            return buffer, framing
        return _read_framed(fd, info.st_size, framing, base)
    finally:
        os.close(fd)


def _read_framed(fd, size, framing, base):
    """The bytes of the records of a large file, read and framed a chunk at a time."""
    kept, pieces, rest, at, want = 0, [], b"", 0, _CHUNK
    try:
        while True:  # rest: the bytes read but not framed yet, from file offset `at`
            chunk = os.read(fd, want)
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
                os.lseek(fd, at, os.SEEK_SET)
                rest = b""
            elif len(rest) >= 12:  # read the rest of the pending record at once
                want = max(_CHUNK, 16 + _LENGTH.unpack_from(rest)[0] - len(rest))
    except OSError as error:
        framing.unread = f"read failed ({error.strerror or error.__class__.__name__})"
    return b"".join(pieces), framing


_LOCKSTEP = 256  # frame files side by side while at least this many have records left


def _frame_files(array, data, framings):
    """(file index, offset, length) of every record of the framings' files, in file order then
    record order, as numpy int64 arrays; files read whole are framed here.

    Files read whole are framed side by side, one record of each a step, in numpy, while
    enough of them have records left; the rest record by record in Python (_frame). Both
    stop a file where _frame would: at a bad length checksum (noted), at fewer than 12
    bytes left, or at a record running past the end (a record still being written).
    """
    import numpy as np

    whole = [index for index, framing in enumerate(framings) if framing.whole]
    pieces = [([index] * len(framing.offsets), framing.offsets, framing.lengths)
              for index, framing in enumerate(framings) if not framing.whole and framing.offsets]
    if whole:
        from numpy.lib.stride_tricks import as_strided

        # Each lane: its file, where its next record starts, where the bytes read and the
        # file (as fstat gave it) end; kept only for files with records left.
        lane = np.array(whole, dtype=np.int64)
        starts = np.array([framings[index].base for index in whole], dtype=np.int64)
        at = starts.copy()
        have = starts + np.array([framings[index].have for index in whole], dtype=np.int64)
        ends = np.minimum(have, starts + np.array([framings[index].size for index in whole], dtype=np.int64))
        headers = as_strided(array, shape=(len(array) - 15, 16), strides=(1, 1), writeable=False)
        while len(lane) >= _LOCKSTEP:
            readable = have - at >= 12
            if not readable.all():
                lane, starts, at, have, ends = lane[readable], starts[readable], at[readable], have[readable], \
                    ends[readable]
            rows = headers[at]  # 16 bytes from each record's start (the data holds 16 to spare at its end)
            length = rows.view("<u8")[:, 0]
            sound = _length_checks(rows.view("<u4"))
            room = ends - at - 16
            fits = sound & (room >= 0) & (length <= np.maximum(room, 0).astype(np.uint64))
            if not sound.all():
                for index, where in zip(lane[~sound].tolist(), (at[~sound] - starts[~sound]).tolist()):
                    framings[index].stop_note = f"bad length checksum at byte {where}"
            if not fits.all():
                lane, starts, at, have, ends, length = lane[fits], starts[fits], at[fits], have[fits], ends[fits], \
                    length[fits]
            length = length.astype(np.int64)
            pieces.append((lane, at, length))
            at = at + 16 + length
        position = dict(zip(lane.tolist(), at.tolist()))
        for index, at in position.items():  # the last few files, record by record
            framing = framings[index]
            end = framing.base + framing.have
            rest = _Framing(framing.path)
            _frame(data[at:end], rest, at, framing.size - (at - framing.base), at - framing.base)
            framing.stop_note = rest.stop_note
            if rest.offsets:
                pieces.append(([index] * len(rest.offsets), rest.offsets, rest.lengths))
    if not pieces:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    file_of, offsets, lengths = (np.concatenate([np.asarray(piece[n], dtype=np.int64) for piece in pieces])
                                 for n in range(3))
    order = np.argsort(file_of, kind="stable")  # the pieces of a file are in record order
    return file_of[order], offsets[order], lengths[order]


def _length_checks(words):
    """For each record header (rows of little-endian uint32 words: its length's two, then its
    checksum), whether the length's checksum holds."""
    import numpy as np

    low, high = _word_tables()
    register = words[:, 0] ^ np.uint32(0xFFFFFFFF)
    register = np.take(low, register & 0xFFFF) ^ np.take(high, register >> 16)
    register ^= words[:, 1]
    crcs = (np.take(low, register & 0xFFFF) ^ np.take(high, register >> 16)) ^ np.uint32(0xFFFFFFFF)
    return ((crcs >> 15) | (crcs << 17)) + np.uint32(_MASK_DELTA) == words[:, 2]


def frame_records(path, buffer, base=0):
    """Split a whole file's bytes into records by their lengths, each length's checksum
    verified; stop at a bad length or a cut-short end."""
    framing = _Framing(str(path))
    _frame(buffer, framing, base, len(buffer), 0)
    return framing


_STOP, _MORE = "stop", "more"


def _frame(buffer, framing, base, size, file_at):
    """Frame the records of buffer: the file's bytes from offset file_at, size of them left
    in the file, buffer's first byte at base in the buffer of all files read together.
    Return (where framing stopped in buffer, then _STOP, _MORE or, for a record too large
    to read, its whole length: header and checksums included)."""
    unpack, known, have, position = _HEADER.unpack_from, _LENGTH_CRCS.get, len(buffer), 0
    offsets, lengths = framing.offsets, framing.lengths
    while have - position >= 12:
        length, crc = unpack(buffer, position)
        if known(length) != crc and _length_crc(length) != crc:
            framing.stop_note = f"bad length checksum at byte {file_at + position}"
            return position, _STOP
        end = position + 16 + length
        if end > size:
            return position, _STOP  # a sound length running past the end: a record still being written
        if length > _MAX_RECORD:
            return position, 16 + length
        if end > have:
            return position, _MORE
        offsets.append(base + position)
        lengths.append(length)
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


def _warning(framing, skipped, read):
    """At most one warning for a file: read records, skipped ones, why it stopped."""
    if framing.unread and not read and not skipped and not framing.stop_note:
        return f"{framing.path}: skipped: {framing.unread}"
    notes = [f"{skipped} record(s) with a bad data checksum skipped"] if skipped else []
    if framing.too_large:
        notes.append(f"{framing.too_large} record(s) over {_MAX_RECORD >> 20} MiB skipped unread")
    if framing.stop_note:
        notes.append(f"{framing.stop_note}; read the {read} record(s) before it")
    if framing.unread:
        notes.append(framing.unread)
    return f"{framing.path}: corrupted: {'; '.join(notes)}" if notes else None


def _checks_pass(everything, starts, lengths):
    """For each span, whether its masked CRC32C equals the 4 bytes stored right after it."""
    import numpy as np

    from numpy.lib.stride_tricks import as_strided

    lengths = np.broadcast_to(lengths, starts.shape)
    words = as_strided(everything, shape=(len(everything) - 3, 4), strides=(1, 1), writeable=False)
    stored = words[starts + lengths].view("<u4")[:, 0]  # the 4 bytes after each span
    crcs = _crc32c_spans(everything, starts, lengths)
    return ((crcs >> 15) | (crcs << 17)) + np.uint32(_MASK_DELTA) == stored


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
    width_class = np.floor(np.log(lengths + 16.0) / np.log(1.25)).astype(np.intp)
    counts = np.bincount(width_class)
    order = np.argsort(width_class, kind="stable")
    ends = np.cumsum(counts).tolist()
    padded = None
    for klass in np.flatnonzero(counts).tolist():
        lanes = order[ends[klass] - int(counts[klass]):ends[klass]]
        if len(lanes) < _MIN_BATCH:
            for lane in lanes.tolist():
                span = everything[starts[lane]:starts[lane] + lengths[lane]].tobytes()
                crcs[lane] = crc32c(span)
            continue
        if padded is None:  # room before the first byte for the widest lane's left padding
            pad = _word_width(int(lengths.max()))
            padded = np.concatenate((np.zeros(pad, dtype=np.uint8), everything))
        crcs[lanes] = _crc32c_lanes(padded, starts[lanes] + pad, lengths[lanes])
    return crcs


def _word_width(length):
    return max(4, -(-length // 4) * 4)


def _crc32c_lanes(padded, starts, lengths):
    """CRC-32C of each span of padded (which has at least the widest span's width of bytes
    before every start), four bytes a step through two 65536-entry tables."""
    import numpy as np
    from numpy.lib.stride_tricks import as_strided

    width = _word_width(int(lengths.max()))
    low, high = _word_tables()
    corrections = np.array(_length_corrections(width), dtype=np.uint32)
    windows = as_strided(padded, shape=(len(padded) - width + 1, width), strides=(1, 1), writeable=False)
    first = starts + lengths - width  # where each left-padded lane begins
    padding = width - lengths
    columns = np.arange(int(padding.max()))  # only these columns can hold another span's bytes
    crcs = np.empty(len(starts), dtype=np.uint32)
    step = max(1, (1 << 22) // width)  # lanes per block: a few MB of bytes at a time
    for at in range(0, len(starts), step):
        block = windows[first[at:at + step]]
        if len(columns):
            block[:, :len(columns)][columns < padding[at:at + step, None]] = 0
        words = np.ascontiguousarray(block.view("<u4").T)
        register, half = np.zeros(block.shape[0], dtype=np.uint32), np.empty(block.shape[0], dtype=np.uint32)
        for word in words:
            word ^= register
            register = np.take(low, np.bitwise_and(word, 0xFFFF, out=half))
            register ^= np.take(high, np.right_shift(word, 16, out=half))
        crcs[at:at + step] = register ^ corrections[lengths[at:at + step]]
    return crcs


_TABLES = []


def _word_tables():
    """Slicing-by-4 in two halves: the register change for the low and the high 16 bits of
    (register ^ next 4 bytes, little-endian)."""
    import numpy as np

    if not _TABLES:
        t0 = np.array(_TABLE, dtype=np.uint32)
        t1 = (t0 >> 8) ^ t0[t0 & 0xFF]
        t2 = (t1 >> 8) ^ t0[t1 & 0xFF]
        t3 = (t2 >> 8) ^ t0[t2 & 0xFF]
        index = np.arange(65536, dtype=np.uint32)
        _TABLES.extend((t3[index & 0xFF] ^ t2[index >> 8], t1[index & 0xFF] ^ t0[index >> 8]))
    return _TABLES


_CORRECTIONS = [0]


def _length_corrections(width):
    """For each length n <= width: the CRC-32C of n zero bytes, i.e. the start value's share."""
    register = _CORRECTIONS[-1] ^ 0xFFFFFFFF
    while len(_CORRECTIONS) <= width:
        register = _TABLE[register & 0xFF] ^ (register >> 8)
        _CORRECTIONS.append(register ^ 0xFFFFFFFF)
    return _CORRECTIONS[:width + 1]
