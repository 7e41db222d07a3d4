"""The same trial and seed give the same numbers, bit for bit, on CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hparams_lab.cli.app import main
from hparams_lab.training import fit as training
from hparams_lab.training.data import load_data
from hparams_lab.training.models import resolve_model
from hparams_lab.training.fit import TrainSettings, train_trial
from hparams_lab.core.trial import Trial
from tests.fakes import reproducible

ROOT = Path(__file__).resolve().parents[1]
# Dropout and shuffling both draw random numbers: both must follow the seed.
HPARAMS = {"units": 32, "dropout": 0.2, "optimizer": "adam", "learning_rate": 0.005}


def train(seed):
    data = load_data("digits", seed=0)
    return train_trial(Trial(HPARAMS, seed=seed), data, resolve_model("mlp"), TrainSettings(epochs=3))


@pytest.mark.slow
def test_a_trial_trained_twice_gives_the_same_history():
    first, second = train(seed=1), train(seed=1)
    assert first.history == second.history  # exact: every epoch, every metric
    assert first.test == second.test
    assert first.epochs == second.epochs == 3
    # The comparison can tell runs apart: another seed changes the numbers.
    assert train(seed=2).history != first.history


def trial_records(experiment_dir: Path) -> dict[str, dict]:
    records = {}
    for path in sorted(experiment_dir.glob("*/trial.json")):
        record = json.loads(path.read_text())
        record.pop("wall_time_s")  # with the timed and sampled costs, the only fields that may differ
        record["metrics"] = reproducible(record["metrics"])
        records[path.parent.name] = record
    return records


@pytest.mark.slow
def test_the_same_command_twice_gives_the_same_trials_and_metrics(runner, tmp_path):
    args = ["--trials", "2", "--epochs", "2", "--seed", "3", "--experiment", "e"]
    # One run in this process and one in a fresh one: the numbers must not depend
    # on what the process did before.
    result = runner.invoke(main, [*args, "--logdir", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [sys.executable, "run.py", *args, "--logdir", str(tmp_path / "b")],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )
    first, second = trial_records(tmp_path / "a" / "e"), trial_records(tmp_path / "b" / "e")
    assert len(first) == 2
    assert all(record["status"] == "SUCCESS" for record in first.values())
    assert first == second


NOISE = b"E0000 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool which is not in the op definition\n"


def test_determinism_noise_is_dropped_from_stderr_but_the_rest_is_kept(capfd):
    with training._held_stderr(keep=training._not_noise):
        os.write(2, NOISE + b"a warning the user should see\n")
    assert capfd.readouterr().err == "a warning the user should see\n"


def test_everything_held_but_the_noise_is_shown_when_training_fails(capfd):
    with pytest.raises(ValueError), training._held_stderr(keep=lambda line: False):
        os.write(2, NOISE + b"what TensorFlow said before it failed\n")
        raise ValueError("boom")
    assert capfd.readouterr().err == "what TensorFlow said before it failed\n"
