"""Real tiny studies of each task, seen through a real TensorBoard's HParams API and `review`.

Regression ranks by a loss or MAE ascending, binary by AUC descending; every declared metric
has a value in every successful session, with the direction experiment.json records.
One module-scoped logdir: a CLI study per named data set, API studies with arrays, tf.data
and several outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hparams_lab import Discrete, HParam, Space, run_study
from tests.tbserver import TensorBoardServer, metric_names, session_metric_values

ROOT = Path(__file__).resolve().parents[1]
SPACE = Space([HParam("units", Discrete([8, 32])), HParam("learning_rate", Discrete([0.01]))])

pytestmark = pytest.mark.slow


def cli(logs: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "run.py", "--logdir", str(logs), "--epochs", "2", *args],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    logs = tmp_path_factory.mktemp("tasks") / "logs"
    cli(logs, "--data", "diabetes", "--space", "examples/regression.toml", "--trials", "2", "--experiment",
        "regression", "--metric", "best_val_mae")
    cli(logs, "--data", "breast_cancer", "--trials", "2", "--experiment", "binary")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype("float32")
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] + x[:, 3] > 0], axis=1).astype("int64")
    run_study(SPACE, data=(x, y), strategy="grid", epochs=2, logdir=logs, experiment="multilabel")
    return logs


def record(experiment_dir: Path) -> dict:
    return json.loads((experiment_dir / "experiment.json").read_text())


def trials_of(experiment_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in experiment_dir.glob("*/trial.json")}


@pytest.mark.parametrize("experiment, task, metric, loss", [
    ("regression", "regression", "best_val_mae", "mse"),
    ("binary", "binary", "best_val_auc", "binary_crossentropy"),
])
def test_each_task_records_its_defaults(logs, experiment, task, metric, loss):
    found = record(logs / experiment)
    assert found["settings"]["task"] == task
    assert found["metric"] == metric
    directions = {m["tag"]: m["direction"] for m in found["metrics"] if not m["group"]}
    if task == "regression":
        assert directions["best_val_mae"] == "min" and directions["best_val_loss"] == "min"
    else:
        assert directions["best_val_auc"] == "max" and directions["best_val_accuracy"] == "max"
        assert directions["best_val_loss"] == "min"


def test_tensorboard_shows_every_declared_metric_in_every_session(logs):
    """One TensorBoard over the whole logdir: the union config declares every task's metrics,
    and each session has a value for each metric of its own experiment."""
    experiments = ("regression", "binary", "multilabel")
    declared = {e: {(m["group"], m["tag"]) for m in record(logs / e)["metrics"]} for e in experiments}
    trials = {f"{e}/{run}": trial for e in experiments for run, trial in trials_of(logs / e).items()}

    def required(session_name: str) -> set:
        ok = trials[session_name]["status"] == "SUCCESS"
        return declared[session_name.split("/")[0]] if ok else set()

    with TensorBoardServer(logs) as tb:
        shown, groups = tb.wait_for_sessions(len(trials), metrics=required)
    assert metric_names(shown) == set().union(*declared.values())
    for group in groups["sessionGroups"]:
        for session in group["sessions"]:
            trial = trials[session["name"]]
            values = session_metric_values(session)
            assert set(values) >= declared[session["name"].split("/")[0]]
            for name, value in trial["metrics"].items():
                assert values[("", name)] == pytest.approx(value, rel=1e-6)


def review(logs: Path, *args: str) -> list[dict]:
    done = subprocess.run([sys.executable, "run.py", "review", str(logs), "--format", "json", *args],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_review_ranks_mae_ascending_and_auc_descending(logs):
    maes = [run["metrics"]["best_val_mae"] for run in review(logs / "regression")]
    assert maes == sorted(maes) and len(maes) == 2
    aucs = [run["metrics"]["best_val_auc"] for run in review(logs / "binary")]
    assert aucs == sorted(aucs, reverse=True) and len(aucs) == 2
    assert all(0.0 <= auc <= 1.0 for auc in aucs)


def _regression_arrays(n=200, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = x @ rng.normal(size=(4, outputs)).astype("float32")
    return x, (y[:, 0] if outputs == 1 else y)


def test_a_notebook_study_of_arrays_in_memory(tmp_path):
    x, y = _regression_arrays()
    study = run_study(SPACE, data=(x, y), strategy="grid", epochs=2, logdir=tmp_path, experiment="arrays")
    assert study.metric == "best_val_loss"
    assert [r.status.value for r in study.ranked()] == ["SUCCESS", "SUCCESS"]
    losses = [r.metrics["best_val_loss"] for r in study.ranked()]
    assert losses == sorted(losses)
    assert {"best_val_mae", "final_val_mae"} <= set(study.best.metrics)
    assert record(tmp_path / "arrays")["data"] == {"kind": "memory", "type": "arrays"}


def test_several_regression_outputs_get_a_head_each(tmp_path):
    x, y = _regression_arrays(outputs=3)
    study = run_study(SPACE, data={"x_train": x[:150], "y_train": y[:150], "x_val": x[150:], "y_val": y[150:]},
                      strategy="grid", trials=1, epochs=1, logdir=tmp_path, experiment="multi")
    (result,) = study.results
    assert result.status.value == "SUCCESS", result.error
    assert record(tmp_path / "multi")["settings"]["task"] == "regression"


def test_multilabel_from_two_dimensional_zeros_and_ones(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype("float32")
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] + x[:, 3] > 0], axis=1).astype("int64")
    study = run_study(SPACE, data=(x, y), strategy="grid", trials=1, epochs=2, logdir=tmp_path, experiment="ml")
    (result,) = study.results
    assert result.status.value == "SUCCESS", result.error
    assert study.metric == "best_val_auc"
    assert {"best_val_binary_accuracy", "best_val_auc"} <= set(result.metrics)


def test_tf_data_datasets_batched_by_the_user(tmp_path):
    import tensorflow as tf

    x, y = _regression_arrays()
    train = tf.data.Dataset.from_tensor_slices((x[:160], y[:160])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[160:], y[160:])).batch(16)
    study = run_study(SPACE, data=(train, val), strategy="grid", trials=1, epochs=2, logdir=tmp_path,
                      experiment="tfdata", metric="best_val_mae")
    (result,) = study.results
    assert result.status.value == "SUCCESS", result.error
    assert result.epochs == 2 and result.metrics["best_val_mae"] > 0
    assert record(tmp_path / "tfdata")["data"] == {"kind": "memory", "type": "tf.data"}


def two_headed(hparams, input_shape, n_outputs):
    """Two inputs (dicts of arrays), two named regression outputs."""
    import keras

    inputs = {name: keras.Input(shape=shape, name=name) for name, shape in input_shape.items()}
    joined = keras.layers.Concatenate()(list(inputs.values()))
    hidden = keras.layers.Dense(hparams["units"], activation="relu")(joined)
    outputs = {name: keras.layers.Dense(width, name=name)(hidden) for name, width in n_outputs.items()}
    return keras.Model(inputs, outputs)


def test_several_inputs_and_outputs_as_dicts_of_arrays(tmp_path):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(200, 3)).astype("float32"), rng.normal(size=(200, 2)).astype("float32")
    y = {"price": a.sum(axis=1), "area": np.stack([b[:, 0], a[:, 0] - b[:, 1]], axis=1)}
    study = run_study(SPACE, data=({"a": a, "b": b}, y), model=two_headed, strategy="grid", trials=1, epochs=2,
                      logdir=tmp_path, experiment="dicts", metric="best_val_price_mae")
    (result,) = study.results
    assert result.status.value == "SUCCESS", result.error
    assert {"best_val_price_loss", "best_val_area_mae", "best_val_loss"} <= set(result.metrics)
    directions = {m["tag"]: m["direction"] for m in record(tmp_path / "dicts")["metrics"]}
    assert directions["best_val_price_mae"] == "min" and directions["epoch_area_loss"] == "min"


def test_loss_and_metrics_as_keras_objects(tmp_path):
    import keras

    x, y = _regression_arrays()
    study = run_study(SPACE, data=(x, y), strategy="grid", trials=1, epochs=2, logdir=tmp_path, experiment="objects",
                      loss=keras.losses.Huber(), metrics=[keras.metrics.RootMeanSquaredError(name="rmse")],
                      metric="best_val_rmse")
    (result,) = study.results
    assert result.status.value == "SUCCESS", result.error
    assert {"best_val_rmse", "best_val_loss"} <= set(result.metrics) and "best_val_mae" not in result.metrics
    found = record(tmp_path / "objects")
    assert found["settings"]["loss"] == "huber_loss" and found["settings"]["metrics"] == ["rmse"]
    assert {m["tag"]: m["direction"] for m in found["metrics"]}["best_val_rmse"] == "min"
