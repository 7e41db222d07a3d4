"""A user's own training: a compiled model keeps its loss and metrics, --metrics, user callbacks, a fit of
one's own, and the mistakes the first model's evaluation finds before anything is written.

Real Keras fits on digits, 1-2 epochs, one trial each.
"""

import json
from pathlib import Path

import pytest

from hparams_lab import UserError
from hparams_lab.core.space import Discrete, HParam, Space
from hparams_lab.study.run import run_study

pytestmark = pytest.mark.slow

ONE = Space((HParam("units", Discrete([16])),))

USER_CODE = '''
import keras


def compiled(hparams, input_shape, n_outputs):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(n_outputs, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["sparse_top_k_categorical_accuracy"])
    return model


def callbacks(hparams, run_dir):
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1),
            keras.callbacks.CSVLogger(str(run_dir / "epochs.csv"))]


def fit(hparams, model, data, callbacks):
    weights = {c: 1.0 + 0.1 * c for c in range(10)}
    return model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=2,
                     batch_size=32, class_weight=weights, callbacks=callbacks, verbose=0)


def picky(hparams, input_shape, n_outputs):
    if hparams["units"] == 16:
        raise ValueError("16 units are not allowed")
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(n_outputs, activation="softmax")])


def too_narrow(hparams, input_shape, n_outputs):
    model = keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def blind_fit(hparams, model, data, callbacks):
    return model.fit(data.x_train, data.y_train, epochs=1, callbacks=callbacks, verbose=0)


def careless_fit(hparams, model, data, callbacks):
    return model.fit(data.x_train, data.y_train, epochs=1, verbose=0)
'''


@pytest.fixture
def user_code(write_module):
    """A module 'own_training_<n>' on sys.path holding USER_CODE; returns its name."""
    return write_module("own_training", USER_CODE)


def study(tmp_path, **options):
    return run_study(ONE, strategy="grid", logdir=tmp_path / "logs", experiment="e", **{"epochs": 2, **options})


def record(result):
    return json.loads((result.experiment_dir / "experiment.json").read_text())


def test_a_compiled_user_model_keeps_its_loss_and_metrics(tmp_path, user_code):
    result = study(tmp_path, model=f"{user_code}:compiled", metric="best_val_sparse_top_k_categorical_accuracy")
    (trial,) = result.results
    assert trial.status.value == "SUCCESS", trial.error
    assert 0.5 < trial.metrics["best_val_sparse_top_k_categorical_accuracy"] <= 1.0
    assert "best_val_accuracy" not in trial.metrics  # not compiled in: the model's own compile stands
    declared = {m["tag"] for m in record(result)["metrics"]}
    assert {"best_val_sparse_top_k_categorical_accuracy", "epoch_sparse_top_k_categorical_accuracy"} <= declared


def test_metrics_by_name_are_compiled_logged_and_rankable(tmp_path):
    result = study(tmp_path, metrics="accuracy,sparse_top_k_categorical_accuracy", metric="final_val_loss")
    (trial,) = result.results
    assert {"best_val_accuracy", "best_val_sparse_top_k_categorical_accuracy", "final_val_loss"} <= set(trial.metrics)
    assert record(result)["settings"]["metrics"] == ["accuracy", "sparse_top_k_categorical_accuracy"]


def test_user_callbacks_run_in_every_trial_with_the_run_directory(tmp_path, user_code):
    result = study(tmp_path, callbacks=f"{user_code}:callbacks")
    (trial,) = result.results
    rows = (trial.run_dir / "epochs.csv").read_text().splitlines()
    assert rows[0].startswith("epoch") and len(rows) == 3  # a header and 2 epochs
    assert "learning_rate" in rows[0]  # ReduceLROnPlateau ran before it
    assert (trial.run_dir / "train").is_dir() and trial.metrics["best_val_accuracy"] > 0.2
    assert record(result)["settings"]["callbacks"] == f"{user_code}:callbacks"


def test_a_fit_of_ones_own_trains_with_hparams_labs_callbacks(tmp_path, user_code):
    result = study(tmp_path, fit=f"{user_code}:fit", epochs=5)
    (trial,) = result.results
    assert trial.status.value == "SUCCESS", trial.error
    assert trial.epochs == 2  # the fit's own epochs
    assert (trial.run_dir / "validation").is_dir()  # per-epoch scalars came through our callbacks
    assert trial.metrics["best_val_accuracy"] > 0.2  # 10 classes: 0.1 by chance


def test_a_fit_without_validation_data_fails_the_trial_saying_so(tmp_path, user_code):
    (trial,) = study(tmp_path, fit=f"{user_code}:blind_fit").results
    assert trial.status.value == "FAILURE" and trial.metrics == {}
    assert "trained without validation data" in trial.error and "validation_data=" in trial.error


def test_a_fit_that_drops_the_callbacks_fails_the_trial_saying_so(tmp_path, user_code):
    result = study(tmp_path, fit=f"{user_code}:careless_fit")
    (trial,) = result.results
    assert trial.status.value == "FAILURE"
    assert "trained without hparams_lab's callbacks" in trial.error


@pytest.mark.parametrize("options, message", [
    ({"loss": "no_such_loss"}, "unknown loss 'no_such_loss'"),
    ({"metrics": "accuracy,no_such_metric"}, "unknown metric 'no_such_metric'"),
    ({"metric": "best_val_auc"}, "--metric 'best_val_auc': the model does not log it"),
    ({"loss": "binary_crossentropy"}, "cannot be evaluated on the validation data"),
    ({"metrics": "accuracy,auc"}, "'auc' needs binary or multilabel labels"),
    ({"model": "{user}:too_narrow"}, r"has 5 outputs, but the labels of 'digits' go up to 9"),
])
def test_what_would_fail_every_trial_fails_the_study_first(tmp_path, user_code, options, message):
    options = {key: value.replace("{user}", user_code) for key, value in options.items()}
    with pytest.raises(UserError, match=message):
        study(tmp_path, **options)
    assert not (tmp_path / "logs").exists()


def test_a_model_that_fails_only_for_the_first_trial_fails_only_that_trial(tmp_path, user_code):
    space = Space((HParam("units", Discrete([16, 32])),))
    result = run_study(space, model=f"{user_code}:picky", strategy="grid", epochs=1, logdir=tmp_path, experiment="e")
    statuses = {r.trial.hparams["units"]: (r.status.value, r.error) for r in result.results}
    assert statuses[16] == ("FAILURE", "ValueError: 16 units are not allowed")
    assert statuses[32][0] == "SUCCESS"


def test_the_own_training_example_runs_as_the_readme_writes_it(tmp_path, monkeypatch):
    """examples/own_training.py: tf.data from a data function, callbacks and a fit, 1 epoch."""
    from click.testing import CliRunner

    from hparams_lab.cli.app import main

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    result = CliRunner().invoke(main, [
        "--data", "examples.own_training:data", "--callbacks", "examples.own_training:callbacks",
        "--fit", "examples.own_training:fit", "--experiment", "own-training", "--trials", "2", "--epochs", "1",
        "--logdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2/2 trials succeeded. Leaderboard by best_val_auc" in result.output
    for run_dir in (tmp_path / "own-training").glob("*/"):
        if (run_dir / "trial.json").exists():
            assert "learning_rate" in (run_dir / "epochs.csv").read_text().splitlines()[0]
