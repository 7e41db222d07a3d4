"""Studies killed with SIGKILL at several moments, then resumed; two runners on one experiment.

Each study is a real `python run.py` process. After the resumes, every planned
trial has exactly one SUCCESS, nothing is left open in a real TensorBoard, and
trials that had finished were not trained again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hparams_lab.search.registry import make_trials
from hparams_lab.store.rundirs import trial_id_of
from hparams_lab.study.run import DEFAULT_SPACE
from tests.tbserver import TensorBoardServer, session_statuses

ROOT = Path(__file__).resolve().parents[1]
TRIALS, EPOCHS = 3, 4
PLANNED = [t.id for t in make_trials("random", DEFAULT_SPACE, seed=0, trials=TRIALS)]

pytestmark = pytest.mark.slow


def study_command(logdir: Path, experiment: str, epochs: int = EPOCHS) -> list[str]:
    return [sys.executable, "run.py", "--trials", str(TRIALS), "--epochs", str(epochs),
            "--logdir", str(logdir), "--experiment", experiment]


def start(logdir: Path, experiment: str, epochs: int = EPOCHS) -> subprocess.Popen:
    return subprocess.Popen(study_command(logdir, experiment, epochs), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"study ended before the moment came: {process.communicate()}"
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.01)


def finished(experiment_dir: Path) -> list[Path]:
    return sorted(experiment_dir.glob("*/trial.json"))


def epoch_logged(run_dir: Path) -> bool:
    files = list((run_dir / "validation").glob("events.out.tfevents.*"))
    return bool(files) and files[0].stat().st_size > 200  # past the file-version record


# The moments: (name, condition on the experiment dir)
MOMENTS = {
    "before-any-trial-ends": lambda d: any(d.glob("*/events.out.tfevents.*")) and not finished(d),
    "right-after-a-trial-ends": lambda d: len(finished(d)) == 1,
    "mid-trial": lambda d: len(finished(d)) == 1
    and any(epoch_logged(r) for r in d.iterdir() if r.is_dir() and not (r / "trial.json").exists()),
}


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("faults") / "logs"
    kept, open_at_kill = {}, {}
    for name, moment in MOMENTS.items():
        process = start(logdir, name)
        wait_until(lambda: (logdir / name).is_dir() and moment(logdir / name), process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kept[name] = {p: p.stat().st_mtime_ns for p in finished(logdir / name)}
        open_at_kill[name] = {trial_id_of(r) for r in (logdir / name).iterdir()
                              if r.is_dir() and not (r / "trial.json").exists()}
        resumed = subprocess.run(study_command(logdir, name), cwd=ROOT, capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        assert f"resuming experiment '{name}'" in resumed.stdout
    return logdir, kept, open_at_kill


def test_every_planned_trial_succeeds_exactly_once(killed_and_resumed):
    logdir, *_ = killed_and_resumed
    for name in MOMENTS:
        records = [json.loads(p.read_text()) for p in finished(logdir / name)]
        successes = [r["id"] for r in records if r["status"] == "SUCCESS"]
        assert sorted(successes) == sorted(PLANNED), name
        assert {r["status"] for r in records} <= {"SUCCESS", "FAILURE"}
        # every attempt directory was closed with a trial.json
        runs = [p for p in (logdir / name).iterdir() if p.is_dir()]
        assert all((run / "trial.json").exists() for run in runs)


def test_finished_trials_were_not_retrained(killed_and_resumed):
    _, kept, _ = killed_and_resumed
    assert kept["right-after-a-trial-ends"] and kept["mid-trial"]
    for name, files in kept.items():
        for path, mtime in files.items():
            assert path.stat().st_mtime_ns == mtime, f"{name}: {path} was rewritten"


def test_cut_off_attempts_are_closed_as_failure(killed_and_resumed):
    logdir, _, open_at_kill = killed_and_resumed
    # Mid-trial kills always cut one attempt; right after a trial ends the next
    # one may not have its directory yet, so compare with what was open.
    assert len(open_at_kill["before-any-trial-ends"]) == len(open_at_kill["mid-trial"]) == 1
    for name in MOMENTS:
        records = [json.loads(p.read_text()) for p in finished(logdir / name)]
        cut = [r for r in records if "interrupted" in (r.get("error") or "")]
        assert {r["id"] for r in cut} == open_at_kill[name], name
        assert all(r["status"] == "FAILURE" for r in cut)


def test_tensorboard_shows_no_open_session(killed_and_resumed):
    logdir, *_ = killed_and_resumed
    runs = [run for name in MOMENTS for run in (logdir / name).iterdir() if run.is_dir()]
    with TensorBoardServer(logdir) as tb:
        groups = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            groups = tb.session_groups()
            if len(session_statuses(groups)) == len(runs):
                break
            time.sleep(0.2)
    statuses = session_statuses(groups)
    assert len(statuses) == len(runs)
    assert set(statuses.values()) <= {"STATUS_SUCCESS", "STATUS_FAILURE"}
    assert list(statuses.values()).count("STATUS_SUCCESS") == TRIALS * len(MOMENTS)


def test_a_second_runner_is_refused_while_the_first_lives(tmp_path):
    logdir = tmp_path / "logs"
    first = start(logdir, "shared", epochs=200)  # alive until killed below
    try:
        wait_until(lambda: any((logdir / "shared").glob("*/events.out.tfevents.*")), first)
        second = subprocess.run(study_command(logdir, "shared", 200), cwd=ROOT, capture_output=True, text=True)
        assert second.returncode == 2
        assert f"being run by another process (pid {first.pid})" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    # A killed runner leaves no stale lock: starting the experiment over takes it at once.
    again = subprocess.run(study_command(logdir, "shared", epochs=1) + ["--overwrite"],
                           cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "3/3 trials succeeded" in again.stdout


def test_a_train_function_calling_sys_exit_fails_only_its_trial(tmp_path):
    """A user's model or fit that calls sys.exit(): a FAILURE saying so; the study goes on."""
    import sys as system

    from hparams_lab.core.trial import Trial, TrialStatus
    from hparams_lab.execution.local import run_trials
    from tests.fakes import FakeTrain

    fake = FakeTrain()

    def train(trial, on_epoch, **segment):
        if trial.hparams["units"] == 1:
            system.exit(3)
        return fake(trial, on_epoch, **segment)

    results = run_trials([Trial({"units": 1}, seed=0), Trial({"units": 2}, seed=0)], train, tmp_path)
    assert [r.status for r in results] == [TrialStatus.FAILURE, TrialStatus.SUCCESS]
    assert results[0].error == "the trial called sys.exit(3)"
    assert (results[0].run_dir / "trial.json").exists()


@pytest.mark.parametrize("code, strerror, remedy", [
    ("ENOSPC", "No space left on device", "make room"),  # a full disk (EDQUOT, EROFS alike)
    ("EACCES", "Permission denied", "make it writable"),  # e.g. an NFS export turned read-only for us
])
def test_a_write_the_os_refuses_stops_the_study_with_one_line_and_the_same_command_resumes(
        runner, tmp_path, fake_train, monkeypatch, code, strerror, remedy):
    import errno

    from hparams_lab.cli.app import main
    from hparams_lab.tb import writer

    args = ["--logdir", str(tmp_path), "--experiment", "e", "--trials", "3", "--epochs", "2"]
    real_write, calls = writer.RunWriter.write, []

    def refused_after_a_while(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 6:
            raise OSError(getattr(errno, code), strerror, str(self.run_dir))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(writer.RunWriter, "write", refused_after_a_while)
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {strerror} writing ") and f"{remedy} and run the same command again" in last
    monkeypatch.setattr(writer.RunWriter, "write", real_write)
    again = runner.invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "3/3 trials succeeded" in again.output
