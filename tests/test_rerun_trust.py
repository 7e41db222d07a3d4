"""rerun never runs code that the logs choose (study.trust): crafted records that name the standard
library, a module inside the logdir, or a user's module nobody named again; each must be refused
before anything is imported, run or written."""

from __future__ import annotations

import numpy as np
import pytest

from hparams_lab.core.errors import UserError
from hparams_lab.study.rerun import plan_rerun
from tests.test_rerun import assert_refused, recorded_experiment

# Importing this module leaves a marker file: proof that it ran.
EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\ndef build(*args):\n    return None\n"


@pytest.mark.parametrize("model", ["os:system", "subprocess:getoutput", "builtins:eval", "shutil:rmtree"])
def test_the_standard_library_is_never_a_model(runner, tmp_path, model):
    trial_dir = recorded_experiment(tmp_path, model=model)
    assert_refused(runner, trial_dir, "from the standard library, which rerun never imports", tmp_path)
    assert_refused(runner, trial_dir, "standard library", tmp_path, "--model", model)  # not even when named


def test_a_module_placed_inside_the_logdir_is_never_imported(runner, tmp_path, monkeypatch):
    trial_dir = recorded_experiment(tmp_path, model="evil_model:build")
    marker = tmp_path / "ran"
    (tmp_path / "logs" / "evil_model.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path / "logs"))
    assert_refused(runner, trial_dir, "whose module is inside the logdir", tmp_path, "--model", "evil_model:build")
    assert not marker.exists()


def test_a_plain_directory_of_the_logdir_is_no_package_to_import(runner, tmp_path, monkeypatch):
    """cwd beside the logdir: 'logs.evil' would import logs/evil.py as a namespace package."""
    marker = tmp_path / "ran"
    trial_dir = recorded_experiment(tmp_path, model="logs.evil:build")
    (tmp_path / "logs" / "evil.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert_refused(runner, trial_dir, "inside the logdir", tmp_path, "--model", "logs.evil:build")
    assert not marker.exists()


@pytest.fixture
def user_model(tmp_path, write_module):
    marker = tmp_path / "ran"
    return write_module("trusted_models", EVIL.format(marker=str(marker))), marker


def test_a_users_module_runs_only_when_named_again(runner, tmp_path, user_model):
    module, marker = user_model
    trial_dir = recorded_experiment(tmp_path, model=f"{module}:build")
    assert_refused(runner, trial_dir, f"rerun TRIAL_DIR --model {module}:build", tmp_path)
    assert_refused(runner, trial_dir, "is not what the logs record", tmp_path, "--model", f"{module}:other")
    assert not marker.exists()
    plan = plan_rerun(trial_dir, given={"model": f"{module}:build"})
    assert plan.model.name == f"{module}:build" and marker.exists()


def test_a_terminal_prompt_can_confirm_and_a_pipe_never_asks(runner, tmp_path, user_model):
    module, marker = user_model
    trial_dir = recorded_experiment(tmp_path, model=f"{module}:build")
    asked = []
    with pytest.raises(UserError, match="name it again"):
        plan_rerun(trial_dir, confirm=lambda question: asked.append(question) or False)
    assert asked == [f"The logs name the model '{module}:build'. Import and run it?"] and not marker.exists()
    # CliRunner's stdin is not a terminal: refused without a question
    assert_refused(runner, trial_dir, "name it again", tmp_path)
    plan_rerun(trial_dir, confirm=lambda question: True)
    assert marker.exists()


def test_recorded_data_functions_callbacks_and_fits_follow_the_same_rules(runner, tmp_path, user_model):
    module, marker = user_model
    for overrides, message in [
        ({"data": {"kind": "function", "function": f"{module}:build"}}, f"--data {module}:build"),
        ({"data": {"kind": "function", "function": "os:getcwd"}}, "standard library"),
        ({"settings": {"epochs": 1, "batch_size": 8, "patience": None, "callbacks": "os:system"}},
         "the callbacks 'os:system' from the standard library"),
        ({"settings": {"epochs": 1, "batch_size": 8, "patience": None, "fit": f"{module}:build"}},
         f"--fit {module}:build"),
    ]:
        trial_dir = recorded_experiment(tmp_path, **overrides)
        assert_refused(runner, trial_dir, message, tmp_path)
        assert not marker.exists()
        (tmp_path / "logs").rename(tmp_path / f"done-{len(list(tmp_path.iterdir()))}")


def test_a_data_file_outside_the_logdirs_parent_is_read_only_on_request(runner, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.npz"
    np.savez(outside, x_train=np.zeros((20, 2)), y_train=np.arange(20) % 2)
    try:
        trial_dir = recorded_experiment(tmp_path, dataset=str(outside))
        assert_refused(runner, trial_dir, f"the data file {str(outside)!r}", tmp_path)
        assert plan_rerun(trial_dir, given={"data": str(outside)}).record.dataset == str(outside)
    finally:
        outside.unlink()
    inside = tmp_path / "mine.npz"  # beside the logdir: the user's own, as a study left it
    np.savez(inside, x_train=np.zeros((20, 2)), y_train=np.arange(20) % 2)
    (tmp_path / "logs").rename(tmp_path / "old-logs")
    assert plan_rerun(recorded_experiment(tmp_path, dataset=str(inside))).record.dataset == str(inside)
