"""The study loop, driven by fake train functions: no Keras here."""

import json

import pytest

from hparams_lab.execution.local import run_trials
from hparams_lab.core.metrics import ranked
from hparams_lab.core.trial import Trial, TrialStatus
from tests.fakes import FakeTrain, fake_costs


TRIALS = [Trial({"units": u}, seed=0, index=i) for i, u in enumerate((16, 32, 64))]
ACCURACIES = {16: [0.5, 0.7, 0.6], 32: [0.6, 0.9, 0.8], 64: [0.4, 0.5, 0.55]}  # replayed per units


def units_32(trial):
    """The trial that raises."""
    return trial.hparams["units"] == 32


class Recorder:
    def __init__(self):
        self.events = []

    def trial_started(self, trial, position, total):
        self.events.append(("start", trial.id, position, total))

    def epoch_ended(self, trial, epoch, logs):
        self.events.append(("epoch", trial.id, epoch))

    def trial_finished(self, result, position, total):
        self.events.append(("end", result.trial.id, position, result.status))


def test_success_writes_run_dirs_and_trial_json(tmp_path):
    results = run_trials(TRIALS, FakeTrain(ACCURACIES), tmp_path)
    assert [r.status for r in results] == [TrialStatus.SUCCESS] * 3
    best = results[1]
    assert best.metrics == {
        "best_val_accuracy": 0.9,
        "final_val_accuracy": 0.8,
        "best_val_loss": pytest.approx(0.1),
        "final_val_loss": pytest.approx(0.2),
        **fake_costs(best.trial),  # what the model costs, as the train function measured it
    }
    assert best.epochs == 3
    for trial in TRIALS:
        run = tmp_path / trial.id
        assert list(run.glob("events.out.tfevents.*"))
        assert list((run / "train").glob("events.out.tfevents.*"))
        assert list((run / "validation").glob("events.out.tfevents.*"))
        record = json.loads((run / "trial.json").read_text())
        assert record["id"] == trial.id and record["status"] == "SUCCESS"
        assert record["hparams"] == trial.hparams and record["seed"] == 0
        assert record["epochs"] == 3 and record["error"] is None and record["wall_time_s"] >= 0


def test_raising_trial_is_a_failure_and_the_study_goes_on(tmp_path):
    results = run_trials(TRIALS, FakeTrain(ACCURACIES, fail_on=units_32), tmp_path)
    assert [r.status for r in results] == [TrialStatus.SUCCESS, TrialStatus.FAILURE, TrialStatus.SUCCESS]
    failed = results[1]
    assert failed.error == "RuntimeError: model exploded"
    assert failed.metrics == {}
    record = json.loads((tmp_path / failed.trial.id / "trial.json").read_text())
    assert record["status"] == "FAILURE"
    assert "Traceback" in record["traceback"] and "model exploded" in record["traceback"]


def test_nan_loss_is_a_failure(tmp_path):
    results = run_trials(TRIALS[:1], FakeTrain(ACCURACIES, nan_at=1), tmp_path)
    assert results[0].status is TrialStatus.FAILURE
    assert results[0].error == "loss became nan at epoch 2"


def test_failures_are_never_ranked_best(tmp_path):
    results = run_trials(TRIALS, FakeTrain(ACCURACIES, fail_on=units_32), tmp_path)
    order = ranked(results, "best_val_accuracy")
    assert [r.trial.hparams["units"] for r in order] == [16, 64, 32]
    assert [r.trial.hparams["units"] for r in ranked(results, "best_val_loss")] == [16, 64, 32]


def test_ranking_by_loss_is_ascending(tmp_path):
    results = run_trials(TRIALS, FakeTrain(ACCURACIES), tmp_path)
    assert [r.trial.hparams["units"] for r in ranked(results, "best_val_loss")] == [32, 16, 64]


def test_reporter_sees_every_step(tmp_path):
    recorder = Recorder()
    run_trials(TRIALS[:2], FakeTrain(ACCURACIES), tmp_path, recorder)
    first = TRIALS[0].id
    assert recorder.events[:5] == [
        ("start", first, 1, 2),
        ("epoch", first, 0),
        ("epoch", first, 1),
        ("epoch", first, 2),
        ("end", first, 1, TrialStatus.SUCCESS),
    ]
    assert len(recorder.events) == 10


def test_interrupt_closes_the_trial_as_failure(tmp_path):
    interrupted = FakeTrain(ACCURACIES, interrupt_at=0, interrupt_after=1)  # Ctrl-C after its first epoch
    with pytest.raises(KeyboardInterrupt):
        run_trials(TRIALS[:1], interrupted, tmp_path)
    record = json.loads((tmp_path / TRIALS[0].id / "trial.json").read_text())
    assert record["status"] == "FAILURE" and record["error"] == "interrupted"
