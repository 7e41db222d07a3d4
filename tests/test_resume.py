"""Resume, extend, overwrite, repeats and cross-validation: whole studies, trained by the fake
(tests/fakes.py; the bookkeeping is what is tested here, not Keras)."""

from __future__ import annotations

import json
import statistics

import pytest

from hparams_lab import Discrete, HParam, Space, run_study
from hparams_lab.core.errors import UserError
from hparams_lab.execution.events import SilentReporter

SPACE = Space([HParam("units", Discrete([8, 16, 32]))])
BROKEN: set[int] = set()


def sometimes_broken(trial):
    """Training a trial of these units raises today."""
    return trial.hparams["units"] in BROKEN


@pytest.fixture(autouse=True)
def fake(fake_train):
    return fake_train.configure(fail_on=sometimes_broken)


class Notes(SilentReporter):
    def __init__(self):
        self.lines = []

    def note(self, message):
        self.lines.append(message)


def study(tmp_path, **options):
    defaults = dict(strategy="grid", epochs=1, logdir=tmp_path, experiment="exp")
    return run_study(SPACE, **{**defaults, **options})


def test_resume_reruns_only_what_failed(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.BROKEN", {16})
    first = study(tmp_path)
    assert [r.status.value for r in first.results] == ["SUCCESS", "FAILURE", "SUCCESS"]
    kept = {r.trial.id: (r.run_dir / "trial.json").stat().st_mtime_ns for r in first.results if r.metrics}

    monkeypatch.setattr(f"{__name__}.BROKEN", set())
    notes = Notes()
    second = study(tmp_path, reporter=notes)
    assert notes.lines == [
        "resuming experiment 'exp': 2 of 3 trials done, 1 to run (1 failed before, 0 cut off, 0 not started)"
    ]
    assert [r.status.value for r in second.results] == ["SUCCESS"] * 3
    retried = second.results[1]
    assert retried.run_dir.name == f"{retried.trial.id}.2"  # a fresh attempt directory
    for trial_id, mtime in kept.items():
        assert (tmp_path / "exp" / trial_id / "trial.json").stat().st_mtime_ns == mtime

    notes = Notes()
    third = study(tmp_path, reporter=notes)
    assert notes.lines == ["experiment 'exp' is complete: all 3 trials succeeded; nothing to run"]
    assert [r.trial.id for r in third.results] == [r.trial.id for r in second.results]


def test_changed_settings_are_refused_and_overwrite_starts_over(tmp_path):
    study(tmp_path)
    with pytest.raises(UserError, match=r"\(epochs was 1, now 2\); use --overwrite"):
        study(tmp_path, epochs=2)
    with pytest.raises(UserError, match=r"\(seed was 0, now 1\)"):
        study(tmp_path, seed=1)
    again = study(tmp_path, epochs=2, overwrite=True)
    assert all(r.epochs == 2 for r in again.results)
    assert sorted(p.name for p in (tmp_path / "exp").iterdir() if p.is_dir()) == sorted(
        r.trial.id for r in again.results
    )
    record = json.loads((tmp_path / "exp" / "experiment.json").read_text())
    assert record["settings"]["epochs"] == 2


def test_more_random_trials_extend_the_same_sequence(tmp_path):
    space = Space([HParam("units", Discrete([8, 12, 16, 24, 32, 48]))])
    first = run_study(space, trials=2, epochs=1, logdir=tmp_path, experiment="grow")
    notes = Notes()
    more = run_study(space, trials=4, epochs=1, logdir=tmp_path, experiment="grow", reporter=notes)
    assert [r.trial.id for r in more.results[:2]] == [r.trial.id for r in first.results]
    assert "2 of 4 trials done, 2 to run" in notes.lines[0]
    assert len(list((tmp_path / "grow").glob("*/trial.json"))) == 4


def test_repeats_share_a_group_and_report_mean_and_std(tmp_path):
    result = study(tmp_path, repeats=2, strategy="grid")
    assert result.metric == "mean_best_val_accuracy"
    assert len(result.results) == 6
    first_pair = result.results[:2]
    assert first_pair[0].trial.group == first_pair[1].trial.group
    assert [r.trial.seed for r in first_pair] == [0, 1]
    values = [r.metrics["best_val_accuracy"] for r in first_pair]
    for member in first_pair:
        assert member.metrics["mean_best_val_accuracy"] == pytest.approx(statistics.fmean(values))
        assert member.metrics["std_best_val_accuracy"] == pytest.approx(statistics.pstdev(values))
        on_disk = json.loads((member.run_dir / "trial.json").read_text())
        assert on_disk["metrics"]["mean_best_val_accuracy"] == pytest.approx(statistics.fmean(values))


def test_cross_validation_folds(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.BROKEN", {32})
    result = study(tmp_path, cv=3)
    assert result.metric == "cv_mean_best_val_accuracy"
    assert [r.trial.fold for r in result.results] == [0, 1, 2] * 3
    ok = [r for r in result.results if r.trial.hparams["units"] == 8]
    assert len({r.trial.group for r in ok}) == 1 and len({r.trial.id for r in ok}) == 3
    assert ok[0].metrics["cv_mean_best_val_accuracy"] == pytest.approx(
        statistics.fmean(r.metrics["best_val_accuracy"] for r in ok)
    )
    # A group with a failed fold gets no cross-validated score, so it can never rank first.
    broken = [r for r in result.results if r.trial.hparams["units"] == 32]
    assert all("cv_mean_best_val_accuracy" not in r.metrics for r in broken)
    assert result.best.trial.hparams["units"] in (8, 16)


def test_repeats_and_cv_together_are_refused(tmp_path):
    with pytest.raises(UserError, match="choose --repeats or --cv, not both"):
        study(tmp_path, repeats=2, cv=3)
    assert not tmp_path.joinpath("exp").exists()


def test_a_cut_off_attempt_is_closed_and_run_again(tmp_path):
    """A study killed mid-trial leaves an attempt without trial.json (tests/test_faults.py kills real ones)."""
    first = study(tmp_path)
    cut = first.results[1]
    (cut.run_dir / "trial.json").unlink()
    notes = Notes()
    second = study(tmp_path, reporter=notes)
    assert notes.lines == [
        "resuming experiment 'exp': 2 of 3 trials done, 1 to run (0 failed before, 1 cut off, 0 not started)"
    ]
    assert [r.status.value for r in second.results] == ["SUCCESS"] * 3
    assert second.results[1].run_dir.name == f"{cut.trial.id}.2"
    closed = json.loads((cut.run_dir / "trial.json").read_text())
    assert (closed["status"], closed["error"]) == ("FAILURE", "interrupted: the study stopped before this attempt finished")


@pytest.mark.parametrize("damage", ["truncated", "list", "directory", "deep"])
def test_a_damaged_record_on_resume(runner, tmp_path, fake_train, damage):
    """A damaged experiment.json refuses the experiment in one line naming it; a damaged trial.json
    makes its trial not done: it runs again in a fresh attempt."""
    from hparams_lab.cli.app import main

    def study():
        return runner.invoke(main, ["--logdir", str(tmp_path), "--experiment", "e", "--trials", "2", "--epochs", "1"])

    def spoil(path):
        text = path.read_text()
        path.unlink()
        {"truncated": lambda: path.write_text(text[:20]), "list": lambda: path.write_text("[]"),
         "directory": lambda: path.mkdir(), "deep": lambda: path.write_text("[" * 100_000)}[damage]()

    assert study().exit_code == 0
    trial_json = sorted((tmp_path / "e").glob("*/trial.json"))[0]
    spoil(trial_json)
    again = study()
    assert again.exit_code == 0, again.output
    assert "1 of 2 trials done" in again.output and "2/2 trials succeeded" in again.output
    assert (trial_json.parent.parent / f"{trial_json.parent.name}.2" / "trial.json").is_file()
    spoil(tmp_path / "e" / "experiment.json")
    refused = study()
    assert refused.exit_code == 2
    line = refused.output.strip().splitlines()[-1]
    assert line.startswith("Error: ") and "'" + str(tmp_path / "e") + "' exists but is not an hparams_lab" in line
