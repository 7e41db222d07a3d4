"""Many trials in one process: a trial must leave nothing of its graphs behind."""

import pytest

from hparams_lab.training.data import load_data
from hparams_lab.training.models import resolve_model
from hparams_lab.training.fit import TrainSettings, import_keras, train_trial
from hparams_lab.core.trial import Trial


def custom_gradients() -> set[str]:
    from tensorflow.python.framework import ops

    return {name for name in ops._gradient_registry._registry if name.startswith("CustomGradient-")}


@pytest.mark.slow
def test_a_trial_leaves_no_custom_gradients_behind():
    # Each entry pins a trial's traced train/test graphs for the life of the process
    # (see training._custom_gradients_released); benchmarks/memory.py measures the RSS.
    import_keras()
    data, mlp = load_data("digits", seed=0), resolve_model("mlp")
    before = custom_gradients()
    for seed in (0, 1):
        train_trial(Trial({"units": 16}, seed=seed), data, mlp, TrainSettings(epochs=1))
    assert custom_gradients() == before


@pytest.mark.slow
def test_kept_runners_frozen_out_of_collections_are_freed_when_let_go(monkeypatch):
    # epochs.settle freezes what lives after a trial's collection once the kept runners
    # change, so later collections skip their graphs; a runner let go, and the fresh models
    # warm trials adopt values from, must still be freed.
    import gc
    import weakref
    from collections import OrderedDict

    from hparams_lab.training import epochs

    import_keras()
    monkeypatch.setattr(epochs, "_KEPT", OrderedDict())
    monkeypatch.setattr(epochs, "KEPT_RUNNERS", 1)
    adopted = []
    adopt = epochs.EpochRunner.adopt

    def recording(self, fresh):
        adopted.append(weakref.ref(fresh))
        return adopt(self, fresh)

    monkeypatch.setattr(epochs.EpochRunner, "adopt", recording)
    data, mlp = load_data("digits", seed=0), resolve_model("mlp")
    settings = TrainSettings(epochs=1)
    train_trial(Trial({"units": 16}, seed=0), data, mlp, settings)
    first = weakref.ref(next(iter(epochs._KEPT.values())))
    train_trial(Trial({"units": 16}, seed=1), data, mlp, settings)  # warm: adopts a fresh model's values
    train_trial(Trial({"units": 24}, seed=2), data, mlp, settings)  # a new shape: the first runner let go
    train_trial(Trial({"units": 24}, seed=3), data, mlp, settings)
    gc.collect()
    assert len(adopted) == 2
    assert first() is None
    assert [ref() for ref in adopted] == [None, None]
