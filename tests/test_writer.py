"""Proto builders (pure) and the root-config file handling."""

from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from hparams_lab.core.metrics import Metric
from hparams_lab.core.space import Discrete, HParam, IntInterval, RealInterval, Space
from hparams_lab.core.trial import Trial, TrialStatus
from hparams_lab.tb.eventfile import EventFile
from hparams_lab.tb.summaries import (
    CONFIG_RUN_PREFIX,
    CONFIG_SUFFIX,
    hparam_info,
    merge_hparam_infos,
    scalars_summary,
    session_end_summary,
    session_group,
    session_start_summary,
    union_config,
)
from hparams_lab.tb.writer import write_union_config


def plugin_data(summary):
    (value,) = summary.value
    assert value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME
    return value.tag, plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)


def test_session_start_carries_typed_hparams_and_group():
    trial = Trial({"units": 32, "lr": 0.01, "optimizer": "adam", "extra": True}, seed=0)
    tag, data = plugin_data(session_start_summary(trial, session_group("exp", trial), start_time=5.0))
    assert tag == metadata.SESSION_START_INFO_TAG
    info = data.session_start_info
    assert info.group_name == f"exp/{trial.group[:12]}"
    assert info.start_time_secs == 5.0
    assert info.hparams["units"].number_value == 32
    assert info.hparams["lr"].number_value == 0.01
    assert info.hparams["optimizer"].string_value == "adam"
    assert info.hparams["extra"].bool_value is True


def test_session_end_carries_the_status():
    for status, expected in [(TrialStatus.SUCCESS, api_pb2.STATUS_SUCCESS), (TrialStatus.FAILURE, api_pb2.STATUS_FAILURE)]:
        tag, data = plugin_data(session_end_summary(status, end_time=7.0))
        assert tag == metadata.SESSION_END_INFO_TAG
        assert data.session_end_info.status == expected


def test_scalars_are_tensor_summaries():
    summary = scalars_summary({"best_val_accuracy": 0.5, "final_val_loss": 1.25})
    assert [(v.tag, v.tensor.float_val[0], v.metadata.plugin_data.plugin_name) for v in summary.value] == [
        ("best_val_accuracy", 0.5, "scalars"),
        ("final_val_loss", 1.25, "scalars"),
    ]


def test_hparam_info_domains():
    info = hparam_info("optimizer", Discrete(["sgd", "adam"]))
    assert info.type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in info.domain_discrete.values] == ["adam", "sgd"]
    info = hparam_info("units", IntInterval(16, 64))
    assert info.type == api_pb2.DATA_TYPE_FLOAT64
    assert (info.domain_interval.min_value, info.domain_interval.max_value) == (16, 64)


def test_merge_unions_domains():
    a = hparam_info("units", Discrete([16, 32]))
    b = hparam_info("units", Discrete([32, 64]))
    assert [v.number_value for v in merge_hparam_infos(a, b).domain_discrete.values] == [16, 32, 64]
    c = hparam_info("units", IntInterval(8, 128))
    merged = merge_hparam_infos(a, c)
    assert (merged.domain_interval.min_value, merged.domain_interval.max_value) == (8, 128)
    d = hparam_info("units", Discrete(["small", "big"]))
    conflict = merge_hparam_infos(a, d)
    assert conflict.type == api_pb2.DATA_TYPE_UNSET
    assert not conflict.HasField("domain_discrete") and not conflict.HasField("domain_interval")


def test_union_config_holds_every_hparam_and_metric_once():
    a = Space((HParam("units", Discrete([16, 32])), HParam("lr", RealInterval(1e-3, 1e-2, log=True))))
    b = Space((HParam("filters", Discrete([8, 16])), HParam("units", Discrete([64]))))
    experiment = union_config([(a, [Metric("best_val_accuracy"), Metric("epoch_loss", "train")]),
                               (b, [Metric("best_val_accuracy"), Metric("test_accuracy")])])
    assert [h.name for h in experiment.hparam_infos] == ["units", "lr", "filters"]
    assert [v.number_value for v in experiment.hparam_infos[0].domain_discrete.values] == [16, 32, 64]
    assert [(m.name.group, m.name.tag) for m in experiment.metric_infos] == [
        ("", "best_val_accuracy"), ("train", "epoch_loss"), ("", "test_accuracy")
    ]


def test_union_config_is_replaced_by_one_in_a_new_run_directory(tmp_path):
    space = Space((HParam("units", Discrete([16])),))
    legacy = EventFile(tmp_path, CONFIG_SUFFIX)  # where earlier versions kept it: the root
    legacy.close()
    first = write_union_config(tmp_path, union_config([(space, [Metric("x")])]))
    (tmp_path / "A" / "run").mkdir(parents=True)  # an experiment's runs are never touched
    second = write_union_config(tmp_path, union_config([(space, [Metric("y")])]))
    assert first.parent != second.parent and second.parent.parent == tmp_path
    assert second.parent.name.startswith(CONFIG_RUN_PREFIX)
    assert list(tmp_path.rglob(f"*{CONFIG_SUFFIX}")) == [second]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["A", second.parent.name])


def test_a_config_directory_holding_something_else_is_left_in_place(tmp_path):
    space = Space((HParam("units", Discrete([16])),))
    first = write_union_config(tmp_path, union_config([(space, [Metric("x")])]))
    (first.parent / "notes.txt").write_text("mine")
    second = write_union_config(tmp_path, union_config([(space, [Metric("y")])]))
    assert (first.parent / "notes.txt").read_text() == "mine" and not first.exists()
    assert list(tmp_path.rglob(f"*{CONFIG_SUFFIX}")) == [second]
