"""`hparams_lab.review.load`: review's rows as objects and DataFrames, the same as its JSON and
CSV; and logs without a declared ranking metric ranked by a validation metric."""

from __future__ import annotations

import csv
import io
import json

import pytest

import review_samples as samples
from hparams_lab import review
from hparams_lab.cli.app import main


@pytest.fixture
def logs(runner, tmp_path, fake_train):
    logdir = tmp_path / "logs"
    result = runner.invoke(main, ["--trials", "4", "--epochs", "3", "--logdir", str(logdir), "--experiment", "e"])
    assert result.exit_code == 0, result.output
    return logdir


def test_load_gives_the_runs_review_prints_as_json(runner, logs):
    printed = json.loads(runner.invoke(main, ["review", str(logs), "--format", "json", "--top", "100"]).stdout)
    loaded = review.load(logs)
    assert [vars(run) for run in loaded] == printed
    assert loaded.ranked_by == "best_val_accuracy" and loaded.higher_is_better is True
    assert loaded[0].metrics["best_val_accuracy"] == max(r["metrics"]["best_val_accuracy"] for r in printed)


def test_records_are_the_csv_columns_unformatted(runner, logs):
    text = runner.invoke(main, ["review", str(logs), "--format", "csv", "--top", "100"]).stdout
    table = list(csv.reader(io.StringIO(text)))
    records = review.load(logs).to_records()
    assert list(records[0]) == table[0]
    for record, line in zip(records, table[1:]):
        assert [str(record[h]) if record[h] is not None else "" for h in table[0]][:4] == line[:4]
        assert record["best_val_accuracy"] == pytest.approx(float(line[table[0].index("best_val_accuracy")]))
        assert record["validation/epoch_accuracy:best_step"] in (0, 1, 2)


def test_to_pandas_and_to_polars_hold_the_same_values(logs):
    pandas = pytest.importorskip("pandas")
    polars = pytest.importorskip("polars")
    loaded = review.load(logs)
    frame = loaded.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 4
    assert list(frame.columns) == list(loaded.to_records()[0])
    assert frame["best_val_accuracy"].tolist() == [run.metrics["best_val_accuracy"] for run in loaded]
    assert frame["units"].tolist() == [run.hparams["units"] for run in loaded]
    pl = loaded.to_polars()
    assert isinstance(pl, polars.DataFrame) and pl.columns == list(frame.columns)
    assert pl["best_val_accuracy"].to_list() == frame["best_val_accuracy"].tolist()


def scalars(run_dir, points):
    from tensorboard.compat.proto import summary_pb2

    import runner_style_logs as logs

    logs.write_events(run_dir, [logs.summary_event([summary_pb2.Summary.Value(tag=tag, simple_value=value)], step=step)
                                for tag, step, value in points])


def keras_style_logs(root):
    """As keras.callbacks.TensorBoard + hp.KerasCallback write them: train/ and validation/
    epoch scalars, no declared metric. 'overfit' has the best training accuracy, the worst
    validation accuracy."""
    for name, train, val in [("overfit", 0.99, 0.70), ("sound", 0.90, 0.88), ("weak", 0.80, 0.79)]:
        samples.write_session(root / name, {"units": len(name)}, [], end_status="SUCCESS", group=name)
        scalars(root / name / "train", [("epoch_accuracy", 0, train - 0.1), ("epoch_accuracy", 1, train),
                                        ("epoch_loss", 1, 1 - train)])
        scalars(root / name / "validation", [("epoch_accuracy", 1, val), ("epoch_loss", 1, 1 - val)])
    return root


def test_logs_without_a_declared_metric_rank_by_a_validation_accuracy_and_say_so(runner, tmp_path):
    logs = keras_style_logs(tmp_path / "keras")
    loaded = review.load(logs)
    assert loaded.ranked_by == "validation/epoch_accuracy"
    assert [run.run for run in loaded] == ["sound", "weak", "overfit"]
    first = runner.invoke(main, ["review", str(logs)]).stdout.splitlines()[0]
    assert first == ("ranked by validation/epoch_accuracy (higher is better): no ranking metric declared, "
                     "so the first validation metric; --sort picks another")


def test_a_validation_loss_ranks_when_there_is_no_validation_accuracy():
    from hparams_lab.review.query import default_metric
    from hparams_lab.review.reader import maximizes

    assert default_metric(["train/epoch_loss", "validation/epoch_loss", "val_mae"], maximizes) == \
        "validation/epoch_loss"
    assert default_metric(["loss", "hparam/accuracy"], maximizes) == "loss"
    assert default_metric(["train/epoch_accuracy", "eval/auc", "val_loss"], maximizes) == "eval/auc"
