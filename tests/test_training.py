"""Real Keras fits on digits: NaN losses stop and fail the trial; early stopping stops."""

import pytest

from hparams_lab import Discrete, HParam, Space, run_study

pytestmark = pytest.mark.slow


def poisoned_model(hparams, input_shape, n_classes):
    import keras

    inputs = keras.Input(input_shape)
    logits = keras.layers.Dense(n_classes)(keras.layers.Flatten()(inputs))
    if hparams["poison"]:
        logits = keras.layers.Lambda(lambda t: t * float("nan"))(logits)
    return keras.Model(inputs, keras.layers.Softmax()(logits))


def test_nan_loss_stops_training_and_fails_the_trial(tmp_path):
    space = Space([HParam("poison", Discrete([False, True]))])
    study = run_study(space, model=poisoned_model, strategy="grid", epochs=4, logdir=tmp_path)
    healthy, poisoned = study.results
    assert healthy.status.value == "SUCCESS" and healthy.epochs == 4
    assert poisoned.status.value == "FAILURE"
    assert poisoned.error == "loss became nan at epoch 1"
    assert poisoned.epochs == 1  # stopped at once, not trained on for nothing
    assert study.best.trial == healthy.trial and study.best.metrics == healthy.metrics  # best: a StudyTrial


def test_patience_stops_early_and_keeps_the_best(tmp_path):
    # sgd at a tiny learning rate barely moves: accuracy plateaus, patience 1 ends it.
    space = Space([HParam("learning_rate", Discrete([1e-7])), HParam("optimizer", Discrete(["sgd"]))])
    study = run_study(space, epochs=30, patience=1, logdir=tmp_path)
    (result,) = study.results
    assert result.status.value == "SUCCESS"
    assert result.epochs < 30


def test_a_continued_segment_resumes_weights_and_optimizer_state(tmp_path):
    """Hyperband's continuation: epochs 0-1, then 1-3 from the checkpoint, as one training."""
    import math

    import numpy as np

    from hparams_lab.training.data import load_data
    from hparams_lab.training.models import resolve_model
    from hparams_lab.training.fit import TrainSettings, train_trial
    from hparams_lab.core.trial import Trial

    data = load_data("digits", seed=0)
    trial = Trial({"units": 32, "optimizer": "adam", "learning_rate": 0.003}, seed=0)
    spec, settings, checkpoint = resolve_model("mlp"), TrainSettings(batch_size=64), tmp_path / "checkpoint.npz"
    first = train_trial(trial, data, spec, settings, start=0, stop=1, checkpoint=checkpoint)
    steps = math.ceil(len(data.x_train) / 64)
    with np.load(checkpoint) as saved:
        assert int(saved["o0"]) == steps  # the optimizer's iteration count travels with the weights
    epochs = []
    rest = train_trial(trial, data, spec, settings, lambda epoch, logs: epochs.append(epoch),
                       start=1, stop=3, checkpoint=checkpoint)
    assert epochs == [1, 2] and rest.epochs == 2
    with np.load(checkpoint) as saved:
        assert int(saved["o0"]) == 3 * steps
    fresh = train_trial(trial, data, spec, settings, start=0, stop=1)
    # Continued from trained weights, epoch 2 starts far better than a fresh model's epoch 1.
    assert rest.history["val_loss"][0] < first.history["val_loss"][0] < fresh.history["val_loss"][0] * 1.01
    assert rest.history["val_accuracy"][-1] > first.history["val_accuracy"][0]


def test_an_epochs_hparam_wins_and_max_epochs_caps_it():
    """What tests/fakes.py assumes of the trainer, and test_examples' --max-epochs runs rely on."""
    from hparams_lab.core.trial import Trial
    from hparams_lab.training.data import load_data
    from hparams_lab.training.fit import TrainSettings, train_trial
    from hparams_lab.training.models import resolve_model

    data, mlp = load_data("digits", seed=0), resolve_model("mlp")
    trial = Trial({"units": 8, "epochs": 2}, seed=0)
    assert train_trial(trial, data, mlp, TrainSettings(epochs=5)).epochs == 2
    capped = train_trial(trial, data, mlp, TrainSettings(epochs=5, max_epochs=1))
    assert capped.epochs == 1 and len(capped.history["val_accuracy"]) == 1
