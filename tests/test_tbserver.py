"""A real TensorBoard, asked through its HParams HTTP API.

The first tests check the harness (tests/tbserver.py) on logs written the way
TensorBoard's HParams tutorial writes them. The scenario tests document the
TensorBoard behaviour our log layout relies on (DESIGN.md, on-disk layout):
where the experiment config may live, how sessions group, which status a
session shows. One server per scenario; each start takes about 3-4 s.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tensorboard.plugins.hparams import summary_v2 as hp

from tests import layouts
from tests.tblogs import Run, write_config, write_run
from tests.tbserver import (
    TensorBoardServer,
    group_hparams,
    group_metric_values,
    groups_by_name,
    hparam_names,
    metric_names,
    session_statuses,
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


# -- the layout scenarios ---------------------------------------------------
def _assert_complete(experiment, groups, exps):
    """Every hparam, every metric and every session's values of `exps`."""
    assert hparam_names(experiment) == set().union(*(layouts.hparam_names_of(e) for e in exps))
    assert metric_names(experiment) == set().union(*(layouts.METRICS[e] for e in exps))
    by_name = groups_by_name(groups)
    expected = {g: v for e in exps for g, v in layouts.expected_values(e).items()}
    assert by_name.keys() == expected.keys()
    for exp in exps:
        for run in layouts.RUNS[exp]:
            group = by_name[run.group]
            assert group_hparams(group) == run.hparams
            assert group_metric_values(group) == pytest.approx(expected[run.group])


def _serve(logdir, n_groups, exps, load_fast="auto"):
    """Start a server, wait until each session has its experiment's metrics."""
    with TensorBoardServer(logdir, load_fast=load_fast) as tb:
        return tb.wait_for_sessions(
            n_groups, metrics=lambda session: _metrics_of_session(session, exps))


def _metrics_of_session(session_name: str, exps) -> set:
    exp = session_name.split("/")[0] if len(exps) > 1 else exps[0]
    return layouts.METRICS[exp]


@pytest.fixture(scope="module")
def union_run_logs(tmp_path_factory) -> Path:
    return layouts.write_layout(tmp_path_factory.mktemp("b") / "logs", "union_run")


@pytest.mark.parametrize("load_fast", ["auto", "false"])
def test_union_config_in_its_own_run_whole_logdir_is_complete(union_run_logs, load_fast):
    """(b) one config, alone in a hidden run, declaring all hparams and metrics of both."""
    experiment, groups = _serve(union_run_logs, 4, ("expA", "expB"), load_fast)
    _assert_complete(experiment, groups, ("expA", "expB"))


def test_union_config_single_experiment_is_inferred_completely(union_run_logs):
    """(b) --logdir logs/expA sees no config: hparams and metrics are inferred."""
    experiment, groups = _serve(union_run_logs / "expA", 2, ("expA",))
    _assert_complete(experiment, groups, ("expA",))
    infos = {info["name"]: info for info in experiment["hparamInfos"]}
    # Inferred domains: strings discrete, numbers an interval over the values seen.
    assert sorted(infos["optimizer"]["domainDiscrete"]) == ["adam", "sgd"]
    assert infos["units"]["domainInterval"] == {"minValue": 16.0, "maxValue": 32.0}


# Layouts (a) one config per experiment (one experiment's columns are lost in the
# whole-logdir view) and (c) no config (complete, but no declared domains) are
# measured by hand: python -m tests.layout_experiment (results in its docstring).


def test_equal_group_names_aggregate_into_one_group(tmp_path):
    """(d) sessions with the same hparams_pb trial_id form one session group
    whose metric values are the sessions' average; without a trial_id, the
    default (a hash of the hparams) groups equal hparams too."""
    logs = tmp_path / "logs"
    write_config(logs, [hp.HParam("units"), hp.HParam("seed")], [hp.Metric("best_val_accuracy")])
    for name, units, seed, group, acc in [
        ("r1", 16, 1, "g16", 0.6), ("r2", 16, 2, "g16", 0.8),    # repeats, own seed
        ("r3", 32, 1, "g32", 0.7),
        ("r4", 64, 1, None, 0.5), ("r5", 64, 1, None, 0.9),      # equal hparams, no id
    ]:
        write_run(logs / "exp", Run(name, {"units": units, "seed": seed}, group=group,
                                    root={"best_val_accuracy": acc}))
    with TensorBoardServer(logs) as tb:
        _experiment, groups = tb.wait_for_sessions(3)
    by_name = groups_by_name(groups)
    assert [s["name"] for s in by_name["g16"]["sessions"]] == ["exp/r1", "exp/r2"]
    assert group_metric_values(by_name["g16"]) == pytest.approx({("", "best_val_accuracy"): 0.7})
    assert [s["name"] for s in by_name["g32"]["sessions"]] == ["exp/r3"]
    (hashed,) = by_name.keys() - {"g16", "g32"}
    assert [s["name"] for s in by_name[hashed]["sessions"]] == ["exp/r4", "exp/r5"]
    # A group shows the hparams of one of its sessions (whichever TensorBoard
    # met first): hparams that differ inside a group (seed) are not all shown.
    assert group_hparams(by_name["g16"]) in ({"units": 16.0, "seed": 1.0}, {"units": 16.0, "seed": 2.0})


def test_session_status_comes_from_session_end(tmp_path):
    """(e) no session_end -> STATUS_UNKNOWN (not RUNNING); FAILURE is shown as
    FAILURE, also for a crashed trial that logged no metric at all."""
    logs = tmp_path / "logs"
    write_config(logs, [hp.HParam("units")], [hp.Metric("best_val_accuracy")])
    metrics = {"best_val_accuracy": 0.5}
    for run in [
        Run("ok", {"units": 1}, root=metrics, status="STATUS_SUCCESS"),
        Run("failed", {"units": 2}, root=metrics, status="STATUS_FAILURE"),
        Run("crashed", {"units": 3}, root={}, status="STATUS_FAILURE"),
        Run("no_end", {"units": 4}, root=metrics, status=None),
        Run("running", {"units": 5}, root=metrics, status="STATUS_RUNNING"),
    ]:
        write_run(logs / "exp", run)
    with TensorBoardServer(logs) as tb:
        _experiment, groups = tb.wait_for_sessions(
            5, metrics=lambda s: set() if s.endswith("crashed") else {("", "best_val_accuracy")})
    assert session_statuses(groups) == {
        "exp/ok": "STATUS_SUCCESS",
        "exp/failed": "STATUS_FAILURE",
        "exp/crashed": "STATUS_FAILURE",
        "exp/no_end": "STATUS_UNKNOWN",
        "exp/running": "STATUS_RUNNING",
    }
