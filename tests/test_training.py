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
    assert study.best is healthy


def test_patience_stops_early_and_keeps_the_best(tmp_path):
    # sgd at a tiny learning rate barely moves: accuracy plateaus, patience 1 ends it.
    space = Space([HParam("learning_rate", Discrete([1e-7])), HParam("optimizer", Discrete(["sgd"]))])
    study = run_study(space, epochs=30, patience=1, logdir=tmp_path)
    (result,) = study.results
    assert result.status.value == "SUCCESS"
    assert result.epochs < 30
