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
