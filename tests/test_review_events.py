"""review.events: records read through layouts (in numpy) say exactly what tensorboard's
protobuf classes say when read one by one; per-file summaries merge into what one fold over
all of a run's points gives."""

import math
import random
import struct

import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.record_writer import RecordWriter

import runner_style_logs as logs
from hparams_lab.review import events, tfrecord
from hparams_lab.review.reader import Series

VALUES = [0.5, float("nan"), -0.0, 0.0, float("inf"), -float("inf"), 1e-40, 3.4e38, 0.5, 0.25]


def event(values, step=0, wall_time=1.0e9):
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=list(values)))


def simple(tag, value):
    return summary_pb2.Summary.Value(tag=tag, simple_value=value)


def tensor(tag, dtype, plugin="scalars", content=None, shape=(), **fields):
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]), **fields)
    if content is not None:
        proto.tensor_content = content
    value = summary_pb2.Summary.Value(tag=tag, tensor=proto)
    if plugin:
        value.metadata.plugin_data.plugin_name = plugin
    return value


def files_of_every_kind():
    """{name: [serialized records]}: one file per oddity, most of them decodable by layouts."""
    start = event_pb2.Event(summary=hp.hparams_pb({"x": 1.0}, trial_id="g")).SerializeToString()
    files = {
        "tf2 scalars": [event([logs.scalar_value("acc", v)], step=i) for i, v in enumerate(VALUES)],
        "simple values": [event([simple("loss", v)], step=i) for i, v in enumerate(VALUES)],
        "nan first": [event([logs.scalar_value("a", v)], step=i)
                      for i, v in enumerate([math.nan, 1.0, math.nan, 2.0, 2.0, -1.0])],
        "all nan": [event([logs.scalar_value("a", math.nan)], step=i) for i in range(3)],
        "steps": [event([logs.scalar_value("s", 0.5)], step=s)
                  for s in (-1, -5, 2**40, 2**62, 127, 128, 16383, 16384, 0, 2**63 - 1)],
        "dtypes": [event([tensor("dbl", 2, double_val=[i / 3])], step=i) for i in range(3)]
        + [event([tensor("dblc", 2, content=struct.pack("<d", i / 7))], step=i) for i in range(3)]
        + [event([tensor("i32c", 3, content=struct.pack("<i", -i))], step=i) for i in range(3)]
        + [event([tensor("i64c", 9, content=struct.pack("<q", 2**60 + i))], step=i) for i in range(3)]
        + [event([tensor("halfc", 19, content=struct.pack("<e", i / 4))], step=i) for i in range(3)]
        + [event([tensor("i32", 3, int_val=[7])], step=1), event([tensor("half", 19, half_val=[0x3C00])], step=1)],
        # A tag's first value decides how all of its values in the file are read.
        "first decides": [event([tensor("t", 3, content=struct.pack("<i", 5))]),
                          event([tensor("t", 1, plugin=None, content=struct.pack("<f", 0.5))], step=1),
                          event([tensor("t", 2, plugin=None, content=struct.pack("<d", 0.5))], step=2),
                          event([tensor("t", 1, plugin=None, float_val=[0.25])], step=3),
                          event([simple("t", 0.125)], step=4),
                          event([simple("u", 0.125)]), event([tensor("u", 1, content=struct.pack("<f", 0.5))], step=1),
                          event([tensor("w", 2, double_val=[0.5])]), event([tensor("w", 1, float_val=[0.5])], step=1),
                          event([tensor("img", 1, plugin="images", float_val=[0.5])]),
                          event([logs.scalar_value("img", 0.9)], step=1),
                          event([tensor("vec", 1, float_val=[0.5], shape=(2,))]),
                          event([logs.scalar_value("vec", 0.9)], step=1),
                          event([tensor("one", 1, float_val=[0.5], shape=(1, 1))]),
                          event([logs.scalar_value("one", 0.9)], step=1)],
        "metadata once": [event([tensor("m", 1, content=struct.pack("<f", 0.1))])]
        + [event([tensor("m", 1, plugin=None, content=struct.pack("<f", i / 30))], step=i) for i in range(1, 90)],
        "several values": [event([logs.scalar_value("a", i), logs.scalar_value("b", -i), logs.scalar_value("a", i + 0.5)],
                                 step=i) for i in range(70)],
        "no values": [event([summary_pb2.Summary.Value(tag="e")], step=i) for i in range(3)]
        + [event([simple("s", 0.5)], step=9), event([summary_pb2.Summary.Value(tag="s")], step=10)],
        "no step, no wall time": [event_pb2.Event(summary=summary_pb2.Summary(value=[logs.scalar_value("x", i)]))
                                  for i in range(4)],
        "text": [event([logs.scalar_value("ünï\u202e/\x1b[31m", i / 3)], step=i) for i in range(4)],
        "hparams and status": [event([logs.scalar_value("x", 0.5)], step=1), logs.session_end_event("FAILURE"),
                               logs.session_end_event("SUCCESS")],
    }
    files = {name: [start] + [r if isinstance(r, bytes) else r.SerializeToString() for r in records]
             for name, records in files.items()}
    good = event([logs.scalar_value("dup", 0.4)], step=4).SerializeToString()
    packed = event([tensor("unpacked", 1, float_val=[0.5])], step=1).SerializeToString()
    files["protobuf oddities"] = [
        good + b"\x10\x09",  # the step again: the last one counts
        good + event([logs.scalar_value("dup", 0.8)]).SerializeToString(),  # two summaries: merged
        good + b"\xf8\x07\x01",  # an unknown field
        b"\x0a\x03abc", b"\xff\xff\xff", b"",  # no events
        good.replace(b"dup", b"d\xffp"),  # a tag that is not UTF-8
        good.replace(b"\x10\x04", b"\x10\x84\x00", 1),  # a step varint longer than it needs
        packed.replace(b"\x2a\x04" + struct.pack("<f", 0.5), b"\x2d" + struct.pack("<f", 0.5)),  # unpacked float
        b"\x1a\x01a" + good,  # file_version and summary, one oneof
    ]
    return files


def write_files(root, files):
    paths = []
    for index, (name, records) in enumerate(files.items()):
        path = root / f"{index:02d}.tfevents"
        with open(path, "wb") as file:
            writer = RecordWriter(file)
            for record in records:
                writer.write(record)
        paths.append(path)
    return paths


def as_data(summary):
    return ({tag: list(stats) for tag, stats in summary.series.items()}, list(summary.series), summary.hparams,
            summary.status, summary.experiment and (summary.experiment.hparam_names, summary.experiment.metrics,
                                                    summary.experiment.intervals),
            summary.undecodable)


def same(left, right):
    """== with NaN equal to NaN, anywhere in nested lists, tuples and dicts."""
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, (list, tuple)):
        return type(left) is type(right) and len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return isinstance(right, dict) and left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    return left == right and type(left) is type(right)


def one_by_one(batch):
    summaries = []
    for file in batch.files:
        summary = events.FileSummary()
        events.decode_records((batch.record(i) for i in range(file.first, file.first + file.count)), summary)
        summaries.append(summary)
    return summaries


def test_layouts_read_what_protobuf_reads(tmp_path):
    files = files_of_every_kind()
    (batch,) = tfrecord.read_batches(write_files(tmp_path, files))
    _, layout_of = events._find_layouts(batch)
    assert (layout_of >= 0).sum() > 0.8 * len(layout_of)  # most records go through layouts
    for name, fast, slow in zip(files, events.summarize(batch), one_by_one(batch)):
        assert same(as_data(fast), as_data(slow)), name


def test_layouts_read_what_protobuf_reads_in_many_files_at_once(tmp_path):
    """The same records spread over many files (a batch of runs, as review reads them)."""
    rng = random.Random(0)
    records = [r for rs in files_of_every_kind().values() for r in rs]
    files = {f"file {n}": rng.sample(records, rng.randrange(1, 30)) for n in range(80)}
    (batch,) = tfrecord.read_batches(write_files(tmp_path, files))
    for name, fast, slow in zip(files, events.summarize(batch), one_by_one(batch)):
        assert same(as_data(fast), as_data(slow)), name


def test_a_layout_is_only_what_protobuf_agrees_with():
    # Not events, or events a layout does not stand for: declined (read by protobuf instead).
    for record in (b"\xff\xff\xff", b"\x0a\x03abc", event([simple("d\xffp", 0.5)]).SerializeToString()[:-1],
                   event_pb2.Event(summary=hp.hparams_pb({"x": 1.0}, trial_id="g")).SerializeToString()):
        with pytest.raises(events._Decline):
            events._parse(record)
    layout = events._parse(event([logs.scalar_value("acc", 0.5)], step=3).SerializeToString())
    assert events._checked(layout)
    assert [(slot.tag, slot.kind, slot.decision) for slot in layout.slots] == [("acc", "float", 2)]


def run_series(points_per_file):
    """(Series folded point by point, Series merged from each file's Stats)."""
    points = [point for points in points_per_file for point in points]
    one = Series(*points[0])
    for point in points[1:]:
        one.add(*point)
    merged = None
    for points in points_per_file:
        if not points:
            continue
        stats = events.Stats(*points[0])
        for point in points[1:]:
            stats.add(*point)
        if merged is None:
            merged = Series.start(stats.as_tuple())
        else:
            merged.merge(stats.as_tuple())
    return one, merged


@pytest.mark.parametrize("seed", range(40))
def test_series_merged_from_files_equal_one_fold_over_every_point(seed):
    rng = random.Random(seed)
    pool = [math.nan, -0.0, 0.0, 1.0, -1.0, math.inf, -math.inf, 0.5]
    files = [[(rng.randrange(100), rng.choice(pool)) for _ in range(rng.randrange(0, 5))] for _ in range(4)]
    if not any(files):
        files[0].append((0, math.nan))
    one, merged = run_series(files)
    for name in Series.__slots__:
        left, right = getattr(one, name), getattr(merged, name)
        assert same(left, right) and math.copysign(1, left) == math.copysign(1, right), (name, files)


@pytest.mark.parametrize("seed", range(6))
def test_records_with_bytes_changed_anywhere_read_as_protobuf_reads_them(tmp_path, seed):
    """Same-length records a byte or two away from a layout's: those that still fit it (a
    value, a step, a wall time changed) and those that do not (a tag, a length, a wire type)."""
    rng = random.Random(seed)
    templates = [event([logs.scalar_value("acc", 0.5)], step=3), event([simple("loss", 0.25)], step=200),
                 event([tensor("c", 1, content=struct.pack("<f", 0.5))], step=7),
                 event([logs.scalar_value("a", 1.0), simple("b", 2.0)], step=1)]
    templates = [template.SerializeToString() for template in templates]
    records = []
    for _ in range(400):
        record = bytearray(rng.choice(templates))
        for _ in range(rng.choice([1, 1, 2])):
            record[rng.randrange(len(record))] = rng.choice([0, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        records.append(bytes(record))
    files = {f"file {n}": [rng.choice(templates)] + records[n::8] for n in range(8)}
    (batch,) = tfrecord.read_batches(write_files(tmp_path, files))
    for name, fast, slow in zip(files, events.summarize(batch), one_by_one(batch)):
        assert same(as_data(fast), as_data(slow)), name
