"""Decode the records of event files into one summary per file; never imports TensorFlow.

A file's summary is what review needs of it: each scalar tag's count, first, last,
highest and lowest point (`Stats`), and the hparams, status and hparams_config its
`_hparams_/` records carry. review.reader merges the summaries of a run's files in
file-name order (`Series.start`, `Series.merge`), and review.cache keeps them.

Most records of a log are scalar events that differ from the one before only in the
bytes of their wall time, step and value. Those are decoded in numpy, many at a
time, through *layouts*: one record is parsed in full here (`_parse`, a strict
protobuf parser that declines anything it does not know completely) and checked
against tensorboard's own protobuf decoding; every record of the same length with
the same bytes outside those three places has the same structure, so its step and
value are read straight from their places. Everything else (hparams records, images,
histograms, anything odd) is decoded by the protobuf classes one record at a time;
a file holding any such record with a value that is not an `_hparams_/` one is
decoded that way from its first record to its last, exactly as before layouts.

How a value is read is TensorBoard's rule, decided by the first value of its tag in
each file (TF2 writes a tag's plugin metadata only once): `_reader_for`.
"""

import json
import math
import struct

from hparams_lab.core.trial import TrialStatus
from hparams_lab.tb.tags import EXPERIMENT_TAG, HPARAMS_PREFIX, SESSION_END_TAG, SESSION_START_TAG

# How the values of a tag are read: never (IGNORE), as TF1 simple values, or as a scalar tensor
# of one dtype (its enum -> struct format of tensor_content, the repeated field to read).
IGNORE, SIMPLE = 0, 1
_TENSOR_SCALARS = {1: ("<f", "float_val"), 2: ("<d", "double_val"), 3: ("<i", "int_val"),
                   9: ("<q", "int64_val"), 19: ("<e", "half_val")}
_TENSOR_CODES = {dtype: code for code, dtype in enumerate(_TENSOR_SCALARS, start=2)}
_CODE_LAYOUT = {code: _TENSOR_SCALARS[dtype] for dtype, code in _TENSOR_CODES.items()}
_NOT_SCALARS = {"hparams", "histograms", "images", "audio", "text", "pr_curves", "graph_keras_model"}
_NUMPY_TYPES = {"<f": "<f4", "<d": "<f8", "<i": "<i4", "<q": "<i8", "<e": "<f2"}

_MAX_LAYOUT_RECORD = 1024  # longer records (images, histograms, hparams) are decoded one by one
_MAX_SLOTS = 32  # values per record a layout may hold
_MAX_TRIES = 64  # records parsed per record length in search of layouts
_MAX_PARSES = 1024  # ... and per batch, whatever the logs hold


class Stats:
    """One scalar tag of one file, folded point by point: count, first and last point, and the
    highest and lowest points that are not NaN (the first of equals; None when all are NaN).
    A FileSummary holds it as a tuple (`as_tuple`), in that order: (count, first step, first,
    last step, last, high step, high, low step, low)."""

    __slots__ = ("count", "first", "first_step", "high", "high_step", "last", "last_step", "low", "low_step")

    def __init__(self, step, value):
        self.count = 1
        self.first_step = self.last_step = step
        self.first = self.last = value
        if not math.isnan(value):
            self.high_step = self.low_step = step
            self.high = self.low = value
        else:
            self.high_step = self.low_step = self.high = self.low = None

    def add(self, step, value):
        self.count += 1
        self.last, self.last_step = value, step
        if not math.isnan(value):
            if self.high_step is None or value > self.high:
                self.high, self.high_step = value, step
            if self.low_step is None or value < self.low:
                self.low, self.low_step = value, step

    def as_tuple(self):
        return (self.count, self.first_step, self.first, self.last_step, self.last,
                self.high_step, self.high, self.low_step, self.low)


class Config:
    """What review uses of an hparams_config (tensorboard's Experiment): its hparam names, its
    metrics as [group, tag] and its interval domains as [name, min, max], in declared order."""

    __slots__ = ("hparam_names", "intervals", "metrics")

    def __init__(self, hparam_names, metrics, intervals=()):
        self.hparam_names, self.metrics, self.intervals = hparam_names, metrics, list(intervals)


class FileSummary:
    """What one event file says: tag -> Stats.as_tuple() (in the order their first values came), the last
    session start's hparams, session end's status and hparams_config, if any, and how many
    records were not events."""

    __slots__ = ("series", "hparams", "status", "experiment", "undecodable")

    def __init__(self):
        self.series, self.hparams, self.status, self.experiment, self.undecodable = {}, None, None, None, 0


def summarize(batch):
    """A FileSummary for each file of a tfrecord.Batch, in its order."""
    import numpy as np

    files = batch.files
    summaries = [FileSummary() for _ in files]
    if not len(batch.lengths):
        return summaries
    file_of = np.repeat(np.arange(len(files)), [file.count for file in files])
    layouts, layout_of = _find_layouts(batch)
    generic = np.flatnonzero(layout_of < 0)
    slow = set()  # files decoded one record at a time, all of them
    for index, file_index in zip(generic.tolist(), file_of[generic].tolist()):
        if file_index not in slow and not _decode_hparams_only(batch.record(index), summaries[file_index]):
            slow.add(file_index)
    for file_index in slow:
        summary = summaries[file_index] = FileSummary()
        file = files[file_index]
        decode_records((batch.record(i) for i in range(file.first, file.first + file.count)), summary)
    if layouts:
        _fold_layouts(batch, layouts, layout_of, file_of, slow, summaries)
    return summaries


def _protobuf():
    """(DecodeError, Event, HParamsPluginData): imported on first use, as `review --help` and a
    review that the cache answers need none of them."""
    if not _PROTOBUF:
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

        _PROTOBUF.extend((DecodeError, Event, HParamsPluginData))
    return _PROTOBUF


_PROTOBUF = []


def decode_records(records, summary):
    """Fold records into summary one by one with tensorboard's protobuf classes."""
    decode_error, event_class, _ = _protobuf()
    parse, series, readers = event_class.FromString, summary.series, {}
    for record in records:
        try:
            event = parse(record)
        except decode_error:
            summary.undecodable += 1
            continue
        for value in event.summary.value:
            tag = value.tag
            if tag.startswith(HPARAMS_PREFIX):
                _read_hparams_record(value, summary)
                continue
            code = readers.get(tag)
            if code is None:
                code = readers[tag] = _reader_for(tag, value)
            number = _READERS[code](value)
            if number is None:
                continue
            stats = series.get(tag)
            if stats is None:
                series[tag] = Stats(event.step, number)
            else:
                stats.add(event.step, number)
    summary.series = {tag: stats.as_tuple() if isinstance(stats, Stats) else stats for tag, stats in series.items()}


def _decode_hparams_only(record, summary):
    """Decode a record that fits no layout into summary if its values are all `_hparams_/`
    ones (or it is no event at all); False, touching nothing, if it holds any other value."""
    decode_error, event_class, _ = _protobuf()
    try:
        event = event_class.FromString(record)
    except decode_error:
        summary.undecodable += 1
        return True
    values = event.summary.value
    for value in values:
        if not value.tag.startswith(HPARAMS_PREFIX):
            return False
    for value in values:
        _read_hparams_record(value, summary)
    return True


def _reader_for(tag, value):
    """How the values of a tag are read, from its first value: IGNORE, SIMPLE or a tensor code."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":  # TF1, tensorboardX, PyTorch
        return SIMPLE
    return _decision(kind == "tensor", value.metadata.plugin_data.plugin_name, value.tensor.dtype,
                     [dim.size for dim in value.tensor.tensor_shape.dim])


def _decision(is_tensor, plugin, dtype, dims):
    code = _TENSOR_CODES.get(dtype)
    if not is_tensor or plugin in _NOT_SCALARS or code is None or any(size != 1 for size in dims):
        return IGNORE
    return code


def _read_simple_value(value):
    return value.simple_value


def _ignore(value):
    return None


def _tensor_reader(form, repeated):
    unpack, size = struct.Struct(form).unpack, struct.calcsize(form)

    def read(value):
        tensor = value.tensor
        content = tensor.tensor_content
        if len(content) == size:
            return float(unpack(content)[0])
        values = getattr(tensor, repeated)
        if len(values) != 1 or content:
            return None
        if repeated == "half_val":  # float16 bits carried in an int32
            return float(struct.unpack("<e", struct.pack("<H", values[0]))[0])
        return float(values[0])

    return read


_READERS = {IGNORE: _ignore, SIMPLE: _read_simple_value,
            **{code: _tensor_reader(*layout) for code, layout in _CODE_LAYOUT.items()}}


def _read_hparams_record(value, summary):
    decode_error, _, plugin_data = _protobuf()
    tag = value.tag
    try:
        data = plugin_data.FromString(value.metadata.plugin_data.content)
    except decode_error:
        return
    if tag == SESSION_START_TAG and data.HasField("session_start_info"):
        hparams = data.session_start_info.hparams  # keys then values: .items() iterates in Python
        summary.hparams = {name: _hparam_value(hparams[name]) for name in hparams}
    elif tag == SESSION_END_TAG and data.HasField("session_end_info"):
        summary.status = TrialStatus.from_tensorboard(data.session_end_info.status)
    elif tag == EXPERIMENT_TAG and data.HasField("experiment"):
        experiment = data.experiment
        infos = experiment.hparam_infos
        summary.experiment = Config([info.name for info in infos],
                                    [[info.name.group, info.name.tag] for info in experiment.metric_infos],
                                    [[info.name, info.domain_interval.min_value, info.domain_interval.max_value]
                                     for info in infos if info.HasField("domain_interval")])


def _hparam_value(value):
    """A google.protobuf.Value as the Python value it was logged as."""
    kind = value.WhichOneof("kind")
    if kind in _PLAIN_KINDS:
        return getattr(value, kind)
    if kind is None or kind == "null_value":
        return None
    from google.protobuf.json_format import MessageToDict

    # Lists and structs (rare) become their JSON text: hparam values must stay hashable.
    return json.dumps(MessageToDict(value), sort_keys=True)


_PLAIN_KINDS = frozenset(("number_value", "string_value", "bool_value"))


# --- Layouts -------------------------------------------------------------------------------

class _Decline(Exception):
    """The record is not one a layout can stand for; `at`: how far the parser read."""

    def __init__(self, at):
        super().__init__(at)
        self.at = at


class _Slot:
    """One value of a layout's records: its tag, how its tag is read if it comes first
    (decision), what it holds (kind: "simple", "float", "double", "content" or "empty"), the
    length of its tensor_content and where its number's bytes are (offset, size) or None."""

    __slots__ = ("tag", "decision", "kind", "content_length", "payload")

    def __init__(self, tag, decision, kind, content_length, payload):
        self.tag, self.decision, self.kind = tag, decision, kind
        self.content_length, self.payload = content_length, payload

    def rule(self, code):
        """How a value of this slot is read by reader code: None (not at all), 0.0 (a tensor
        read as a simple value), or the numpy type of the bytes at self.payload."""
        if code == IGNORE:
            return None
        if code == SIMPLE:
            return "<f4" if self.kind == "simple" else 0.0
        form, repeated = _CODE_LAYOUT[code]
        if self.content_length == struct.calcsize(form):
            return _NUMPY_TYPES[form]
        if self.content_length:
            return None
        if (self.kind, repeated) in (("float", "float_val"), ("double", "double_val")):
            return "<f4" if self.kind == "float" else "<f8"
        return None


class _Layout:
    """The structure shared by records of one length: the bytes that must be equal to the
    record it was parsed from (constant: their offsets), the step's varint (offset, size) or
    its value, and the slots."""

    __slots__ = ("record", "constant", "step", "step_value", "slots")

    def __init__(self, record, constant, step, step_value, slots):
        self.record, self.constant, self.step, self.step_value, self.slots = \
            record, constant, step, step_value, slots


# Wire types each field may have, per message; anything else declines the record.
_EVENT = {1: (1,), 2: (0,), 3: (2,), 5: (2,), 10: (2,)}  # wall_time, step, file_version, summary, source_metadata
_SOURCE_METADATA = {1: (2,)}  # writer
_VALUE = {1: (2,), 2: (5,), 8: (2,), 9: (2,)}  # tag, simple_value, tensor, metadata
_METADATA = {1: (2,), 2: (2,), 3: (2,), 4: (0,)}  # plugin_data, display_name, summary_description, data_class
_PLUGIN_DATA = {1: (2,), 2: (2,)}  # plugin_name, content
_TENSOR = {1: (0,), 2: (2,), 3: (0,), 4: (2,), 5: (2, 5), 6: (2, 1)}  # dtype, shape, version, content, float, double
_SHAPE = {2: (2,), 3: (0,)}  # dim (repeated), unknown_rank
_DIM = {1: (0,), 2: (2,)}  # size, name
_INT32 = 1 << 31


def _varint(data, at, end):
    """(value, where it ends) of the varint at data[at:], declining what protobuf would not read
    as the same 64-bit number."""
    value = shift = 0
    while at < end:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if shift == 63 and byte > 1:
                raise _Decline(at)
            return value, at
        shift += 7
        if shift > 63:
            break
    raise _Decline(at)


def _fields(data, at, end, allowed, repeated=()):
    """{field: (wire type, start, end, varint value)} of the message at data[at:end]; each field
    at most once (but those in repeated: a list of them), each with an allowed wire type."""
    fields = {}
    while at < end:
        key, at = _varint(data, at, end)
        number, wire = key >> 3, key & 7
        if wire not in allowed.get(number, ()) or (number in fields and number not in repeated):
            raise _Decline(at)
        value = None
        if wire == 0:
            start = at
            value, at = _varint(data, at, end)
        elif wire == 2:
            size, at = _varint(data, at, end)
            start = at
            at += size
        else:
            start = at
            at += 8 if wire == 1 else 4
        if at > end:
            raise _Decline(end)
        field = (wire, start, at, value)
        if number in repeated:
            fields.setdefault(number, []).append(field)
        else:
            fields[number] = field
    return fields


def _text(data, field, at):
    if field is None:
        return ""
    try:
        return data[field[1]:field[2]].decode("utf-8")
    except UnicodeDecodeError:
        raise _Decline(at) from None


def _int32(field, at):
    if field is None:
        return 0
    value = field[3]
    if value >= _INT32 and value < (1 << 64) - _INT32:  # protobuf would cut it to 32 bits
        raise _Decline(at)
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse(record):
    """The _Layout of an event record, or _Decline (with how far it read) for any record this
    parser does not understand completely, holds an `_hparams_/` value, or has too many values."""
    end = len(record)
    event = _fields(record, 0, end, _EVENT)
    if 3 in event and 5 in event:  # both of a oneof: protobuf keeps the last
        raise _Decline(end)
    variable, step, step_value = [], None, 0
    if 1 in event:
        variable.append((event[1][1], 8))
    if 2 in event:
        _, start, stop, step_value = event[2]
        if stop - start <= 9:
            step = (start, stop - start)
            variable.append(step)
        elif step_value >= 1 << 63:
            step_value -= 1 << 64
    if 3 in event:
        _text(record, event[3], event[3][2])
    if 10 in event:
        _text(record, _fields(record, event[10][1], event[10][2], _SOURCE_METADATA).get(1), event[10][2])
    slots = []
    if 5 in event:
        _, start, stop, _ = event[5]
        summary = _fields(record, start, stop, {1: (2,)}, repeated=(1,))
        for _, value_start, value_stop, _ in summary.get(1, ()):
            slots.append(_slot(record, value_start, value_stop, variable))
            if len(slots) > _MAX_SLOTS:
                raise _Decline(value_stop)
    constant = sorted(set(range(end)).difference(*(range(at, at + size) for at, size in variable)))
    return _Layout(record, constant, step, step_value, slots)


def _slot(record, at, end, variable):
    value = _fields(record, at, end, _VALUE)
    tag = _text(record, value.get(1), end)
    if tag.startswith(HPARAMS_PREFIX):
        raise _Decline(value[1][2])  # decided by the bytes up to the tag's end
    plugin = ""
    if 9 in value:
        metadata = _fields(record, value[9][1], value[9][2], _METADATA)
        for number in (2, 3):
            _text(record, metadata.get(number), end)
        _int32(metadata.get(4), end)
        if 1 in metadata:
            plugin_data = _fields(record, metadata[1][1], metadata[1][2], _PLUGIN_DATA)
            plugin = _text(record, plugin_data.get(1), end)
    if 2 in value:
        if 8 in value:
            raise _Decline(end)
        payload = (value[2][1], 4)
        variable.append(payload)
        return _Slot(tag, SIMPLE, "simple", 0, payload)
    if 8 not in value:
        return _Slot(tag, IGNORE, "empty", 0, None)
    tensor = _fields(record, value[8][1], value[8][2], _TENSOR)
    dtype = _int32(tensor.get(1), end)
    _int32(tensor.get(3), end)
    dims = []
    if 2 in tensor:
        shape = _fields(record, tensor[2][1], tensor[2][2], _SHAPE, repeated=(2,))
        if shape.get(3, (0, 0, 0, 0))[3] > 1:
            raise _Decline(end)
        for _, start, stop, _ in shape.get(2, ()):
            dim = _fields(record, start, stop, _DIM)
            _text(record, dim.get(2), end)
            size = dim[1][3] if 1 in dim else 0
            dims.append(size - (1 << 64) if size >= 1 << 63 else size)
    content = tensor.get(4)
    content_length = content[2] - content[1] if content else 0
    values = [number for number in (5, 6) if number in tensor]
    if len(values) + (content_length > 0) > 1:
        raise _Decline(end)
    kind, payload = "empty", None
    if content_length:
        kind = "content"
        if content_length <= 8:
            payload = (content[1], content_length)
    elif values:
        _, start, stop, _ = tensor[values[0]]
        kind, size = ("float", 4) if values[0] == 5 else ("double", 8)
        if stop - start != size:  # packed: exactly one element
            raise _Decline(end)
        payload = (start, size)
    if payload:
        variable.append(payload)
    return _Slot(tag, _decision(True, plugin, dtype, dims), kind, content_length, payload)


def _checked(layout):
    """Whether tensorboard's protobuf classes read the layout's record as the layout says."""
    decode_error, event_class, _ = _protobuf()
    record = layout.record
    try:
        event = event_class.FromString(record)
    except decode_error:
        return False
    step = _step_bytes(record, layout.step) if layout.step else layout.step_value
    values = event.summary.value
    if event.step != step or len(values) != len(layout.slots):
        return False
    for value, slot in zip(values, layout.slots):
        if value.tag != slot.tag or _reader_for(value.tag, value) != slot.decision:
            return False
        for code, read in _READERS.items():
            rule = slot.rule(code)
            if isinstance(rule, str):
                at, size = slot.payload
                rule = float(struct.unpack(_STRUCT_TYPES[rule], record[at:at + size])[0])
            number = read(value)
            if (number is None) != (rule is None) or (number is not None and not (
                    number == rule or (math.isnan(number) and math.isnan(rule)))):
                return False
    return True


_STRUCT_TYPES = {numpy: form for form, numpy in _NUMPY_TYPES.items()}


def _step_bytes(record, step):
    at, size = step
    return sum((record[at + i] & 0x7F) << (7 * i) for i in range(size))


def _find_layouts(batch):
    """The layouts of the batch's records, and for each record its layout's index or -1."""
    import numpy as np
    from numpy.lib.stride_tricks import as_strided

    lengths, starts, array = batch.lengths, batch.starts, batch.array
    layout_of = np.full(len(lengths), -1, dtype=np.int64)
    small = np.flatnonzero(lengths <= _MAX_LAYOUT_RECORD)
    if not len(small):
        return [], layout_of
    order = small[np.argsort(lengths[small], kind="stable")]
    sorted_lengths = lengths[order]
    bounds = np.flatnonzero(np.diff(sorted_lengths)) + 1
    layouts, parses = [], 0
    budget = 8 * int(sorted_lengths.sum()) + (1 << 20)  # bytes compared in all, whatever the logs hold
    for group in np.split(order, bounds):
        length = int(lengths[group[0]])
        if length == 0:
            continue
        # Rows padded to whole 8-byte words (the batch's data has bytes to spare at its end),
        # compared a word at a time under a mask of the bytes that must be equal.
        width = -(-length // 8) * 8
        windows = as_strided(array, shape=(len(array) - width + 1, width), strides=(1, 1), writeable=False)
        rows = windows[starts[group]]
        words = rows.view("<u8")
        pending = np.arange(len(group))
        tries = 0
        while len(pending) and tries < _MAX_TRIES and parses < _MAX_PARSES and budget > 0:
            tries += 1
            parses += 1
            record = rows[pending[0], :length].tobytes()
            try:
                layout = _parse(record)
            except _Decline as declined:
                if declined.at < 12:
                    pending = pending[1:]
                    continue
                # Records alike up to where the parser gave up decline alike: leave them all.
                known = np.arange(min(declined.at, length))
                if record[0] == 0x09:  # a wall time first: its bytes may differ
                    known = known[(known == 0) | (known >= 9)]
                budget -= len(pending) * width
                pending = pending[~_alike(words, pending, known, width)]
                continue
            if not _checked(layout):
                pending = pending[1:]
                continue
            budget -= len(pending) * width
            fits = _alike(words, pending, np.array(layout.constant, dtype=np.intp), width)
            if layout.step:  # a varint of the same size: its last byte alone under 0x80
                at, size = layout.step
                fits &= rows[pending, at + size - 1] < 0x80
                for column in range(at, at + size - 1):
                    fits &= rows[pending, column] >= 0x80
            matched = pending[fits]
            layout_of[group[matched]] = len(layouts)
            layouts.append(layout)
            pending = pending[~fits]
    return layouts, layout_of


def _alike(words, pending, positions, width):
    """Which pending rows (of 8-byte words) have the same bytes at positions as the first
    (a few MB of rows at a time: the copies stay small whatever the batch holds)."""
    import numpy as np

    mask = np.zeros(width, dtype=np.uint8)
    mask[positions] = 0xFF
    mask, first = mask.view("<u8"), words[pending[0]]
    step = max(1, (1 << 22) // width)
    return np.concatenate([~(((words[pending[at:at + step]] ^ first) & mask).any(axis=1))
                           for at in range(0, len(pending), step)])


def _fold_layouts(batch, layouts, layout_of, file_of, slow, summaries):
    """Read the steps and numbers of the records that fit layouts and fold them into
    summaries, deciding each (file, tag)'s reader from its first value, all in numpy."""
    import numpy as np

    tags, tag_ids, slot_ids = [], {}, []
    for layout in layouts:
        ids = []
        for slot in layout.slots:
            if slot.tag not in tag_ids:
                tag_ids[slot.tag] = len(tags)
                tags.append(slot.tag)
            ids.append(tag_ids[slot.tag])
        slot_ids.append(ids)
    records = np.flatnonzero(layout_of >= 0)
    if slow:
        decoded = np.zeros(len(batch.files), dtype=bool)
        decoded[sorted(slow)] = True
        records = records[~decoded[file_of[records]]]
    which = layout_of[records]
    # Every value of every record, in record order then value order: its record, slot and step.
    occurrences = []  # (records, layout, slot index)
    steps_of = np.zeros(len(batch.lengths), dtype=np.int64)
    for index, layout in enumerate(layouts):
        mine = records[which == index]
        if not len(mine) or not layout.slots:
            continue
        if layout.step:
            at, size = layout.step
            place = batch.array[batch.starts[mine][:, None] + (at + np.arange(size))].astype(np.int64) & 0x7F
            steps_of[mine] = (place << (7 * np.arange(size, dtype=np.int64))).sum(axis=1)
        else:
            steps_of[mine] = layout.step_value
        for slot_index in range(len(layout.slots)):
            occurrences.append((mine, index, slot_index))
    if not occurrences:
        return
    record = np.concatenate([mine for mine, _, _ in occurrences])
    position = np.concatenate([np.full(len(mine), slot, dtype=np.int64) for mine, _, slot in occurrences])
    source = np.concatenate([np.full(len(mine), n, dtype=np.int64) for n, (mine, _, _) in enumerate(occurrences)])
    tag = np.array([slot_ids[index][slot] for _, index, slot in occurrences], dtype=np.int64)[source]
    key = file_of[record] * len(tags) + tag
    order = record * (_MAX_SLOTS + 1) + position
    sort = np.lexsort((order, key))
    record, source, key, order = record[sort], source[sort], key[sort], order[sort]
    # Each (file, tag)'s reader: the decision of its first value's slot.
    heads = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    decisions = np.array([layouts[index].slots[slot].decision for _, index, slot in occurrences],
                         dtype=np.int64)
    reader = np.repeat(decisions[source[heads]], np.diff(np.r_[heads, len(key)]))
    # Each value by its slot's rule under its reader.
    numbers = np.full(len(record), np.nan)
    keep = np.zeros(len(record), dtype=bool)
    combos = source * (max(_READERS) + 1) + reader
    for combo in np.flatnonzero(np.bincount(combos)).tolist():
        n, code = divmod(combo, max(_READERS) + 1)
        _, index, slot_index = occurrences[n]
        slot = layouts[index].slots[slot_index]
        rule = slot.rule(code)
        if rule is None:
            continue
        chosen = np.flatnonzero(combos == combo)
        keep[chosen] = True
        if isinstance(rule, float):
            numbers[chosen] = rule
            continue
        at, size = slot.payload
        place = batch.array[batch.starts[record[chosen]][:, None] + (at + np.arange(size))]
        numbers[chosen] = np.ascontiguousarray(place).view(rule)[:, 0].astype(np.float64)
    record, key, order, numbers = record[keep], key[keep], order[keep], numbers[keep]
    if not len(record):
        return
    steps = steps_of[record]
    heads = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[heads, len(key)])
    tails = heads + sizes - 1
    group = np.repeat(np.arange(len(heads)), sizes)
    nan = np.isnan(numbers)
    high_at, low_at = _first_extreme(numbers, nan, heads, group, np.maximum, -np.inf), \
        _first_extreme(numbers, nan, heads, group, np.minimum, np.inf)
    # Per file, tags in the order their first values came.
    file_index = key[heads] // len(tags)
    tag_index = key[heads] % len(tags)
    listing = np.lexsort((order[heads], file_index))
    high_at, low_at = high_at[listing], low_at[listing]  # -1 (all NaN) picks a number left unused
    some = high_at >= 0
    stats = zip(*(array.tolist() for array in (
        sizes[listing], steps[heads][listing], numbers[heads][listing], steps[tails][listing], numbers[tails][listing],
        steps[high_at], numbers[high_at], steps[low_at], numbers[low_at])))
    files_listed, tags_listed = file_index[listing].tolist(), tag_index[listing].tolist()
    for f, t, found, item in zip(files_listed, tags_listed, some.tolist(), stats):
        summaries[f].series[tags[t]] = item if found else item[:5] + (None, None, None, None)


def _first_extreme(numbers, nan, heads, group, reduce, fill):
    """Per group: the index of its first highest (np.maximum) or lowest number that is not NaN,
    or -1 where all are NaN."""
    import numpy as np

    filled = np.where(nan, fill, numbers)
    extreme = reduce.reduceat(filled, heads)
    hits = np.flatnonzero((filled == extreme[group]) & ~nan)
    found = np.full(len(heads), -1, dtype=np.int64)
    firsts = hits[np.r_[True, group[hits][1:] != group[hits][:-1]]] if len(hits) else hits
    found[group[firsts]] = firsts
    return found
