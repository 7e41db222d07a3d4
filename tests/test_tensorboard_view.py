"""Real studies, shown by a real TensorBoard: every hparam, metric, session and status.

Two experiments with different spaces share one logdir: A is the CLI's default
study, B a Python-API grid with a user model that raises for one hparam value.
Both the single-experiment views and the whole-logdir view must be complete.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hparams_lab import Discrete, HParam, Space, run_study
from hparams_lab.core.metrics import declared_metrics
from tests.tbserver import (
    TensorBoardServer,
    group_hparams,
    groups_by_name,
    hparam_names,
    metric_names,
    session_metric_values,
    session_statuses,
)

ROOT = Path(__file__).resolve().parents[1]
DECLARED = {(m.group, m.tag) for m in declared_metrics(has_test=False)}
A_HPARAMS = {"units", "learning_rate", "optimizer", "extra_layer", "dropout"}
B_HPARAMS = {"width", "activation"}

pytestmark = pytest.mark.slow


def flaky_model(hparams, input_shape, n_classes):
    import keras

    if hparams["width"] == 99:
        raise RuntimeError("width 99 is cursed")
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(hparams["width"], activation=hparams["activation"]),
            keras.layers.Dense(n_classes, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    logs = tmp_path_factory.mktemp("tb") / "logs"
    cli = subprocess.run(
        [sys.executable, "run.py", "--trials", "3", "--epochs", "2", "--logdir", str(logs), "--experiment", "A"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert "3/3 trials succeeded" in cli.stdout
    space = Space([HParam("width", Discrete([8, 99])), HParam("activation", Discrete(["relu", "tanh"]))])
    study = run_study(space, model=flaky_model, strategy="grid", epochs=1, logdir=logs, experiment="B")
    assert [r.status.value for r in study.results] == ["SUCCESS", "SUCCESS", "FAILURE", "FAILURE"]
    return logs


def trials_of(experiment_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in experiment_dir.glob("*/trial.json")}


def required_metrics(trials: dict[str, dict]):
    """Every declared metric for a successful session; none for a failed one."""
    def required(session_name: str) -> set:
        trial = trials[Path(session_name).name]
        return DECLARED if trial["status"] == "SUCCESS" else set()
    return required


def check_sessions(session_groups: dict, trials: dict[str, dict], prefix: str = "") -> None:
    statuses = session_statuses(session_groups)
    assert statuses == {
        prefix + tid: "STATUS_" + trial["status"] for tid, trial in trials.items()
    }
    for group in groups_by_name(session_groups).values():
        (session,) = group["sessions"]  # one run per trial: no repeats here
        trial = trials[Path(session["name"]).name]
        assert group_hparams(group) == pytest.approx(trial["hparams"])
        values = session_metric_values(session)
        if trial["status"] == "SUCCESS":
            assert set(values) >= DECLARED
            for name, value in trial["metrics"].items():
                assert values[("", name)] == pytest.approx(value, rel=1e-6)


def test_single_experiment_view_is_complete(logs):
    trials = trials_of(logs / "A")
    with TensorBoardServer(logs / "A") as tb:
        experiment, groups = tb.wait_for_sessions(3, metrics=required_metrics(trials))
    assert hparam_names(experiment) == A_HPARAMS
    assert metric_names(experiment) == DECLARED
    check_sessions(groups, trials)


def test_failed_trials_show_as_failure(logs):
    trials = trials_of(logs / "B")
    with TensorBoardServer(logs / "B") as tb:
        experiment, groups = tb.wait_for_sessions(4, metrics=required_metrics(trials))
    assert hparam_names(experiment) == B_HPARAMS
    check_sessions(groups, trials)
    assert sorted(session_statuses(groups).values()) == ["STATUS_FAILURE"] * 2 + ["STATUS_SUCCESS"] * 2


def test_whole_logdir_view_shows_both_experiments(logs):
    a, b = trials_of(logs / "A"), trials_of(logs / "B")
    trials = {**a, **b}
    prefixed = {**{f"A/{k}": v for k, v in a.items()}, **{f"B/{k}": v for k, v in b.items()}}

    def required(session_name: str) -> set:
        return required_metrics(trials)(session_name)

    with TensorBoardServer(logs) as tb:
        experiment, groups = tb.wait_for_sessions(7, metrics=required)
    assert hparam_names(experiment) == A_HPARAMS | B_HPARAMS
    assert metric_names(experiment) == DECLARED
    # Declared domains, not values seen: only the root union config can say this
    # (seed 0's first three random trials all drew sgd).
    assert {t["hparams"]["optimizer"] for t in a.values()} == {"sgd"}
    infos = {info["name"]: info for info in experiment["hparamInfos"]}
    assert sorted(infos["optimizer"]["domainDiscrete"]) == ["adam", "sgd"]
    assert infos["learning_rate"]["domainInterval"] == {"minValue": 0.001, "maxValue": 0.01}
    statuses = session_statuses(groups)
    assert statuses == {name: "STATUS_" + t["status"] for name, t in prefixed.items()}
    # Session groups are scoped to their experiment: equal hparams elsewhere never merge in.
    assert {name.split("/")[0] for name in groups_by_name(groups)} == {"A", "B"}
    for group in groups_by_name(groups).values():
        (session,) = group["sessions"]
        trial = prefixed[session["name"]]
        assert group_hparams(group) == pytest.approx(trial["hparams"])


def test_review_reads_the_runner_logs_exactly(logs):
    """`review` agrees with every trial.json: ids, experiments, statuses, typed hparams, metrics."""
    out = subprocess.run(
        [sys.executable, "run.py", "review", str(logs), "--format", "json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    rows = {row["trial_id"]: row for row in json.loads(out)}
    expected = {**{k: ("A", v) for k, v in trials_of(logs / "A").items()},
                **{k: ("B", v) for k, v in trials_of(logs / "B").items()}}
    assert set(rows) == set(expected)
    for trial_id, (experiment, trial) in expected.items():
        row = rows[trial_id]
        assert row["experiment"] == experiment
        assert row["status"] == trial["status"]
        assert row["hparams"] == trial["hparams"]  # ints, floats, strings and bools as logged
        for name, value in trial["metrics"].items():
            assert row["metrics"][name] == pytest.approx(value, rel=1e-6)
        if trial["status"] == "SUCCESS":
            assert row["best"]["validation/epoch_accuracy"]["value"] == pytest.approx(
                trial["metrics"]["best_val_accuracy"], rel=1e-6
            )
