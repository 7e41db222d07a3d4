"""Bad inputs, tried on purpose: each gives one clear line, exit code 2 and writes nothing.

One table through the CLI. Our own errors print exactly one line; click's option
errors print its usage first, then one error line. A logdir that is "not writable"
as root (who ignores permissions): a path under a regular file, and one under /proc,
where nothing can be created.
"""

from pathlib import Path

import numpy as np
import pytest

from hparams_lab.cli.app import main

OWN, CLICK = "own", "click"


def npz(**arrays):
    return lambda path: np.savez(path, **arrays)


def text(content):
    return lambda path: path.write_text(content)


X20 = np.random.default_rng(0).random((20, 4), dtype=np.float32)
Y20 = np.arange(20) % 2

# Input files each case may name as {in}/<name>.
INPUTS = {
    "broken.toml": text("[hparams]\nunits = ["),
    "broken.json": text('{"hparams": {"units": [16,'),
    "list.json": text('{"hparams": [16, 32]}'),
    "word_bound.toml": text("[hparams.learning_rate]\nmin = 'small'\nmax = 0.1"),
    "mixed.toml": text("[hparams]\nunits = [16, 'many']"),
    "word_units.toml": text("[hparams]\nunits = ['many']"),
    "adagrad.toml": text("[hparams]\noptimizer = ['adam', 'adagrad']"),
    "zero_epochs.toml": text("[hparams]\nunits = [16]\nepochs = 0"),
    "negative_batch.toml": text("[hparams]\nunits = [16]\nbatch_size = -8"),
    "no_labels.npz": npz(x_train=X20),
    "short_labels.npz": npz(x_train=X20, y_train=Y20[:19]),
    "nan_labels.npz": npz(x_train=X20, y_train=np.where(np.arange(20) == 4, np.nan, Y20)),
    "cube_labels.npz": npz(x_train=X20, y_train=np.zeros((20, 2, 2))),
    "negative_labels.npz": npz(x_train=X20, y_train=Y20 - 1),
    "half_test.npz": npz(x_train=X20, y_train=Y20, x_test=X20),
    "ten_per_class.npz": npz(x_train=X20, y_train=Y20),
    "text.npz": text("x,y\n1,2\n"),
    "a_file": text("not a directory"),
}

CASES = [
    # id, arguments, what the message must say, who reports it
    ("toml syntax", ["--space", "{in}/broken.toml"], "is not valid TOML", OWN),
    ("json syntax", ["--space", "{in}/broken.json"], "is not valid JSON", OWN),
    ("hparams not a table", ["--space", "{in}/list.json"], "expected a table 'hparams'", OWN),
    ("bound of wrong type", ["--space", "{in}/word_bound.toml"],
     "hparam 'learning_rate': RealInterval min must be a finite number, got min='small'", OWN),
    ("mixed value types", ["--space", "{in}/mixed.toml"], "Discrete values must be all numbers", OWN),
    ("value of wrong type", ["--space", "{in}/word_units.toml"], "hyperparameter 'units' = 'many' is invalid", OWN),
    ("trials not a number", ["--trials", "many"], "Invalid value for '--trials': 'many' is not a valid integer", CLICK),
    ("unknown data set", ["--dataset", "imagenet"], "unknown data set 'imagenet'", OWN),
    ("factor for grid", ["--strategy", "grid", "--factor", "3"], "--factor is only for --strategy hyperband", OWN),
    ("factor below two", ["--strategy", "hyperband", "--factor", "1"], "Invalid value for '--factor'", CLICK),
    ("hyperband with repeats", ["--strategy", "hyperband", "--repeats", "2"],
     "does not combine with --repeats or --cv", OWN),
    ("missing .npz", ["--dataset", "{in}/missing.npz"], "missing.npz' does not exist", OWN),
    ("unknown model", ["--model", "transformer"], "unknown model 'transformer'", OWN),
    ("model not importable", ["--model", "no_such_module_xyz:build"],
     "cannot import module 'no_such_module_xyz'", OWN),
    ("unknown optimizer", ["--space", "{in}/adagrad.toml"], "unknown optimizer 'adagrad'", OWN),
    ("npz without labels", ["--dataset", "{in}/no_labels.npz"], "lacks y_train", OWN),
    ("npz lengths differ", ["--dataset", "{in}/short_labels.npz"],
     "x_train has 20 samples but y_train has 19", OWN),
    ("npz half a test split", ["--dataset", "{in}/half_test.npz"], "has only one of x_test and y_test", OWN),
    ("npz not a zip", ["--dataset", "{in}/text.npz"], "is not an .npz file", OWN),
    ("nan labels", ["--dataset", "{in}/nan_labels.npz"], "y_train holds nan at index 4", OWN),
    ("3-D labels", ["--dataset", "{in}/cube_labels.npz"], "y_train must be shaped (samples,) or (samples, outputs)", OWN),
    ("negative labels", ["--dataset", "{in}/negative_labels.npz"], "labels must be >= 0", OWN),
    ("zero trials", ["--trials", "0"], "Invalid value for '--trials': 0 is not in the range x>=1", CLICK),
    ("negative trials", ["--trials", "-3"], "Invalid value for '--trials': -3 is not in the range x>=1", CLICK),
    ("zero epochs", ["--epochs", "0"], "Invalid value for '--epochs': 0 is not in the range x>=1", CLICK),
    ("negative epochs", ["--epochs", "-1"], "Invalid value for '--epochs': -1 is not in the range x>=1", CLICK),
    ("zero epochs hparam", ["--space", "{in}/zero_epochs.toml"],
     "hyperparameter 'epochs' = 0 is invalid: expected an integer >= 1", OWN),
    ("zero batch size", ["--batch-size", "0"], "Invalid value for '--batch-size'", CLICK),
    ("negative batch size hparam", ["--space", "{in}/negative_batch.toml"],
     "hyperparameter 'batch_size' = -8 is invalid", OWN),
    ("negative patience", ["--patience", "-1"], "Invalid value for '--patience'", CLICK),
    ("zero repeats", ["--repeats", "0"], "Invalid value for '--repeats': 0 is not in the range x>=1", CLICK),
    ("negative repeats", ["--repeats", "-2"], "Invalid value for '--repeats': -2 is not in the range x>=1", CLICK),
    ("zero folds", ["--cv", "0"], "Invalid value for '--cv': 0 is not in the range x>=2", CLICK),
    ("one fold", ["--cv", "1"], "Invalid value for '--cv': 1 is not in the range x>=2", CLICK),
    ("more folds than samples", ["--cv", "11", "--dataset", "{in}/ten_per_class.npz"],
     "--cv 11: class 0 of data set", OWN),
    ("repeats and folds", ["--repeats", "2", "--cv", "2"], "choose --repeats or --cv, not both", OWN),
    ("logdir is a file", ["--logdir", "{in}/a_file"], "is a file, not a directory", OWN),
    ("logdir under a file", ["--logdir", "{in}/a_file/logs"], "cannot be created: ", OWN),
    ("logdir under /proc", ["--logdir", "/proc/hparams_lab_test/logs"], "is not writable: cannot create", OWN),
    ("experiment with a slash", ["--experiment", "a/b"], "experiment name 'a/b' is not allowed", OWN),
    ("experiment ..", ["--experiment", ".."], "experiment name '..' is not allowed", OWN),
    ("experiment escaping", ["--experiment", "../escape"], "experiment name '../escape' is not allowed", OWN),
    ("experiment absolute", ["--experiment", "/tmp/x"], "experiment name '/tmp/x' is not allowed", OWN),
    ("experiment backslash", ["--experiment", "a\\b"], "is not allowed", OWN),
]


def snapshot(root: Path):
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else None) for p in root.rglob("*"))


@pytest.mark.parametrize("args, message, reporter", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(runner, tmp_path, args, message, reporter, fake_train):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, write in INPUTS.items():
        write(inputs / name)
    args = [arg.replace("{in}", str(inputs)) for arg in args]
    logdir = tmp_path / "logs"
    if "--logdir" not in args:
        args = ["--logdir", str(logdir), *args]
    before = snapshot(tmp_path)

    result = runner.invoke(main, [*args, "--epochs", "1"] if "--epochs" not in args else args)

    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    if reporter == CLICK:
        assert lines[0].startswith("Usage: ")
        lines = [line for line in lines if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and message in lines[0], result.output
    assert snapshot(tmp_path) == before  # nothing written: no logdir, inputs untouched
    assert not Path("/proc/hparams_lab_test").exists()
    assert fake_train.calls == []  # refused before any trial trained (the fake stands in for Keras)
