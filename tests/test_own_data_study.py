"""Studies of the user's own data through the CLI, trained by the fake: what experiment.json records
of the data and task, class names, resumes and reruns that refuse changed data, --direction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hparams_lab.cli.app import main

CSV = "size,rooms,kind\n{rows}"


def write_csv(path: Path, n: int = 30) -> Path:
    kinds = ["house", "flat", "boat"]
    path.write_text(CSV.format(rows="".join(f"{50 + i},{1 + i % 4},{kinds[i % 3]}\n" for i in range(n))))
    return path


def study(runner, tmp_path, *args):
    return runner.invoke(main, ["--logdir", str(tmp_path / "logs"), "--epochs", "2", "--trials", "2", *args])


def record(tmp_path, experiment="e"):
    return json.loads((tmp_path / "logs" / experiment / "experiment.json").read_text())


def test_a_csv_with_a_string_target_names_its_classes(runner, tmp_path, fake_train):
    data = write_csv(tmp_path / "homes.csv")
    result = study(runner, tmp_path, "--data", str(data), "--target", "kind", "--experiment", "e")
    assert result.exit_code == 0, result.output
    assert "Classes (labels 0..n-1): boat, flat, house" in result.output
    found = record(tmp_path)
    assert found["classes"] == ["boat", "flat", "house"]
    assert found["settings"]["task"] == "multiclass" and found["metric"] == "best_val_accuracy"
    assert found["data"]["kind"] == "file" and found["data"]["path"] == str(data.resolve())
    assert found["data"]["size"] == data.stat().st_size and found["data"]["targets"] == ["kind"]
    review = runner.invoke(main, ["review", str(tmp_path / "logs" / "e")])
    assert "classes (labels 0..n-1): boat, flat, house" in review.output


def test_a_resume_refuses_a_data_file_that_changed(runner, tmp_path, fake_train):
    data = write_csv(tmp_path / "homes.csv")
    args = ["--data", str(data), "--target", "kind", "--experiment", "e"]
    assert study(runner, tmp_path, *args).exit_code == 0
    assert study(runner, tmp_path, *args).exit_code == 0  # unchanged: resumes, nothing to do
    write_csv(data, n=33)
    again = study(runner, tmp_path, *args)
    assert again.exit_code == 2
    assert again.output.strip().splitlines()[-1].startswith("Error: experiment 'e' was started with other settings")
    assert "data sha256 was" in again.output or "data size was" in again.output


def test_a_rerun_refuses_a_data_file_that_changed(runner, tmp_path, fake_train):
    data = write_csv(tmp_path / "homes.csv")
    assert study(runner, tmp_path, "--data", str(data), "--target", "kind", "--experiment", "e").exit_code == 0
    trial = next(p.parent for p in (tmp_path / "logs" / "e").glob("*/trial.json"))
    write_csv(data, n=40)
    result = runner.invoke(main, ["rerun", str(trial)])
    assert result.exit_code == 2
    assert "cannot rerun:" in result.output and "changed" in result.output
    assert not list(trial.parent.glob("*.rerun-*"))


def test_a_regression_ranks_by_its_loss_and_logs_mae(runner, tmp_path, fake_train):
    result = study(runner, tmp_path, "--data", "diabetes", "--experiment", "e")
    assert result.exit_code == 0, result.output
    assert "Leaderboard by best_val_loss" in result.output
    found = record(tmp_path)
    assert found["settings"]["task"] == "regression"
    directions = {m["tag"]: m["direction"] for m in found["metrics"]}
    assert directions["best_val_mae"] == "min" and directions["epoch_mae"] == "min"
    trials = [json.loads(p.read_text()) for p in (tmp_path / "logs" / "e").glob("*/trial.json")]
    assert all({"best_val_mae", "best_val_loss"} <= set(t["metrics"]) for t in trials)


def test_hyperband_and_bayes_rank_a_metric_to_minimise(runner, tmp_path, fake_train):
    for strategy in ("hyperband", "bayes"):
        result = study(runner, tmp_path, "--strategy", strategy, "--data", "diabetes", "--metric", "best_val_mae",
                       "--experiment", strategy, "--max-epochs", "3")
        assert result.exit_code == 0, result.output
        board = result.output.split("Leaderboard by best_val_mae:")[1].splitlines()[2:]
        values = [float(line.split()[3]) for line in board if line[:1].isdigit()]
        assert values == sorted(values) and values


def test_direction_overrides_the_name_rule_everywhere(runner, tmp_path, fake_train):
    result = study(runner, tmp_path, "--metric", "best_val_accuracy", "--direction", "min", "--experiment", "e")
    assert result.exit_code == 0, result.output
    board = result.output.split("Leaderboard by best_val_accuracy:")[1].splitlines()[2:4]
    values = [float(line.split()[3]) for line in board]
    assert values == sorted(values)  # lowest first, as asked
    found = record(tmp_path)
    directions = {m["tag"]: m["direction"] for m in found["metrics"] if not m["group"]}
    assert directions["best_val_accuracy"] == "min" and directions["best_val_loss"] == "min"
    assert found["settings"]["direction"] == "min"
    review = runner.invoke(main, ["review", str(tmp_path / "logs" / "e"), "--format", "json"])
    shown = [run["metrics"]["best_val_accuracy"] for run in json.loads(review.stdout)]
    assert shown == sorted(shown)  # review follows the recorded direction


@pytest.mark.parametrize("args, message", [
    (["--data", "{csv}"], "(--target COLUMN)"),
    (["--data", "{csv}", "--target", "nope"], "nope"),
    (["--data", "{csv}", "--target", "size"], "row 2, column 'kind' holds 'house', not a number"),
    (["--data", "diabetes", "--task", "binary"], "binary"),
    (["--data", "diabetes", "--task", "multiclass"], "class 25 has only 1 training sample"),
    (["--metric", "best_val_auc"], "the model does not log it"),
    (["--metric", "accuracy"], "choose best_val_<name>"),
])
def test_bad_data_and_task_flags_are_one_error_line(runner, tmp_path, fake_train, args, message):
    data = write_csv(tmp_path / "homes.csv")
    args = [arg.replace("{csv}", str(data)) for arg in args]
    result = study(runner, tmp_path, *args)
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error:") and message in last, result.output
    assert not (tmp_path / "logs").exists()


def test_a_space_files_training_table_sets_loss_metrics_and_direction(runner, tmp_path, fake_train):
    space = tmp_path / "space.toml"
    space.write_text('[hparams]\nunits = [8, 16]\n\n[training]\nloss = "huber"\nmetrics = ["mae", "mse"]\n'
                     'task = "regression"\n')
    result = study(runner, tmp_path, "--data", "diabetes", "--space", str(space), "--experiment", "e",
                   "--metric", "best_val_mse")
    assert result.exit_code == 0, result.output
    found = record(tmp_path)
    assert found["settings"]["loss"] == "huber" and found["settings"]["metrics"] == ["mae", "mse"]
    assert found["space"]["training"]["loss"] == "huber"
    assert fake_train.made[0].settings.loss == "huber"
    # a flag wins over the table
    flagged = study(runner, tmp_path, "--data", "diabetes", "--space", str(space), "--experiment", "f",
                    "--loss", "mae")
    assert flagged.exit_code == 0, flagged.output
    assert record(tmp_path, "f")["settings"]["loss"] == "mae"


@pytest.mark.parametrize("table, message", [
    ('optimizer = "adam"', "unknown key(s) ['optimizer']"),
    ("metrics = [1, 2]", "expected a list of Keras metric names"),
    ("loss = 3", "expected a Keras loss name"),
])
def test_a_bad_training_table_is_one_error_line(runner, tmp_path, fake_train, table, message):
    space = tmp_path / "space.toml"
    space.write_text(f"[hparams]\nunits = [8]\n\n[training]\n{table}\n")
    result = study(runner, tmp_path, "--space", str(space))
    assert result.exit_code == 2
    assert message in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "logs").exists()
