"""tb.summaries builds the HParams and scalar records itself: the same bytes as tensorboard's
own builders (whose import loads tensorboard's TensorFlow stub)."""

import math

import pytest
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import metadata, plugin_data_pb2
from tensorboard.plugins.scalar import summary_v2 as scalar_summary

from hparams_lab.core.metrics import Metric
from hparams_lab.core.space import Discrete, HParam, RealInterval, Space
from hparams_lab.core.trial import Trial, TrialStatus
from hparams_lab.tb import summaries


def assert_tensorboards(summary, tag):
    """The record tensorboard's hparams metadata makes of the same plugin data, byte for byte."""
    (value,) = summary.value
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    theirs = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)])
    assert canonical(summary) == canonical(theirs)


def canonical(summary):
    """The bytes of summary with its plugin data's map fields (a session's hparams) in key order:
    protobuf serializes maps in no fixed order, inside the content bytes as anywhere."""
    copy = summary_pb2.Summary.FromString(summary.SerializeToString())
    for value in copy.value:
        data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
        value.metadata.plugin_data.content = data.SerializeToString(deterministic=True)
    return copy.SerializeToString(deterministic=True)


def test_the_tags_are_tensorboards():
    assert summaries.EXPERIMENT_TAG == metadata.EXPERIMENT_TAG
    assert summaries.SESSION_START_TAG == metadata.SESSION_START_INFO_TAG
    assert summaries.SESSION_END_TAG == metadata.SESSION_END_INFO_TAG


def test_hparams_records_are_tensorboards_byte_for_byte():
    space = Space((HParam("units", Discrete([16, 32])), HParam("lr", RealInterval(1e-3, 1e-1, log=True))))
    config = summaries.config_summary(summaries.union_config([(space, [Metric("validation", "epoch_accuracy")])]))
    assert_tensorboards(config, metadata.EXPERIMENT_TAG)
    start = summaries.session_start_summary(Trial({"units": 16, "lr": 0.01}, seed=3), "e/group", start_time=12.5)
    assert_tensorboards(start, metadata.SESSION_START_INFO_TAG)
    for status in TrialStatus:
        assert_tensorboards(summaries.session_end_summary(status, end_time=99.0), metadata.SESSION_END_INFO_TAG)


@pytest.mark.parametrize("value", [0.0, -0.0, 1.0, 0.1, -3.25, 1e-40, 3.4e38, 1e39, math.inf, -math.inf, math.nan,
                                   7, True])
def test_scalars_are_tensorboards_scalars_byte_for_byte(value):
    values = {"epoch_loss": value, "epoch_accuracy": 0.5}
    theirs = summary_pb2.Summary()
    for tag, number in values.items():
        theirs.value.extend(scalar_summary.scalar_pb(tag, float(number)).value)
    assert summaries.scalars_summary(values).SerializeToString() == theirs.SerializeToString()


def test_records_are_framed_as_tensorboards_record_writer_frames_them(tmp_path):
    from tensorboard.summary.writer.record_writer import RecordWriter as Theirs

    from hparams_lab.tb.records import RecordWriter

    records = [b"", b"x", bytes(range(256)) * 5, summaries.scalars_summary({"loss": 0.25}).SerializeToString()]
    for writer, name in ((RecordWriter, "ours"), (Theirs, "theirs")):
        with open(tmp_path / name, "wb") as file:
            framed = writer(file)
            for record in records:
                framed.write(record)
            framed.flush()
    assert (tmp_path / "ours").read_bytes() == (tmp_path / "theirs").read_bytes()
