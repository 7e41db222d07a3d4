"""Budgets and retries: --timeout (and --timeout-kill), --max-epochs-total, --retries,
--max-failures. Studies train with the fake; time is a fake clock each trial moves on."""

from __future__ import annotations

import json
import types

import pytest

from hparams_lab.cli.app import main

ARGS = ["--strategy", "random", "--trials", "6", "--epochs", "3", "--experiment", "e"]


@pytest.fixture
def clock(monkeypatch):
    """A wall clock that only trials move: each fake trial takes 60 s (20 s an epoch)."""
    from hparams_lab.execution import attempt, loop
    from hparams_lab.study import run

    now = [1_000.0]
    fake_time = types.SimpleNamespace(time=lambda: now[0])
    for module in (loop, attempt, run):
        monkeypatch.setattr(module, "time", fake_time)
    return now


def ticking(clock, seconds=20.0):
    """A fake accuracy curve that moves the clock on by ``seconds`` per epoch."""
    from tests.fakes import curve

    def accuracy(trial, epoch, data=""):
        clock[0] += seconds
        return curve(trial, epoch, data)
    return accuracy


def record(logdir):
    return json.loads((logdir / "e" / "experiment.json").read_text())


def trial_files(logdir):
    return [json.loads(p.read_text()) for p in sorted((logdir / "e").glob("*/trial.json"))]


def test_timeout_starts_no_trial_after_it_and_the_same_command_resumes_with_a_fresh_budget(
        runner, tmp_path, fake_train, clock):
    fake_train.configure(accuracy=ticking(clock))
    args = [*ARGS, "--logdir", str(tmp_path), "--timeout", "150s"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    # 0, 60 and 120 s are before the deadline (150 s): three trials start, the fourth doesn't.
    assert len(trial_files(tmp_path)) == 3
    assert "the --timeout budget ended the study" in first.output and "3/3 trials succeeded" in first.output
    assert record(tmp_path)["stopped"]["by"] == "timeout"
    again = runner.invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "resuming experiment 'e': 3 of 6 trials done" in again.output
    assert len(trial_files(tmp_path)) == 6 and record(tmp_path)["stopped"] is None
    assert all(t["status"] == "SUCCESS" for t in trial_files(tmp_path))


def test_timeout_kill_stops_the_running_trial_at_its_epoch_end_and_resume_runs_it_again(
        runner, tmp_path, fake_train, clock):
    fake_train.configure(accuracy=ticking(clock))
    args = [*ARGS, "--trials", "2", "--logdir", str(tmp_path), "--timeout", "30s", "--timeout-kill"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    (cut,) = trial_files(tmp_path)
    assert cut["status"] == "FAILURE" and cut["error"].startswith("timeout:") and cut["epochs"] == 2
    again = runner.invoke(main, [*args[:-3], "--timeout", "1h"])
    assert again.exit_code == 0, again.output
    assert sorted(t["status"] for t in trial_files(tmp_path)) == ["FAILURE", "SUCCESS", "SUCCESS"]


def test_max_epochs_total_starts_no_trial_once_spent(runner, tmp_path, fake_train):
    result = runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--max-epochs-total", "7"])
    assert result.exit_code == 0, result.output
    assert len(trial_files(tmp_path)) == 3  # 3 + 3 < 7: a third starts; 9 >= 7: no fourth
    assert "the --max-epochs-total budget (7) ended the study after 9 epochs" in result.output
    assert record(tmp_path)["stopped"]["by"] == "max_epochs_total"


def test_a_flaky_trial_is_tried_again_in_a_fresh_attempt_and_the_leaderboard_says_so(
        runner, tmp_path, fake_train):
    failed_once = set()

    def flaky(trial):
        if trial.index == 1 and trial.id not in failed_once:
            failed_once.add(trial.id)
            return True
        return False

    fake_train.configure(fail_on=flaky)
    result = runner.invoke(main, [*ARGS, "--trials", "3", "--logdir", str(tmp_path), "--retries", "2"])
    assert result.exit_code == 0, result.output
    assert "3/3 trials succeeded" in result.output and "trying it again (attempt 2 of 3)" in result.output
    (retried,) = failed_once
    assert sorted(p.name for p in (tmp_path / "e").glob(f"{retried}*")) == [retried, f"{retried}.2"]
    assert json.loads((tmp_path / "e" / retried / "trial.json").read_text())["status"] == "FAILURE"
    header, *rows = [line.split() for line in result.output.splitlines()
                     if line.startswith(("rank ", "1 ", "2 ", "3 "))]
    assert header[6] == "attempts"
    assert {row[1]: row[6] for row in rows}[retried] == "2"


def test_a_nan_loss_is_not_retried(runner, tmp_path, fake_train):
    fake_train.configure(nan_at=1)
    result = runner.invoke(main, [*ARGS, "--trials", "2", "--logdir", str(tmp_path), "--retries", "3"])
    assert result.exit_code == 0
    assert "trying it again" not in result.output and len(trial_files(tmp_path)) == 2


def test_max_failures_stops_after_that_many_in_a_row_with_the_last_error(runner, tmp_path, fake_train):
    fake_train.configure(fail_on=lambda trial: True)
    result = runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--max-failures", "2"])
    assert result.exit_code == 0, result.output
    assert len(trial_files(tmp_path)) == 2
    assert "stopped after 2 failed trials in a row (--max-failures); the last: RuntimeError: model exploded" \
        in result.output
    assert record(tmp_path)["stopped"]["by"] == "max_failures"


@pytest.mark.parametrize("args, message", [
    (["--timeout", "soon"], "--timeout 'soon': write a duration such as 90s, 30m, 2h or 1h30m"),
    (["--timeout", "0s"], "--timeout must be more than 0 seconds, got '0s'"),
    (["--timeout-kill"], "--timeout-kill needs --timeout"),
    (["--retries", "-1"], "--retries must be a whole number >= 0, got -1"),
    (["--max-failures", "0"], "--max-failures must be a whole number >= 1, got 0"),
    (["--max-epochs-total", "0"], "--max-epochs-total must be a whole number >= 1, got 0"),
])
def test_bad_budgets_are_one_error_line(runner, tmp_path, fake_train, args, message):
    result = runner.invoke(main, [*ARGS, "--logdir", str(tmp_path / "logs"), *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400),
                                           ("1.5h", 5400), (45, 45)])
def test_durations(text, seconds):
    from hparams_lab.study.checks import timeout_seconds

    assert timeout_seconds(text) == seconds
