"""--workers N: the same trials and results as one worker; a killed worker costs one trial."""

from __future__ import annotations

import pytest

from hparams_lab import Discrete, HParam, Space, run_study
from hparams_lab.core.errors import UserError
from tests.fakes import reproducible

pytestmark = pytest.mark.slow

KILLER = '''
import os, signal
import keras

def build(hparams, input_shape, n_classes):
    if hparams["units"] == 13:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-trial
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(hparams["units"], activation="relu"),
                             keras.layers.Dense(n_classes, activation="softmax")])
'''


def test_two_workers_give_the_same_trials_and_results(tmp_path):
    options = dict(trials=4, epochs=2, logdir=tmp_path)
    one = run_study(experiment="one", workers=1, **options)
    two = run_study(experiment="two", workers=2, **options)
    assert [r.trial.id for r in two.results] == [r.trial.id for r in one.results]
    assert [r.status for r in two.results] == [r.status for r in one.results]
    # Op determinism and per-trial seeds: the numbers agree across processes too.
    assert [reproducible(r.metrics) for r in two.results] == [reproducible(r.metrics) for r in one.results]
    assert len(list((tmp_path / "two").glob("*/trial.json"))) == 4


def test_a_killed_worker_costs_only_its_trial(tmp_path, monkeypatch):
    (tmp_path / "killer_model.py").write_text(KILLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    space = Space([HParam("units", Discrete([8, 13, 16, 32]))])
    study = run_study(space, model="killer_model:build", strategy="grid", epochs=1, workers=2,
                      logdir=tmp_path / "logs", experiment="killed")
    statuses = {r.trial.hparams["units"]: r.status.value for r in study.results}
    assert statuses == {8: "SUCCESS", 13: "FAILURE", 16: "SUCCESS", 32: "SUCCESS"}
    dead = next(r for r in study.results if r.trial.hparams["units"] == 13)
    assert dead.error == "the worker process running this trial died"
    assert (dead.run_dir / "trial.json").exists()


def test_a_notebook_function_cannot_go_to_workers(tmp_path):
    def local_model(hparams, input_shape, n_classes):  # not importable by name
        raise AssertionError("never built")

    with pytest.raises(UserError, match="--workers needs the model as a function importable by name"):
        run_study(model=local_model, workers=2, trials=1, epochs=1, logdir=tmp_path)
    assert list(tmp_path.iterdir()) == []


DATA_FUNCTION = '''
import numpy as np

CALLS = []


def regression():
    CALLS.append(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).astype("float32")
    return x, x @ np.array([1.0, -2.0, 0.5], dtype="float32")
'''


def test_workers_load_the_data_from_a_data_function(tmp_path, monkeypatch):
    (tmp_path / "worker_data.py").write_text(DATA_FUNCTION)
    monkeypatch.syspath_prepend(str(tmp_path))
    options = dict(data="worker_data:regression", trials=2, epochs=1, logdir=tmp_path / "logs")
    one = run_study(experiment="one", **options)
    two = run_study(experiment="two", workers=2, **options)
    assert one.metric == "best_val_loss"
    assert [reproducible(r.metrics) for r in two.results] == [reproducible(r.metrics) for r in one.results]
    assert all(r.status.value == "SUCCESS" for r in two.results)


def test_arrays_in_memory_cannot_go_to_workers(tmp_path):
    import numpy as np

    x, y = np.zeros((20, 2), "float32"), np.arange(20) % 2
    with pytest.raises(UserError, match=r"data in memory \(arrays, datasets, a function defined here\) is not sent"):
        run_study(data=(x, y), workers=2, trials=1, epochs=1, logdir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_with_workers_a_worker_evaluates_the_first_model_and_the_study_loads_no_tensorflow(tmp_path):
    """The workers import TensorFlow anyway: one of them finds what the trials log and what
    would fail them all (a UserError here, as in one process), the study's process never
    loads it."""
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import sys
from hparams_lab import run_study
from hparams_lab.core.errors import UserError
options = dict(strategy="random", workers=2, trials=2, epochs=1, experiment="e")
try:
    run_study(logdir={str(tmp_path / "bad")!r}, loss="binary_crossentropy", **options)
except UserError as err:
    print("UserError:", err)
result = run_study(logdir={str(tmp_path / "good")!r}, **options)
print("statuses:", sorted(r.status.value for r in result.results))
print("tensorflow loaded:", "tensorflow" in sys.modules or "keras" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "UserError: the first trial's model cannot be evaluated on the validation data" in done.stdout
    assert not (tmp_path / "bad").exists()
    assert "statuses: ['SUCCESS', 'SUCCESS']" in done.stdout
    assert "tensorflow loaded: False" in done.stdout
