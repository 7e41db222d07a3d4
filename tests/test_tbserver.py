"""A real TensorBoard, asked through its HParams HTTP API.

These tests check the harness (tests/tbserver.py) on logs written the way
TensorBoard's HParams tutorial writes them. Each server start takes 3-4 s.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.tbserver import (
    TensorBoardServer,
    group_hparams,
    group_metric_values,
    hparam_names,
    metric_names,
)

pytestmark = pytest.mark.slow

TUTORIAL_RUNS = {  # run name -> (hparams, accuracy)
    "run-0": ({"num_units": 16, "dropout": 0.1, "optimizer": "adam"}, 0.8),
    "run-1": ({"num_units": 32, "dropout": 0.2, "optimizer": "sgd"}, 0.7),
    "run-2": ({"num_units": 16, "dropout": 0.2, "optimizer": "sgd"}, 0.6),
}


def write_tutorial_logs(logdir: Path) -> None:
    """As in TensorBoard's HParams tutorial: tf.summary writers, config at the root."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp_api

    hparams = {
        "num_units": hp_api.HParam("num_units", hp_api.Discrete([16, 32])),
        "dropout": hp_api.HParam("dropout", hp_api.RealInterval(0.1, 0.2)),
        "optimizer": hp_api.HParam("optimizer", hp_api.Discrete(["adam", "sgd"])),
    }
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hp_api.hparams_config(
            hparams=list(hparams.values()),
            metrics=[hp_api.Metric("accuracy", display_name="Accuracy")],
        )
    for run, (values, accuracy) in TUTORIAL_RUNS.items():
        with tf.summary.create_file_writer(str(logdir / run)).as_default():
            hp_api.hparams({hparams[name]: v for name, v in values.items()})
            tf.summary.scalar("accuracy", accuracy, step=1)


@pytest.fixture(scope="module")
def tutorial_logdir(tmp_path_factory) -> Path:
    logdir = tmp_path_factory.mktemp("tutorial")
    write_tutorial_logs(logdir)
    return logdir


@pytest.fixture(scope="class")
def tutorial(tutorial_logdir):
    """One server (load_fast auto, what users get), stopped after the class."""
    with TensorBoardServer(tutorial_logdir) as tb:
        experiment, groups = tb.wait_for_sessions(len(TUTORIAL_RUNS))
        yield tb, experiment, groups


class TestTutorialLogs:

    def test_hparams_and_metrics(self, tutorial):
        _tb, experiment, _groups = tutorial
        assert hparam_names(experiment) == {"num_units", "dropout", "optimizer"}
        assert metric_names(experiment) == {("", "accuracy")}

    def test_one_group_per_run_with_its_values(self, tutorial):
        _tb, _experiment, groups = tutorial
        by_session = {g["sessions"][0]["name"]: g for g in groups["sessionGroups"]}
        assert [len(g["sessions"]) for g in groups["sessionGroups"]] == [1, 1, 1]
        assert by_session.keys() == TUTORIAL_RUNS.keys()
        for run, (values, accuracy) in TUTORIAL_RUNS.items():
            assert group_hparams(by_session[run]) == values
            assert group_metric_values(by_session[run]) == pytest.approx({("", "accuracy"): accuracy})
            assert by_session[run]["sessions"][0]["status"] == "STATUS_UNKNOWN"  # no session_end

    def test_wait_for_sessions_times_out_showing_the_last_responses(self, tutorial):
        tb, _experiment, _groups = tutorial
        with pytest.raises(AssertionError, match="did not load into 4 complete session groups") as info:
            tb.wait_for_sessions(4, timeout=0.5)
        assert "last session_groups" in str(info.value)
        assert "run-2" in str(info.value)


def _alive(pid: int) -> bool:
    """Running, or stopped but not yet reaped (zombie) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            if ppid == pid:
                kids.append(int(entry))
    return kids


def test_exit_stops_tensorboard_and_its_data_server_when_the_test_fails(tutorial_logdir):
    with pytest.raises(RuntimeError, match="test failed"):
        with TensorBoardServer(tutorial_logdir, load_fast="true") as tb:
            tb.wait_for_sessions(len(TUTORIAL_RUNS))
            pids = [tb.pid, *_children(tb.pid)]
            raise RuntimeError("test failed")
    assert len(pids) >= 2, "expected the data server as a child of TensorBoard"
    assert [pid for pid in pids if _alive(pid)] == []


def test_server_refuses_requests_outside_the_with_block(tmp_path):
    tb = TensorBoardServer(tmp_path)
    with pytest.raises(RuntimeError, match="not running"):
        tb.experiment()
