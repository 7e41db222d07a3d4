import atexit
import os
import shutil
import tempfile

import pytest
from click.testing import CliRunner

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `review` keeps a cache of event-file summaries in the user's cache directory: the tests'
# reviews (subprocesses too) keep theirs in a directory of this test session's instead.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="hparams_lab-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def fake_train(monkeypatch):
    """Studies this test runs in this process (run_study, the CLI, rerun; not --workers or
    --scheduler) train with tests.fakes.FakeTrain, and Keras is never imported for them.

    Returns the tests.fakes.FakeTrainer: ``fake_train.configure(fail_on=..., ...)`` sets
    FakeTrain's options for the studies that follow; ``fake_train.calls`` records every
    (trial id, start, stop) trained, ``fake_train.made`` the trainer's arguments per study.
    """
    from hparams_lab.training import fit
    from tests.fakes import FakeTrainer

    fake = FakeTrainer()
    monkeypatch.setattr(fit, "trainer", fake)
    monkeypatch.setattr(fit, "import_keras", lambda: None)
    monkeypatch.setattr(fit, "logged_metrics", fake.logged_metrics)
    return fake


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """``write_module(prefix, code)`` -> the name of a new module '<prefix>_<n>' on sys.path
    holding ``code`` (a user's models, data functions, callbacks); forgotten after the test."""
    import sys

    names = []

    def write(prefix: str, code: str) -> str:
        name = f"{prefix}_{abs(hash(str(tmp_path))) % 10**8}"
        (tmp_path / f"{name}.py").write_text(code)
        monkeypatch.syspath_prepend(str(tmp_path))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)
