"""The review command end to end: sorting, filters, formats, comparison, errors."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import review_samples as samples
from hparams_lab.cli.review import review

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return samples.write_small_study(tmp_path_factory.mktemp("logs"))


def invoke(*args):
    return CliRunner().invoke(review, [str(arg) for arg in args])


def listed_runs(output):
    """Run paths of a text leaderboard, in order (first column, or second with an experiment column)."""
    lines = output.split("\n\n")[0].splitlines()
    column = lines[0].split().index("run")
    return [line.split()[column] for line in lines[2:]]


def test_default_sort_is_the_declared_metric_best_first_missing_last(study):
    result = invoke(study)
    assert result.exit_code == 0, result.output
    assert listed_runs(result.output) == ["alpha/t2", "alpha/t1", "beta/u1", "alpha/t3"]
    header = result.output.splitlines()[0].split()
    assert header[:5] == ["experiment", "run", "trial_id", "status", "best_val_accuracy"]


def test_sort_by_a_loss_is_lowest_first_and_flags_override(study):
    assert listed_runs(invoke(study, "--sort", "validation/epoch_loss").output) == \
        ["alpha/t2", "alpha/t1", "beta/u1", "alpha/t3"]
    flipped = invoke(study, "--sort", "validation/epoch_accuracy", "--minimize", "epoch_accuracy")
    assert listed_runs(flipped.output) == ["beta/u1", "alpha/t1", "alpha/t2", "alpha/t3"]


def write_recorded_directions(root):
    """An experiment whose experiment.json says lower is better for 'foo' and 'validation/epoch_score',
    names the rule would call higher-is-better. foo: r1 0.3, r2 0.1, r3 0.2; epoch_score rises by 0.1."""
    experiment = root / "exp"
    experiment.mkdir()
    metrics = [{"tag": "foo", "group": "", "direction": "min"},
               {"tag": "epoch_score", "group": "validation", "direction": "min"}]
    (experiment / "experiment.json").write_text(json.dumps({"metric": "foo", "metrics": metrics}))
    for run, foo, score in (("r1", 0.3, 0.5), ("r2", 0.1, 0.7), ("r3", 0.2, 0.6)):
        samples.write_session(experiment / run, {"units": 8}, [("foo", 1, foo)], end_status="SUCCESS")
        samples.logs.write_events(experiment / run / "validation",
                                  [samples.logs.summary_event([samples.logs.scalar_value("epoch_score", value)],
                                                              step=step) for step, value in ((0, score), (1, score + 0.1))])
    return root


def test_directions_recorded_in_experiment_json_rank_before_the_name_rule(tmp_path):
    root = write_recorded_directions(tmp_path)
    assert listed_runs(invoke(root).output) == ["exp/r2", "exp/r3", "exp/r1"]
    assert listed_runs(invoke(root, "--sort", "validation/epoch_score").output) == ["exp/r1", "exp/r3", "exp/r2"]
    assert listed_runs(invoke(root, "--maximize", "foo").output) == ["exp/r1", "exp/r3", "exp/r2"]  # flags win
    runs = {run["run"]: run for run in json.loads(invoke(root, "--format", "json").output)}
    assert runs["exp/r1"]["best"]["validation/epoch_score"] == {"value": 0.5, "step": 0}


def test_sort_by_an_ambiguous_or_unknown_tag_is_a_usage_error(study):
    ambiguous = invoke(study, "--sort", "epoch_loss")
    assert ambiguous.exit_code == 2
    assert "'epoch_loss' is ambiguous (train/epoch_loss, validation/epoch_loss)" in ambiguous.output
    unknown = invoke(study, "--sort", "nope")
    assert unknown.exit_code == 2 and "'nope' is not logged" in unknown.output


@pytest.mark.parametrize("where, runs", [
    (["optimizer=adam"], ["alpha/t1", "alpha/t3"]),
    (["num_units>=32"], ["alpha/t2", "alpha/t3"]),
    (["num_units>=32", "optimizer!=adam"], ["alpha/t2"]),
    (["dropout<0.5"], ["alpha/t2", "alpha/t3"]),
    (["batch_norm=true"], ["alpha/t1", "alpha/t3"]),
    (["best_val_accuracy>0.6"], ["alpha/t2", "alpha/t1"]),
    (["validation/epoch_loss<=0.75"], ["alpha/t2", "alpha/t1"]),
])
def test_where_filters(study, where, runs):
    args = [arg for expression in where for arg in ("--where", expression)]
    result = invoke(study, *args)
    assert result.exit_code == 0, result.output
    assert listed_runs(result.output) == runs


@pytest.mark.parametrize("expression, message", [
    ("colour=red", "'colour' is not logged"),
    ("optimizer>adam", "> needs a number, got 'adam'"),
    ("num_units", "expected NAME OP VALUE"),
])
def test_bad_where_is_a_usage_error(study, expression, message):
    result = invoke(study, "--where", expression)
    assert result.exit_code == 2
    assert message in result.output


def test_status_filter_and_top(study):
    assert listed_runs(invoke(study, "--status", "failure").output) == ["alpha/t3"]
    assert listed_runs(invoke(study, "--status", "SUCCESS", "--top", "2").output) == ["alpha/t2", "alpha/t1"]


def test_csv_parses_back_with_run_trial_id_full_precision_and_best(study):
    result = invoke(study, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [row["run"] for row in rows] == ["alpha/t2", "alpha/t1", "beta/u1", "alpha/t3"]
    t1 = rows[1]
    assert (t1["experiment"], t1["trial_id"], t1["status"]) == ("alpha", "t1", "SUCCESS")
    assert (t1["num_units"], t1["optimizer"], t1["dropout"], t1["batch_norm"]) == ("16", "adam", "0.5", "True")
    assert float(t1["validation/epoch_accuracy"]) == 0.625
    assert float(t1["train/epoch_accuracy"]) == pytest.approx(0.575, abs=1e-7)  # float32 as logged
    assert (t1["validation/epoch_accuracy:best"], t1["validation/epoch_accuracy:best_step"]) == ("0.75", "1")
    assert (t1["validation/epoch_loss:best"], t1["validation/epoch_loss:best_step"]) == ("0.5", "1")
    assert rows[3]["validation/epoch_accuracy"] == ""  # the failed trial logged nothing


def test_json_loads_back_with_types_metrics_and_best(study):
    result = invoke(study, "--format", "json")
    runs = {run["run"]: run for run in json.loads(result.output)}
    t1 = runs["alpha/t1"]
    assert set(t1) == {"experiment", "run", "trial_id", "status", "hparams", "metrics", "best"}
    assert t1["hparams"] == {"num_units": 16, "optimizer": "adam", "dropout": 0.5, "batch_norm": True}
    assert type(t1["hparams"]["num_units"]) is int and type(t1["hparams"]["batch_norm"]) is bool
    assert t1["metrics"]["validation/epoch_accuracy"] == 0.625
    assert t1["metrics"]["best_val_accuracy"] == 0.75
    assert t1["best"]["validation/epoch_accuracy"] == {"value": 0.75, "step": 1}
    assert t1["best"]["validation/epoch_loss"] == {"value": 0.5, "step": 1}
    assert "best_val_accuracy" not in t1["best"]  # written once: no per-epoch best
    assert runs["alpha/t3"]["metrics"] == {} and runs["alpha/t3"]["status"] == "FAILURE"


def test_markdown_has_a_row_per_run_and_a_summary(study):
    result = invoke(study, "--format", "markdown")
    board, summary = result.output.split("\n\n", 1)
    assert board.splitlines()[0].startswith("| experiment | run | trial\\_id | status | best\\_val\\_accuracy |")
    assert len(board.splitlines()) == 2 + 4
    assert "best\\_val\\_accuracy by hparam" in summary


def test_summary_lists_each_hparam_value_with_runs_mean_and_best(study):
    text = invoke(study).output.split("\n\n")[1]
    lines = {tuple(line.split()[-4:]) for line in text.splitlines()[3:]}
    # best_val_accuracy: t1 (adam) 0.75, t2 (sgd) 0.875, u1 (sgd) 0.5; the failed t3 has none.
    assert ("adam", "1", "0.75", "0.75") in lines
    assert ("sgd", "2", "0.6875", "0.875") in lines


def test_output_file(study, tmp_path):
    target = tmp_path / "board.json"
    result = invoke(study, "--format", "json", "--output", target)
    assert result.exit_code == 0
    assert len(json.loads(target.read_text())) == 4


def test_compare_two_experiments_side_by_side(study):
    result = invoke(study / "alpha", study / "beta")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0] + " " + line.split()[1]: line.split()[2:] for line in result.output.splitlines()[3:]}
    assert lines["best run"] == ["t2", "u1", "*"]
    assert lines["best best_val_accuracy"] == ["0.875", "0.5", "*"]
    assert lines["best: optimizer"] == ["sgd", "sgd"]
    assert lines["best: num_units"] == ["32", "16", "*"]
    data = json.loads(invoke(study / "alpha", study / "beta", "--format", "json").output)
    assert data["best_hparams_differ"] == ["dropout", "num_units"]
    assert [side["best"]["run"] for side in data["experiments"]] == ["t2", "u1"]
    assert data["experiments"][0]["hparams_tried"]["optimizer"] == ["adam", "sgd"]


def test_missing_path_and_logs_without_hparams_exit_2(tmp_path):
    missing = invoke(tmp_path / "missing")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    empty = invoke(tmp_path)
    assert empty.exit_code == 2 and "no TensorBoard event files" in empty.output
    assert invoke(tmp_path, tmp_path, tmp_path).exit_code == 2


def test_review_never_imports_tensorflow(study):
    code = ("import sys; from hparams_lab.cli.review import review; "
            f"review([{str(study)!r}, '--format', 'json'], standalone_mode=False); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["run"] == "alpha/t2"


@pytest.mark.parametrize("flag, name", [("--output", "out.csv"), ("--report", "report.html")])
def test_an_output_file_in_a_missing_directory_is_one_error_line(study, tmp_path, flag, name):
    result = CliRunner().invoke(review, [str(study), flag, str(tmp_path / "missing" / name)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: {flag} {str(tmp_path / 'missing' / name)!r}: directory {str(tmp_path / 'missing')!r} does not exist"]


def test_an_output_that_cannot_be_written_is_one_error_line(study, tmp_path):
    (tmp_path / "taken").mkdir()  # a directory by the file's name: open() fails as a full disk would
    result = CliRunner().invoke(review, [str(study), "--output", str(tmp_path / "taken")])
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "--output" in last


APP = "import sys; sys.argv[0] = 'run.py'; from hparams_lab.cli.app import main; main()"


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--bogus"], [], ["{study}/missing"], ["{study}", "--top", "0"],
                                  ["{study}", "--format", "json"], ["{study}", "--sort", "nope"]])
def test_run_py_review_is_the_apps_review_command(study, args):
    """run.py starts review without the study machinery: the same output, errors and exit codes."""
    args = [arg.format(study=study) for arg in args]
    fast = subprocess.run([sys.executable, "run.py", "review", *args], cwd=ROOT, capture_output=True, text=True)
    app = subprocess.run([sys.executable, "-c", APP, "review", *args], cwd=ROOT, capture_output=True, text=True)
    assert (fast.returncode, fast.stdout, fast.stderr) == (app.returncode, app.stdout, app.stderr)


def test_run_py_review_loads_no_study_machinery(study):
    code = ("import runpy, sys; sys.argv = ['run.py', 'review', sys.argv[1], '--format', 'json']\n"
            "try:\n    runpy.run_path('run.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            # core.space loads for hparams_lab's own logs: the warnings about the space read their
            # domains from experiment.json (review.notes); other writers' logs never load it.
            "heavy = [m for m in sys.modules if m.startswith(('hparams_lab.search', 'hparams_lab.study', "
            "'tensorflow'))]\n"
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code, str(study)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
