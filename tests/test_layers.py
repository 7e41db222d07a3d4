"""training.layers: the built-in models' Dropout, its rate a variable, saved as Keras' own."""

from __future__ import annotations

import numpy as np
import pytest

from hparams_lab.training.fit import import_keras
from hparams_lab.training.models import build_model, resolve_model

pytestmark = pytest.mark.slow  # real Keras layers and models


def mlp(dropout, seed=0):
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    return build_model(resolve_model("mlp"), {"units": 8, "dropout": dropout}, (4,), 3, "multiclass")


def test_masks_as_keras_dropout_does_with_the_rate_it_holds():
    keras = import_keras()
    from hparams_lab.training.layers import tuned_dropout

    TunedDropout = tuned_dropout()

    x = np.ones((64, 32), np.float32)
    tuned, plain = TunedDropout(0.25, seed=5), keras.layers.Dropout(0.25, seed=5)
    ours, theirs = np.asarray(tuned(x, training=True)), np.asarray(plain(x, training=True))
    np.testing.assert_array_equal(ours == 0, theirs == 0)  # the same seeded mask
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)  # kept units scaled by 1 / 0.75
    np.testing.assert_array_equal(np.asarray(tuned(x)), x)  # inference: as is
    tuned.set_rate(0.5)
    assert 0.3 < float(np.mean(np.asarray(tuned(x, training=True)) == 0)) < 0.7
    assert tuned.get_config()["rate"] == 0.5


def test_the_built_in_models_use_it_for_a_rate_above_0():
    keras = import_keras()
    from hparams_lab.training.layers import tuned_dropout

    TunedDropout = tuned_dropout()

    assert [type(layer) for layer in mlp(0.3).layers if isinstance(layer, keras.layers.Dropout)] == [TunedDropout]
    assert not [layer for layer in mlp(0.0).layers if isinstance(layer, keras.layers.Dropout)]
    with pytest.raises(ValueError):
        TunedDropout(1.0)


def test_a_saved_model_is_plain_keras_with_the_rate_it_trained_with(tmp_path):
    keras = import_keras()
    from hparams_lab.training.layers import rates, set_rates, tuned_dropout

    TunedDropout = tuned_dropout()

    model = mlp(0.3)
    set_rates(model, rates(mlp(0.45, seed=1)))  # a kept model taking another trial's rate
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    (dropout,) = [layer for layer in loaded.layers if isinstance(layer, keras.layers.Dropout)]
    assert type(dropout) is keras.layers.Dropout and not isinstance(dropout, TunedDropout)
    assert dropout.rate == 0.45
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
