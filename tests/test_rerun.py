"""`python run.py rerun LOGDIR/EXPERIMENT/TRIAL`: train a recorded trial again and compare."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hparams_lab.cli.app import main
from hparams_lab.store.experiment import ExperimentRecord
from hparams_lab.store.jsonfile import write_json_atomic
from hparams_lab.study.rerun import RerunOutcome, RerunPlan, summary_lines
from hparams_lab.core.space import Discrete, HParam, Space
from hparams_lab.study.run import run_study
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus

ROOT = Path(__file__).resolve().parents[1]
HPARAMS = {"units": 32, "learning_rate": 0.005}


def recorded_experiment(tmp_path, **overrides):
    """An experiment dir with one recorded trial, written as a study writes them (no training)."""
    experiment_dir = tmp_path / "logs" / "exp"
    experiment_dir.mkdir(parents=True)
    fields = dict(
        name="exp", space={"hparams": {"units": {"values": [32]}}}, strategy="random", seed=0,
        trials=1, dataset="digits", model="mlp", metric="best_val_accuracy", metrics=[],
        settings={"epochs": 2, "batch_size": 64, "patience": None},
    )
    ExperimentRecord(**{**fields, **overrides}).write(experiment_dir)
    trial = Trial(HPARAMS, seed=0)
    result = TrialResult(trial, TrialStatus.SUCCESS, {"best_val_accuracy": 0.5}, epochs=2)
    (experiment_dir / trial.id).mkdir()
    write_json_atomic(experiment_dir / trial.id / "trial.json", result.to_json())
    return experiment_dir / trial.id


def snapshot(root):
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else None) for p in root.rglob("*"))


def assert_refused(runner, path, message, root, *options):
    before = snapshot(root)
    result = runner.invoke(main, ["rerun", str(path), *options])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ")
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(root) == before  # nothing written


def test_a_path_that_is_not_a_trial_dir(runner, tmp_path):
    trial_dir = recorded_experiment(tmp_path)
    for path in (trial_dir.parent, tmp_path / "nowhere", trial_dir / "trial.json"):
        assert_refused(runner, path, "is not a trial directory", tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "cannot be read as JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"id": "x"}', "is not a usable trial record"),
        ('{"id": "x", "hparams": [1], "seed": 0, "status": "SUCCESS"}', "is not a usable trial record"),
        ('{"id": "x", "hparams": {}, "seed": 0, "status": "DONE"}', "is not a usable trial record"),
    ],
)
def test_a_garbled_trial_json(runner, tmp_path, text, message):
    trial_dir = recorded_experiment(tmp_path)
    (trial_dir / "trial.json").write_text(text)
    assert_refused(runner, trial_dir, message, tmp_path)


def test_a_trial_json_whose_hparams_were_edited(runner, tmp_path):
    trial_dir = recorded_experiment(tmp_path)
    record = json.loads((trial_dir / "trial.json").read_text())
    record["hparams"]["units"] = 64
    (trial_dir / "trial.json").write_text(json.dumps(record))
    assert_refused(runner, trial_dir, "does not match its hparams and seed", tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no experiment.json in"),
        ("{not json", "cannot be read as JSON"),
        ('{"name": "exp"}', "is not a usable experiment record"),
    ],
)
def test_a_missing_or_garbled_experiment_json(runner, tmp_path, text, message):
    trial_dir = recorded_experiment(tmp_path)
    path = trial_dir.parent / "experiment.json"
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    assert_refused(runner, trial_dir, message, tmp_path)


def test_an_experiment_json_with_wrong_types(runner, tmp_path):
    trial_dir = recorded_experiment(tmp_path, dataset=7, settings={"epochs": 2})
    assert_refused(runner, trial_dir, "missing or wrong dataset, settings.batch_size, settings.patience", tmp_path)


def test_a_data_set_that_is_gone(runner, tmp_path):
    trial_dir = recorded_experiment(tmp_path, dataset=str(tmp_path / "deleted.npz"))
    assert_refused(runner, trial_dir, "cannot rerun: the recorded data set file", tmp_path)


@pytest.mark.parametrize("model", ["__main__:build", "my_models:make.<locals>.build"])
def test_a_model_defined_in_a_notebook_cannot_be_rerun(runner, tmp_path, model):
    trial_dir = recorded_experiment(tmp_path, model=model)
    assert_refused(runner, trial_dir, "defined in a notebook or script", tmp_path)


def test_a_user_model_that_is_no_longer_importable(runner, tmp_path):
    trial_dir = recorded_experiment(tmp_path, model="no_such_module_xyz:build")
    assert_refused(runner, trial_dir, "cannot rerun: model 'no_such_module_xyz:build'", tmp_path,
                   "--model", "no_such_module_xyz:build")


# --- reruns of whole studies (the fake trains both: rerun's bookkeeping is tested here) ---


def rerun_ok(runner, trial_dir):
    result = runner.invoke(main, ["rerun", str(trial_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def test_rerun_retrains_the_trial_into_a_new_run_and_matches(runner, tmp_path, fake_train):
    study = run_study(trials=1, epochs=2, seed=3, logdir=tmp_path / "logs", experiment="exp")
    original = study.results[0]
    trial_dir = study.experiment_dir / original.trial.id

    output = rerun_ok(runner, trial_dir)
    value = original.metrics["best_val_accuracy"]
    assert f"best_val_accuracy recorded: {value!r}" in output
    assert f"best_val_accuracy rerun:    {value!r}" in output
    assert "difference: +0" in output
    assert "matches" in output
    rerun_dir = study.experiment_dir / f"{original.trial.id}.rerun-1"
    rerun_record = json.loads((rerun_dir / "trial.json").read_text())
    assert rerun_record["id"] == original.trial.id
    assert rerun_record["metrics"] == original.metrics
    assert any(rerun_dir.glob("events.out.tfevents.*"))  # a TensorBoard session of its own
    assert (rerun_dir / "validation").is_dir()  # with its per-epoch scalars

    # A changed record differs, and each rerun gets the next directory.
    record = json.loads((trial_dir / "trial.json").read_text())
    record["metrics"]["best_val_accuracy"] = value - 0.25
    (trial_dir / "trial.json").write_text(json.dumps(record))
    output = rerun_ok(runner, trial_dir)
    assert "difference: +0.25" in output
    assert "differs" in output and "matches" not in output
    assert (study.experiment_dir / f"{original.trial.id}.rerun-2" / "trial.json").is_file()
    assert fake_train.trial_ids == [original.trial.id] * 3  # the study's trial, then two reruns of it


@pytest.mark.slow  # real Keras: a fresh process must train to the same numbers bit for bit
def test_rerun_imports_a_user_model_again_in_a_fresh_process(tmp_path, monkeypatch):
    (tmp_path / "rerun_user_model.py").write_text(textwrap.dedent("""
        import keras

        def build(hparams, input_shape, n_classes):
            return keras.Sequential([
                keras.Input(input_shape),
                keras.layers.Flatten(),
                keras.layers.Dense(hparams["units"], activation="relu"),
                keras.layers.Dense(n_classes, activation="softmax"),
            ])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    space = Space([HParam("units", Discrete([16, 32]))])
    study = run_study(space, model="rerun_user_model:build", trials=1, epochs=1,
                      logdir=tmp_path / "logs", experiment="exp")
    # A new process, as a user reruns days later: the model is found again from the cwd.
    done = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "rerun", str(study.experiment_dir / study.results[0].trial.id),
         "--model", "rerun_user_model:build"],
        cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "matches" in done.stdout


def test_the_summary_of_a_recorded_failure(tmp_path):
    trial = Trial(HPARAMS, seed=0)
    failed = TrialResult(trial, TrialStatus.FAILURE, {}, error="ValueError: boom")
    plan = RerunPlan(tmp_path, ExperimentRecord("exp", {}, "random", 0, 1, "digits", "mlp",
                                                "best_val_accuracy", []), failed, None)
    rerun = TrialResult(trial, TrialStatus.SUCCESS, {"best_val_accuracy": 0.75})
    lines = summary_lines(RerunOutcome(plan, tmp_path / "x.rerun-1", rerun))
    assert lines[0] == "best_val_accuracy recorded: none (FAILURE: ValueError: boom)"
    assert lines[1] == "best_val_accuracy rerun:    0.75"
    assert not any(line.startswith("difference") for line in lines)
    assert lines[-1].startswith("differs")


@pytest.mark.parametrize("grouping", [{"repeats": 2}, {"cv": 2}], ids=["repeat", "cv fold"])
def test_a_group_member_is_rerun_on_its_own_seed_and_fold(runner, tmp_path, grouping, fake_train):
    """The fake's numbers follow the trial's seed and the data of its fold: a rerun on
    another seed or fold would not match."""
    study = run_study(trials=1, epochs=2, seed=3, logdir=tmp_path / "logs", experiment="exp", **grouping)
    member = study.results[1]  # the second repeat (seed 4) or the second fold
    output = rerun_ok(runner, study.experiment_dir / member.trial.id)
    assert f"comparing best_val_accuracy: the experiment ranks by {study.metric}" in output
    assert f"best_val_accuracy rerun:    {member.metrics['best_val_accuracy']!r}" in output
    assert "matches" in output
