"""review on logs written by other people's writers: tf.summary tutorials, Keras callbacks, tensorboardX.

These fixtures import TensorFlow (in this test process only; review itself is
checked TF-free in test_review_cli.py), so they are built once per module.
"""

import os

import pytest
from click.testing import CliRunner

from hparams_lab.review import reader as review
from hparams_lab.cli.review import review as review_command

pytestmark = pytest.mark.slow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def tutorial_logs(tmp_path_factory):
    """As the HParams tutorial does: hparams_config at the root, per run hp.hparams + one scalar, no session end."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    root = tmp_path_factory.mktemp("hparam_tuning")
    units = hp.HParam("num_units", hp.Discrete([16, 32]))
    optimizer = hp.HParam("optimizer", hp.Discrete(["adam", "sgd"]))
    dropout = hp.HParam("dropout", hp.RealInterval(0.1, 0.2))
    with tf.summary.create_file_writer(str(root)).as_default():
        hp.hparams_config(hparams=[units, dropout, optimizer], metrics=[hp.Metric("accuracy")])
    for index, (n, opt, drop, accuracy) in enumerate([(16, "adam", 0.1, 0.75), (32, "sgd", 0.2, 0.5)]):
        with tf.summary.create_file_writer(str(root / f"run-{index}")).as_default():
            hp.hparams({units: n, optimizer: opt, dropout: drop, "augment": index == 0})
            tf.summary.scalar("accuracy", accuracy, step=1)
    return root


@pytest.fixture(scope="module")
def keras_logs(tmp_path_factory):
    """hp.KerasCallback with keras.callbacks.TensorBoard on a tiny model, 2 epochs; returns (root, histories)."""
    import keras
    import numpy as np
    from tensorboard.plugins.hparams import api as hp

    root = tmp_path_factory.mktemp("keras")
    rng = np.random.RandomState(0)
    x = rng.rand(64, 4).astype("float32")
    y = (x.sum(axis=1) > 2).astype("int32")
    histories = {}
    for units in (4, 8):
        run = root / f"units-{units}"
        keras.utils.set_random_seed(units)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        callbacks = [keras.callbacks.TensorBoard(str(run)),
                     hp.KerasCallback(str(run), {"units": units, "optimizer": "adam"})]
        history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=callbacks)
        histories[f"units-{units}"] = history.history
    return root, histories


@pytest.fixture(scope="module")
def tensorboardx_logs(tmp_path_factory):
    """tensorboardX's add_hparams (PyTorch's SummaryWriter writes the same): hparams in a timestamped sub-run."""
    from tensorboardX import SummaryWriter

    root = tmp_path_factory.mktemp("tbx")
    writer = SummaryWriter(str(root / "run_a"))
    for step in range(3):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.add_hparams({"lr": 0.1, "bsize": 32, "opt": "adam", "shuffle": True},
                       {"hparam/accuracy": 0.8, "hparam/loss": 0.3})
    writer.close()
    return root


def test_tutorial_logs(tutorial_logs):
    loaded = review.load(tutorial_logs)
    rows = {row.run: row for row in loaded.rows}
    assert sorted(rows) == ["run-0", "run-1"]
    assert rows["run-0"].hparams == {"num_units": 16, "optimizer": "adam", "dropout": 0.1, "augment": True}
    assert type(rows["run-0"].hparams["num_units"]) is int and type(rows["run-0"].hparams["augment"]) is bool
    assert rows["run-1"].metrics == {"accuracy": 0.5}
    assert rows["run-0"].series["accuracy"].last_step == 1
    assert {row.status for row in loaded.rows} == {"UNKNOWN"}  # no session end record: not an error
    assert {row.experiment for row in loaded.rows} == {tutorial_logs.name}
    assert loaded.hparam_names == ["num_units", "dropout", "optimizer", "augment"]  # declared order first
    result = CliRunner().invoke(review_command, [str(tutorial_logs), "--format", "csv", "--no-summary"])
    assert result.exit_code == 0, result.output
    assert [line.split(",")[0] for line in result.output.splitlines()[1:]] == ["run-0", "run-1"]  # by accuracy


def test_keras_callback_logs(keras_logs):
    root, histories = keras_logs
    loaded = review.load(root)
    assert [row.run for row in loaded.rows] == ["units-4", "units-8"]
    for row in loaded.rows:
        history = histories[row.run]
        assert row.status == "SUCCESS"
        assert row.hparams == {"units": int(row.run.split("-")[1]), "optimizer": "adam"}
        assert type(row.hparams["units"]) is int
        for key, name in [("validation/epoch_accuracy", "val_accuracy"), ("validation/epoch_loss", "val_loss"),
                          ("train/epoch_accuracy", "accuracy"), ("train/epoch_loss", "loss")]:
            series = row.series[key]
            assert series.count == 2
            assert series.last == pytest.approx(history[name][-1], rel=1e-6)
            best = max(history[name]) if "accuracy" in key else min(history[name])
            best_epoch = history[name].index(best)
            assert series.best(review.maximizes(key)) == (pytest.approx(best, rel=1e-6), best_epoch)


def test_tensorboardx_logs(tensorboardx_logs):
    (row,) = review.load(tensorboardx_logs).rows
    assert row.run.startswith("run_a/")  # the timestamped sub-run holds the session
    assert row.hparams == {"lr": 0.1, "bsize": 32, "opt": "adam", "shuffle": True}
    assert [type(row.hparams[name]) for name in ("lr", "bsize", "opt", "shuffle")] == [float, int, str, bool]
    assert row.metrics == {"hparam/accuracy": pytest.approx(0.8), "hparam/loss": pytest.approx(0.3)}
    assert row.status == "SUCCESS"
