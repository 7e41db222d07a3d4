"""Issue 13 §5's inputs that gave tracebacks or hung: each is one 'Error:' line, exit 2, nothing written
(planning never builds a huge grid; it counts it)."""

from __future__ import annotations

import pytest

from hparams_lab.cli.app import main
from hparams_lab.core.space import IntInterval, RealInterval

FILES = {
    "latin1.toml": b"[hparams]\nunits = [8]\n# caf\xe9\n",
    "description.toml": b"[hparams.units]\nvalues = [8]\ndescription = 5\n",
    "fine_step.toml": b"[hparams.learning_rate]\nmin = 0.0\nmax = 1.0\nstep = 1e-13\n",
    "many_points.toml": b"[hparams.learning_rate]\nmin = 0.0\nmax = 1.0\npoints = 1000000000\n",
    "overflow.toml": b"[hparams.learning_rate]\nmin = -1e308\nmax = 1e308\npoints = 3\n",
    "billion.toml": b"[hparams.units]\nmin = 1\nmax = 1000000000\n",
}


@pytest.fixture
def inputs(tmp_path):
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["--space", "{in}/latin1.toml"], "is not UTF-8 text (byte 27: b'\\xe9')"),
    (["--strategy", "one-at-a-time", "--base", "{in}/latin1.toml"], "--base file"),
    (["--space", "{in}/description.toml"], "description must be a string, got 5"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, got -1"),
    (["--seed", "4294967296"], "got 4294967296"),
    (["--space", "{in}/fine_step.toml", "--strategy", "grid"], "would have 10,000,000,000,011 grid values"),
    (["--space", "{in}/many_points.toml", "--strategy", "grid"], "would have 1,000,000,000 grid values"),
    (["--space", "{in}/overflow.toml", "--strategy", "grid"], "max - min is not a finite number"),
])
def test_a_bad_input_is_one_error_line_and_nothing_written(runner, inputs, fake_train, args, message):
    args = [a.replace("{in}", str(inputs)) for a in args]
    result = runner.invoke(main, ["--logdir", str(inputs / "logs"), "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output
    assert not (inputs / "logs").exists()


@pytest.mark.parametrize("space", ["fine_step.toml", "billion.toml"])
def test_random_search_samples_a_vast_domain_without_building_it(runner, inputs, fake_train, space):
    result = runner.invoke(main, ["--logdir", str(inputs / "logs"), "--epochs", "1", "--trials", "2",
                                  "--space", str(inputs / space)])
    assert result.exit_code == 0, result.output
    assert "2/2 trials succeeded" in result.output


def test_sizes_are_counted_not_enumerated():
    assert IntInterval(1, 10**9).size() == 10**9
    assert RealInterval(0.0, 1.0, step=1e-13).size() == pytest.approx(10**13, rel=1e-9)
    assert RealInterval(0.0, 1.0, step=0.1).size() == len(RealInterval(0.0, 1.0, step=0.1).grid_values()) == 11
    assert IntInterval(1, 10**9).all_values()[-1] == 10**9  # a range: indexable, never a tuple


def test_an_existing_experiment_directory_that_is_not_writable_is_refused_before_anything(
        runner, tmp_path, fake_train, monkeypatch):
    import os

    experiment = tmp_path / "logs" / "e"
    experiment.mkdir(parents=True)
    real_access = os.access
    # Root passes every access() check, so this machine's refusal is simulated where a
    # user's chmod a-w would show: access() of that one directory.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.fspath(path) == str(experiment)
                        else real_access(path, mode, **kw))
    result = runner.invoke(main, ["--logdir", str(tmp_path / "logs"), "--experiment", "e", "--epochs", "1"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: experiment directory {str(experiment)!r} is not writable"]
    assert list(experiment.iterdir()) == []
