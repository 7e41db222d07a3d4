"""The CLI's user errors: one line on stderr, exit code 2, nothing written.

The table of bad inputs the issue lists is tests/test_bad_inputs.py; these are the rest."""

import pytest

from hparams_lab.cli.app import main


def invoke(runner, tmp_path, *args):
    logdir = tmp_path / "logs"
    result = runner.invoke(main, ["--logdir", str(logdir), *args])
    return result, logdir


def assert_user_error(result, logdir, message):
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not logdir.exists()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--metric", "best_val_f1"], "--metric 'best_val_f1': the model does not log it"),
        (["--strategy", "annealing"], "Invalid value for '--strategy'"),
        (["--space", "nowhere.toml"], "does not exist"),
    ],
)
def test_bad_flags(runner, tmp_path, args, message):
    result, logdir = invoke(runner, tmp_path, *args)
    assert_user_error(result, logdir, message)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[hparams]\nunits = []", "hparam 'units': Discrete needs at least one value"),
        ("[hparams.lr]\nmin = 0.0\nmax = 0.1\nlog = true", "hparam 'lr': RealInterval with log scale needs min > 0"),
        ("[hparams]\nnum_unitz = [16, 32]", "num_unitz"),  # a typo must not silently do nothing
        ("[hparams]\ndropout = [0.5, 1.5]", "dropout"),
    ],
)
def test_bad_space_files(runner, tmp_path, text, message):
    result, logdir = invoke(runner, tmp_path, "--space", write(tmp_path, "space.toml", text))
    assert_user_error(result, logdir, message)


def test_grid_needs_points(runner, tmp_path):
    space = write(tmp_path, "space.toml", "[hparams.dropout]\nmin = 0.0\nmax = 0.5\n")
    result, logdir = invoke(runner, tmp_path, "--strategy", "grid", "--space", space)
    assert_user_error(result, logdir, "hparam 'dropout': RealInterval(0.0, 0.5) has no grid")


def test_a_directory_that_is_not_an_experiment_is_left_alone(runner, tmp_path, fake_train):
    foreign = tmp_path / "logs" / "exp1"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(main, ["--logdir", str(tmp_path / "logs"), "--experiment", "exp1", *extra])
        assert result.exit_code == 2, result.output
        assert "is not an hparams_lab experiment" in result.output
        assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_help_lists_the_study_flags_and_commands(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for flag in ("--strategy", "--trials", "--seed", "--space", "--dataset", "--model", "--epochs",
                 "--batch-size", "--patience", "--logdir", "--experiment", "--metric"):
        assert flag in result.output
    assert "tensorboard" in result.output


def test_tensorboard_needs_an_existing_logdir(runner, tmp_path):
    result = runner.invoke(main, ["tensorboard", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
