"""hparams_lab.training.models: resolving models, checking hparams, building models and optimizers."""

import importlib
import os
import sys

import numpy as np
import pytest

from hparams_lab.core.errors import UserError
from hparams_lab.training.models import (
    OPTIMIZERS,
    TRAINING_HPARAMS,
    build_model,
    build_optimizer,
    check_hparam_values,
    check_hparams,
    check_optimizer,
    resolve_model,
)

# Keras imported inside the builders, so resolving this module stays fast.
USER_MODEL = """
def build(hparams, input_shape, n_classes):
    import keras

    SEEN.append((hparams, input_shape, n_classes))
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(hparams.get("width", 8), activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))

def wrong_width(hparams, input_shape, n_classes):
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(n_classes + 1, activation="softmax")(x))

def not_a_model(hparams, input_shape, n_classes):
    return "model"

SEEN = []
NOT_CALLABLE = 42
"""


@pytest.fixture
def user_module(write_module):
    """A module 'user_models_<n>' on sys.path holding USER_MODEL; returns its name."""
    return write_module("user_models", USER_MODEL)


# --- resolve_model (no Keras) ------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_builtins_resolve(name):
    spec = resolve_model(name)
    assert spec.name == name and spec.builtin and callable(spec.builder)
    assert {"units", "dropout", "activation", "kernel_initializer"} <= spec.hparams
    assert not spec.hparams & TRAINING_HPARAMS


def test_builtin_hparam_names():
    assert resolve_model("mlp").hparams == {
        "num_layers", "units", "num_units", "extra_layer", "dropout", "activation",
        "kernel_initializer"}
    assert resolve_model("cnn").hparams == {
        "filters", "kernel_size", "num_conv_layers", "image_size", "units", "dropout",
        "activation", "kernel_initializer"}
    assert TRAINING_HPARAMS == {"optimizer", "learning_rate", "momentum", "weight_decay",
                                "beta_1", "beta_2", "batch_size", "epochs"}


@pytest.mark.parametrize("spec", ["resnet", "MLP", "", "  ", None, 3])
def test_unknown_builtin(spec):
    with pytest.raises(UserError, match=r"unknown model .*: choose mlp, cnn or 'package\.module:function'"):
        resolve_model(spec)


@pytest.mark.parametrize("spec", ["mod:", ":build"])
def test_incomplete_user_form(spec):
    with pytest.raises(UserError, match=rf"model '{spec}' must have the form 'package\.module:function'"):
        resolve_model(spec)


def test_module_not_importable():
    with pytest.raises(
        UserError,
        match=r"model 'no_such_module_xq:build': cannot import module 'no_such_module_xq': "
        r"ModuleNotFoundError: No module named 'no_such_module_xq'$",
    ):
        resolve_model("no_such_module_xq:build")


def test_module_that_fails_on_import_gives_one_line(tmp_path, monkeypatch):
    (tmp_path / "broken_model_mod.py").write_text("import math\nraise RuntimeError('bad\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match=r"cannot import module 'broken_model_mod': RuntimeError: bad$") as info:
        resolve_model("broken_model_mod:build")
    assert "\n" not in str(info.value)


def test_missing_attribute(user_module):
    with pytest.raises(UserError, match=rf"module '{user_module}' has no attribute 'nope'"):
        resolve_model(f"{user_module}:nope")


def test_not_callable(user_module):
    with pytest.raises(UserError, match=r"'NOT_CALLABLE' is a int, not a function"):
        resolve_model(f"{user_module}:NOT_CALLABLE")


def test_user_model_resolves(user_module):
    spec = resolve_model(f"{user_module}:build")
    assert spec.name == f"{user_module}:build" and not spec.builtin
    assert spec.builder is sys.modules[user_module].build
    assert spec.hparams == frozenset()


def test_user_model_is_found_in_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "cwd_model_mod.py").write_text("def build(h, s, n):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    # As under `python run.py` from elsewhere: neither the cwd nor '' is on sys.path.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    importlib.invalidate_caches()
    try:
        assert resolve_model("cwd_model_mod:build").builder.__name__ == "build"
    finally:
        sys.modules.pop("cwd_model_mod", None)
    assert os.getcwd() in sys.path


# --- hparam names and values (no Keras) ---------------------------------------------------


def test_known_names_pass():
    for name in ("mlp", "cnn"):
        spec = resolve_model(name)
        check_hparams(spec, spec.hparams | TRAINING_HPARAMS)


def test_unknown_names_are_all_named_sorted_with_known_ones():
    with pytest.raises(
        UserError,
        match=r"unknown hyperparameter\(s\) 'unitz', 'zzz_top' for model 'mlp' "
        r"\(did you mean 'unitz' -> 'units'\?\): known are activation, batch_size, beta_1, ",
    ):
        check_hparams(resolve_model("mlp"), ["zzz_top", "learning_rate", "unitz"])


def test_cnn_only_names_are_unknown_to_mlp():
    with pytest.raises(UserError, match=r"unknown hyperparameter\(s\) 'filters' for model 'mlp'"):
        check_hparams(resolve_model("mlp"), {"filters": 3})


def test_user_models_accept_any_name(user_module):
    check_hparams(resolve_model(f"{user_module}:build"), ["width", "anything", "units"])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_known_optimizers(name):
    check_optimizer(name)


@pytest.mark.parametrize("name", ["Adam", "adamw", "", None, 3, ["adam"]])
def test_unknown_optimizer(name):
    with pytest.raises(UserError, match=r"unknown optimizer .*: choose adam, sgd, rmsprop"):
        check_optimizer(name)


@pytest.mark.parametrize(
    "model, hparams, message",
    [
        ("mlp", {"units": "abc"}, r"'units' = 'abc' is invalid: expected an integer >= 1"),
        ("mlp", {"num_units": 0}, r"'num_units' = 0 is invalid: expected an integer >= 1"),
        ("mlp", {"units": 64.5}, r"'units' = 64\.5 is invalid"),
        ("mlp", {"dropout": 1.5}, r"'dropout' = 1\.5 is invalid: expected a number >= 0 and < 1"),
        ("mlp", {"dropout": float("nan")}, r"'dropout' = nan is invalid"),
        ("mlp", {"num_layers": -1}, r"'num_layers' = -1 is invalid: expected an integer >= 0"),
        ("mlp", {"num_layers": True}, r"'num_layers' = True is invalid"),
        ("mlp", {"extra_layer": "yes"}, r"'extra_layer' = 'yes' is invalid: expected true or false"),
        ("mlp", {"activation": 3}, r"'activation' = 3 is invalid: expected a Keras name"),
        ("mlp", {"units": 8, "num_units": 8}, r"'units' = 8 and 'num_units' = 8 .*give only one"),
        ("cnn", {"filters": 2.5}, r"'filters' = 2\.5 is invalid: expected an integer >= 1"),
        ("cnn", {"kernel_size": "3"}, r"'kernel_size' = '3' is invalid"),
        ("cnn", {"num_conv_layers": 0}, r"'num_conv_layers' = 0 is invalid: expected an integer >= 1"),
        ("cnn", {"image_size": 1}, r"'image_size' = 1 is invalid: expected an integer >= 2"),
        ("mlp", {"learning_rate": 0}, r"'learning_rate' = 0 is invalid: expected a number > 0"),
        ("mlp", {"learning_rate": "fast"}, r"'learning_rate' = 'fast' is invalid"),
        ("mlp", {"optimizer": "sgd", "momentum": 1.0}, r"'momentum' = 1\.0 is invalid: .*< 1"),
        ("mlp", {"beta_1": -0.1}, r"'beta_1' = -0\.1 is invalid"),
        ("mlp", {"weight_decay": -1e-4}, r"'weight_decay' = -0\.0001 is invalid: expected a number >= 0$"),
        ("mlp", {"optimizer": "Adam"}, r"unknown optimizer 'Adam'"),
        ("mlp", {"epochs": 0}, r"'epochs' = 0 is invalid: expected an integer >= 1"),
        ("mlp", {"batch_size": 3.5}, r"'batch_size' = 3\.5 is invalid"),
        ("cnn", {"unitz": 3}, r"unknown hyperparameter\(s\) 'unitz' for model 'cnn'"),
    ],
)
def test_bad_values_are_rejected_before_keras(model, hparams, message):
    with pytest.raises(UserError, match=message):
        check_hparam_values(resolve_model(model), hparams)


def test_good_values_pass_including_integral_floats():
    check_hparam_values(resolve_model("mlp"), {
        "num_layers": 2.0, "units": np.int64(32), "extra_layer": 1, "dropout": 0.5,
        "optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.01, "epochs": 2})
    check_hparam_values(resolve_model("cnn"), {"image_size": None, "filters": 8})


def test_user_models_get_only_training_values_checked(user_module):
    spec = resolve_model(f"{user_module}:build")
    check_hparam_values(spec, {"units": "whatever", "width": -3})
    with pytest.raises(UserError, match=r"'learning_rate' = -1 is invalid"):
        check_hparam_values(spec, {"learning_rate": -1})


# --- building (Keras) -----------------------------------------------------------------------

DIGITS_SHAPE = (8, 8)


def forward(model, input_shape=DIGITS_SHAPE, n=5):
    x = np.random.default_rng(0).random((n, *input_shape)).astype(np.float32)
    return np.asarray(model(x))


def dense_widths(model):
    return [layer.units for layer in model.layers if type(layer).__name__ == "Dense"]


def layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.slow
def test_mlp_defaults_on_digits():
    model = build_model(resolve_model("mlp"), {}, DIGITS_SHAPE, 10)
    out = forward(model)
    assert out.shape == (5, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert dense_widths(model) == [64, 10]
    assert model.layers[-1].activation.__name__ == "softmax"
    assert not model.compiled


@pytest.mark.slow
def test_mlp_hparams_shape_the_model():
    hparams = {"num_layers": 2, "num_units": 16, "extra_layer": True, "dropout": 0.25,
               "activation": "tanh", "kernel_initializer": "he_normal", "learning_rate": 0.1}
    model = build_model(resolve_model("mlp"), hparams, DIGITS_SHAPE, 3)
    assert dense_widths(model) == [16, 16, 16, 3]
    assert layer_kinds(model).count("Dropout") == 3
    hidden = [layer for layer in model.layers if type(layer).__name__ == "Dense"][0]
    assert hidden.activation.__name__ == "tanh"
    assert type(hidden.kernel_initializer).__name__ == "HeNormal"
    assert forward(model).shape == (5, 3)


@pytest.mark.slow
def test_mlp_units_and_num_units_are_the_same_setting():
    a = build_model(resolve_model("mlp"), {"units": 12}, DIGITS_SHAPE, 10)
    b = build_model(resolve_model("mlp"), {"num_units": 12}, DIGITS_SHAPE, 10)
    assert dense_widths(a) == dense_widths(b) == [12, 10]


@pytest.mark.slow
def test_cnn_defaults_on_digits():
    model = build_model(resolve_model("cnn"), {}, DIGITS_SHAPE, 10)
    assert forward(model).shape == (5, 10)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 64]  # filters double per conv layer
    assert layer_kinds(model).count("MaxPooling2D") == 2  # 8 -> 4 -> 2
    assert not model.compiled


@pytest.mark.slow
def test_cnn_skips_pooling_below_two_pixels():
    model = build_model(resolve_model("cnn"), {"num_conv_layers": 4, "filters": 4},
                        DIGITS_SHAPE, 10)
    assert layer_kinds(model).count("Conv2D") == 4
    assert layer_kinds(model).count("MaxPooling2D") == 2
    flat = [layer for layer in model.layers if type(layer).__name__ == "Flatten"][0]
    assert flat.output.shape[1:] == (2 * 2 * 32,)
    assert forward(model).shape == (5, 10)


@pytest.mark.slow
def test_cnn_resizes_and_takes_channels():
    model = build_model(resolve_model("cnn"), {"image_size": 16, "num_conv_layers": 1,
                                               "dropout": 0.1, "units": 8}, DIGITS_SHAPE, 10)
    assert "Resizing" in layer_kinds(model) and "Dropout" in layer_kinds(model)
    assert forward(model).shape == (5, 10)
    rgb = build_model(resolve_model("cnn"), {"num_conv_layers": 1}, (6, 6, 3), 4)
    assert "Reshape" not in layer_kinds(rgb)
    assert forward(rgb, (6, 6, 3)).shape == (5, 4)


def test_cnn_needs_images():
    with pytest.raises(UserError, match=r"model 'cnn' needs images .*got input_shape \(64,\)"):
        build_model(resolve_model("cnn"), {}, (64,), 10)


def test_build_rejects_unknown_names_before_building():
    with pytest.raises(UserError, match=r"unknown hyperparameter\(s\) 'dropuot'"):
        build_model(resolve_model("mlp"), {"dropuot": 0.5}, DIGITS_SHAPE, 10)


@pytest.mark.slow
@pytest.mark.parametrize("key, value", [("activation", "relux"), ("kernel_initializer", "nope")])
def test_unknown_keras_names(key, value):
    with pytest.raises(UserError, match=rf"'{key}' = '{value}' is invalid: Keras does not know it"):
        build_model(resolve_model("mlp"), {key: value}, DIGITS_SHAPE, 10)


@pytest.mark.slow
def test_user_model_gets_all_hparams_untouched(user_module):
    hparams = {"width": 4, "learning_rate": 0.5, "optimizer": "sgd", "anything": "x"}
    model = build_model(resolve_model(f"{user_module}:build"), hparams, [8, 8], 3)
    seen_hparams, seen_shape, seen_classes = sys.modules[user_module].SEEN[-1]
    assert seen_hparams == hparams and seen_hparams is not hparams
    assert seen_shape == (8, 8) and seen_classes == 3
    assert forward(model).shape == (5, 3)


@pytest.mark.slow
def test_user_model_output_must_match_classes(user_module):
    with pytest.raises(UserError, match=r"outputs shape \(None, 4\), but the data needs 3 output\(s\)"):
        build_model(resolve_model(f"{user_module}:wrong_width"), {}, DIGITS_SHAPE, 3)


@pytest.mark.slow
def test_user_model_must_return_a_keras_model(user_module):
    with pytest.raises(UserError, match=r"returned a str, not a keras\.Model"):
        build_model(resolve_model(f"{user_module}:not_a_model"), {}, DIGITS_SHAPE, 3)


@pytest.mark.slow
def test_built_mlp_trains_on_cached_read_only_digits():
    from hparams_lab.training.data import load_data

    ds = load_data("digits")
    # Seeded: with op determinism on (any earlier test in this process may have turned it
    # on), TensorFlow refuses unseeded random ops.
    from hparams_lab.training.fit import import_keras

    import_keras().utils.set_random_seed(0)
    model = build_model(resolve_model("mlp"), {"units": 16}, ds.input_shape, ds.n_classes)
    model.compile(optimizer=build_optimizer({"learning_rate": 0.01}),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val),
                        epochs=2, batch_size=64, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.5  # chance is 0.1


# --- optimizers -------------------------------------------------------------------------------


@pytest.mark.slow
def test_default_optimizer_is_adam_with_keras_defaults():
    optimizer = build_optimizer({})
    config = optimizer.get_config()
    assert type(optimizer).__name__ == "Adam"
    assert config["learning_rate"] == pytest.approx(1e-3)
    assert config["beta_1"] == pytest.approx(0.9) and config["weight_decay"] is None


@pytest.mark.slow
def test_adam_hparams():
    optimizer = build_optimizer({"optimizer": "adam", "learning_rate": 0.02, "beta_1": 0.8,
                                 "beta_2": 0.99, "weight_decay": 1e-4,
                                 "momentum": 0.9})  # momentum: not Adam's, ignored
    config = optimizer.get_config()
    assert type(optimizer).__name__ == "Adam"
    assert config["learning_rate"] == pytest.approx(0.02)
    assert config["beta_1"] == pytest.approx(0.8) and config["beta_2"] == pytest.approx(0.99)
    assert config["weight_decay"] == pytest.approx(1e-4)


@pytest.mark.slow
def test_sgd_hparams():
    optimizer = build_optimizer({"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                                 "beta_1": 0.5})  # beta_1: not SGD's, ignored
    config = optimizer.get_config()
    assert type(optimizer).__name__ == "SGD"
    assert config["learning_rate"] == pytest.approx(0.1)
    assert config["momentum"] == pytest.approx(0.9) and config["weight_decay"] is None
    assert build_optimizer({"optimizer": "sgd"}).get_config()["momentum"] == 0.0


@pytest.mark.slow
def test_rmsprop_hparams():
    optimizer = build_optimizer({"optimizer": "rmsprop", "momentum": 0.5, "weight_decay": 0.01})
    config = optimizer.get_config()
    assert type(optimizer).__name__ == "RMSprop"
    assert config["momentum"] == pytest.approx(0.5)
    assert config["weight_decay"] == pytest.approx(0.01)


def test_bad_optimizer_hparams_fail_before_keras():
    with pytest.raises(UserError, match=r"unknown optimizer 'nadam'"):
        build_optimizer({"optimizer": "nadam"})
    with pytest.raises(UserError, match=r"'learning_rate' = 'x' is invalid"):
        build_optimizer({"learning_rate": "x"})
