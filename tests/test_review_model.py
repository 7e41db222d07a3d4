"""review.load on logs in the runner's layout and on hand-made oddities (no TensorFlow needed)."""

import json
import shutil

import pytest
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import metadata

import review_samples as samples
import runner_style_logs as logs
from hparams_lab.review import events, reader as review, tfrecord
from hparams_lab.core.errors import UserError

@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return samples.write_small_study(tmp_path_factory.mktemp("logs"))


def by_run(loaded):
    return {row.run: row for row in loaded.rows}


def test_hparams_tag_constants_are_tensorboards():
    assert events.EXPERIMENT_TAG == metadata.EXPERIMENT_TAG
    assert events.SESSION_START_TAG == metadata.SESSION_START_INFO_TAG
    assert events.SESSION_END_TAG == metadata.SESSION_END_INFO_TAG
    assert all(tag.startswith(events.HPARAMS_PREFIX) for tag in (metadata.EXPERIMENT_TAG, metadata.SESSION_START_INFO_TAG, metadata.SESSION_END_INFO_TAG))


def test_one_row_per_session_with_experiment_trial_and_status(study):
    rows = by_run(review.load(study))
    assert sorted(rows) == ["alpha/t1", "alpha/t2", "alpha/t3", "beta/u1"]
    assert [rows[r].experiment for r in sorted(rows)] == ["alpha", "alpha", "alpha", "beta"]
    assert rows["alpha/t1"].trial_id == "t1"
    assert rows["alpha/t1"].status == "SUCCESS"
    assert rows["alpha/t3"].status == "FAILURE"


def test_hparams_come_back_typed_as_logged(study):
    hparams = by_run(review.load(study))["alpha/t1"].hparams
    assert hparams == {"num_units": 16, "optimizer": "adam", "dropout": 0.5, "batch_norm": True}
    assert type(hparams["num_units"]) is int  # stored as float64, restored: the column is whole numbers
    assert type(hparams["dropout"]) is float
    assert type(hparams["batch_norm"]) is bool


def test_metrics_last_values_with_groups_and_best_with_step(study):
    loaded = review.load(study)
    t1 = by_run(loaded)["alpha/t1"]
    assert t1.metrics == {"best_val_accuracy": 0.75, "best_val_loss": 0.5, "final_val_accuracy": 0.625,
                          "final_val_loss": 0.75, "train/epoch_accuracy": pytest.approx(0.575),
                          "train/epoch_loss": pytest.approx(0.85),
                          "validation/epoch_accuracy": 0.625, "validation/epoch_loss": 0.75}
    assert t1.series["validation/epoch_accuracy"].best(maximize=True) == (0.75, 1)
    assert t1.series["validation/epoch_loss"].best(maximize=False) == (0.5, 1)
    assert t1.series["best_val_accuracy"].last_step == 3  # written once, at the number of epochs
    assert loaded.metric_keys[:4] == ["best_val_accuracy", "best_val_loss", "final_val_accuracy", "final_val_loss"]
    assert loaded.hparam_names == list(samples.SPACE)  # the config's order
    assert loaded.declared_metric == "best_val_accuracy"


def test_failed_trial_has_no_metrics(study):
    assert by_run(review.load(study))["alpha/t3"].metrics == {}


def test_one_experiment_alone_is_named_after_its_directory(study):
    loaded = review.load(study / "beta")
    assert [(row.experiment, row.run, row.trial_id) for row in loaded.rows] == [("beta", "u1", "u1")]


def test_nested_sessions_at_any_depth_and_status_unknown_without_end(tmp_path):
    samples.write_session(tmp_path / "a" / "b" / "c" / "run", {"x": 1.5}, [("score", 1, 0.5)])
    samples.write_session(tmp_path / "a" / "other", {"x": 2.5}, [("score", 1, 0.25)], end_status="RUNNING")
    rows = by_run(review.load(tmp_path))
    assert rows["a/b/c/run"].status == "UNKNOWN"
    assert rows["a/other"].status == "RUNNING"
    assert rows["a/b/c/run"].metrics == {"score": 0.5}
    assert rows["a/b/c/run"].trial_id is None
    assert rows["a/b/c/run"].experiment == tmp_path.name


def test_several_event_files_in_one_run_merge_in_file_order(tmp_path):
    run = tmp_path / "run"
    samples.write_session(run, {"x": 1.0}, [("score", 0, 0.5), ("score", 1, 0.9)])
    logs.write_events(run, [logs.summary_event([summary_pb2.Summary.Value(tag="score", simple_value=0.7)], step=2)])
    (row,) = review.load(tmp_path).rows
    assert row.series["score"].last == pytest.approx(0.7)
    assert row.series["score"].best(maximize=True) == (pytest.approx(0.9), 1)
    assert row.series["score"].count == 3


def test_scalars_of_a_subrun_that_is_itself_a_session_stay_with_it(tmp_path):
    samples.write_session(tmp_path / "outer", {"x": 1.0}, [("score", 1, 0.1)])
    samples.write_session(tmp_path / "outer" / "inner", {"x": 2.0}, [("score", 1, 0.2)])
    rows = by_run(review.load(tmp_path))
    assert rows["outer"].metrics == {"score": pytest.approx(0.1)}
    assert rows["outer/inner"].metrics == {"score": pytest.approx(0.2)}


def test_truncated_and_corrupted_files_in_a_logdir(study, tmp_path):
    root = tmp_path / "logs"
    shutil.copytree(study, root)
    t1 = next((root / "alpha" / "t1" / "validation").glob("events*"))
    t1.write_bytes(t1.read_bytes()[:-7])  # the last record cut short
    t2 = next((root / "alpha" / "t2" / "train").glob("events*"))
    data = bytearray(t2.read_bytes())
    fourth = tfrecord.frame_records(t2, bytes(data)).offsets[3]  # file_version, acc 0, loss 0, acc 1
    data[fourth + 14:fourth + 18] = b"\xde\xad\xbe\xef"
    t2.write_bytes(bytes(data))
    loaded = review.load(root)
    assert len(loaded.warnings) == 1 and str(t2) in loaded.warnings[0]
    rows = by_run(loaded)
    assert rows["alpha/t1"].series["validation/epoch_accuracy"].count == 3
    assert rows["alpha/t1"].series["validation/epoch_loss"].count == 2  # its last value was cut
    assert rows["alpha/t2"].series["train/epoch_accuracy"].count == 1
    assert rows["alpha/t2"].series["train/epoch_loss"].count == 2
    assert rows["beta/u1"].metrics["best_val_accuracy"] == 0.5


def test_no_hparams_data_is_a_user_error(tmp_path):
    logs.write_events(tmp_path / "run", [logs.summary_event([logs.scalar_value("loss", 1.0)])])
    with pytest.raises(UserError, match="no HParams sessions"):
        review.load(tmp_path)


def test_no_event_files_or_no_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no TensorBoard event files"):
        review.load(tmp_path)
    with pytest.raises(UserError, match="no such directory"):
        review.load(tmp_path / "missing")


def test_maximize_and_minimize_by_tag_name_and_by_flags():
    assert review.maximizes("validation/epoch_accuracy")
    assert not review.maximizes("validation/epoch_loss")
    assert not review.maximizes("mean_squared_error")
    assert review.maximizes("val_loss", maximize=("val_loss",))
    assert not review.maximizes("validation/auc", minimize=("auc",))


def test_directions_come_from_experiment_json_and_old_or_odd_entries_are_ignored(tmp_path):
    metrics = [{"tag": "foo", "group": "", "direction": "min"},
               {"tag": "epoch_bar", "group": "validation", "direction": "max"},
               {"tag": "epoch_loss", "group": "validation"},  # before directions were recorded
               "best_val_accuracy", {"tag": "baz", "direction": ["min"]}, {"tag": 3, "direction": "min"}]
    (tmp_path / "experiment.json").write_text(json.dumps({"metrics": metrics}))
    samples.write_session(tmp_path / "run", {"x": 1}, [("foo", 1, 0.5)], end_status="SUCCESS")
    recorded = review.load(tmp_path).directions
    assert recorded == {"foo": False, "validation/epoch_bar": True}
    assert not review.maximizes("foo", recorded=recorded)
    assert not review.maximizes("validation/epoch_loss", recorded=recorded)  # the name rule
    assert review.maximizes("foo", maximize=("foo",), recorded=recorded)  # flags first
