"""Models by name: built-in `mlp` / `cnn`, or a user's 'package.module:function'.

Resolving names and checking hparam names never imports Keras; only building a
model or an optimizer does.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hparams_lab.core.errors import UserError, one_line
from hparams_lab.training.importer import import_function, name_of

TRAINING_HPARAMS: frozenset[str] = frozenset(
    {"optimizer", "learning_rate", "momentum", "weight_decay", "beta_1", "beta_2",
     "batch_size", "epochs"}
)
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "rmsprop")

_COMMON = frozenset({"units", "dropout", "activation", "kernel_initializer"})
MLP_HPARAMS = _COMMON | {"num_layers", "num_units", "extra_layer"}
# The mlp's per-layer hparams: units_1, units_2, ... and dropout_1, ... (1 = the first hidden
# layer); a layer without its own takes units / dropout. In a space they are conditional on
# num_layers: [hparams.units_2] when = { num_layers = ">= 2" }.
_PER_LAYER = re.compile(r"^(units|dropout)_([1-9][0-9]*)$")
# The built-in models' dropout rates: dropout and dropout_i (training.layers holds them in variables).
DROPOUT_RATE = re.compile(r"^dropout(_[1-9][0-9]*)?$")
CNN_HPARAMS = _COMMON | {"filters", "kernel_size", "num_conv_layers", "image_size"}
# Which optimizer reads which hparam (learning_rate: all of them).
_OPTIMIZER_HPARAMS = {
    "adam": ("beta_1", "beta_2", "weight_decay"),
    "sgd": ("momentum", "weight_decay"),
    "rmsprop": ("momentum", "weight_decay"),
}
_USER_FORM = "'package.module:function'"


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: builder(hparams, input_shape, n_outputs) -> keras.Model (built-ins take the head too)."""

    name: str
    builder: Callable[..., Any]
    builtin: bool
    hparams: frozenset[str]


def model_spec(model: str | Callable[..., Any] | ModelSpec) -> ModelSpec:
    """The one way a study's model becomes a ModelSpec: a name ``resolve_model`` knows, or
    a user's function, recorded as module:qualname (what ``rerun`` imports again)."""
    if isinstance(model, ModelSpec):
        return model
    if callable(model):
        name = name_of(model)
        return ModelSpec(name=name, builder=model, builtin=False, hparams=frozenset())
    return resolve_model(model)


def resolve_model(spec: str) -> ModelSpec:
    """'mlp', 'cnn' or 'package.module:function' -> ModelSpec, without building."""
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"unknown model {spec!r}: choose mlp, cnn or {_USER_FORM}")
    if spec in _BUILTINS:
        builder, names = _BUILTINS[spec]
        return ModelSpec(name=spec, builder=builder, builtin=True, hparams=names)
    if ":" not in spec:
        raise UserError(f"unknown model {spec!r}: choose mlp, cnn or {_USER_FORM}")
    return ModelSpec(name=spec, builder=_import_builder(spec), builtin=False,
                     hparams=frozenset())


def _import_builder(spec: str) -> Callable[..., Any]:
    return import_function(spec, "model", "(hparams, input_shape, n_outputs) -> keras.Model")


def check_hparams(model: ModelSpec, names: Iterable[str]) -> None:
    """Reject hparam names a built-in model would silently ignore (typos)."""
    if not model.builtin:
        return  # a user's builder gets every hparam; it decides what it reads
    known = model.hparams | TRAINING_HPARAMS
    per_layer = {n for n in names if model.name == "mlp" and _PER_LAYER.match(n)}
    unknown = sorted(set(names) - known - per_layer)
    if not unknown:
        return
    hints = [
        f"{n!r} -> {m[0]!r}" for n in unknown if (m := difflib.get_close_matches(n, known, 1))
    ]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    raise UserError(
        f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for model "
        f"{model.name!r}{hint}: known are {', '.join(sorted(known))}"
    )


def check_optimizer(name: object) -> None:
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}: choose {', '.join(OPTIMIZERS)}")


# The last layer a built-in model ends in, per task (training.compile holds the losses).
_HEADS = {"multiclass": "softmax", "binary": "sigmoid", "multilabel": "sigmoid", "regression": "linear"}


def build_model(
    model: ModelSpec, hparams: Mapping[str, Any], input_shape: Any, n_outputs: Any,
    task: str = "multiclass",
) -> Any:
    """A keras.Model whose head fits the task: softmax over n classes, sigmoid, or linear.

    A user's builder gets ``(hparams, input_shape, n_outputs)`` (n_outputs: the number
    of classes for multiclass, as before) and may return its model compiled.
    """
    check_hparams(model, hparams)
    if model.builtin and (isinstance(input_shape, Mapping) or isinstance(n_outputs, Mapping)):
        raise UserError(
            f"model {model.name!r} takes one input array and one output; for dicts of inputs or outputs "
            f"write a model function ({_USER_FORM})"
        )
    if model.builtin:
        return model.builder(dict(hparams), tuple(input_shape), int(n_outputs), _HEADS[task])
    built = model.builder(TrialHParams(hparams), input_shape if isinstance(input_shape, Mapping) else tuple(input_shape),
                          n_outputs)
    _check_user_model(model, built, n_outputs, task)
    return built


def check_conditional_reads(model: ModelSpec, space: Any, input_shape: Any, n_outputs: Any, task: str) -> None:
    """Builds a user's model once per way a conditional space's hparams can be active (no
    training): a model that reads an hparam where it is inactive is a UserError now, not
    a FAILURE in every trial that meets it. Built-in models have a default for each."""
    if model.builtin or not space.conditional:
        return
    import keras

    seen = set()
    for point in space.points(lambda h: _representatives(space, h)):
        pattern = frozenset(point)
        if pattern in seen:
            continue
        seen.add(pattern)
        try:
            build_model(model, point, input_shape, n_outputs, task)
        except UserError as err:
            if str(err).startswith("the model reads hparams["):
                raise UserError(f"{err} (at {point})") from None
        except Exception:
            pass  # other build errors are the trials' to report, as without conditions
        finally:
            keras.backend.clear_session()


def _representatives(space: Any, hparam: Any) -> tuple:
    """A value per class of a parent (what the conditions on it can tell apart), else one value."""
    from hparams_lab.core.space import middle

    if hparam.name not in space.parents:
        return (middle(hparam.domain),)
    return tuple(value for value, _ in space.classes(hparam))


class TrialHParams(dict):
    """A trial's hparams as a user's model function gets them: a plain dict, except that
    reading one it does not hold says why (a conditional hparam is absent where its
    ``when`` does not hold) instead of a bare KeyError."""

    def __missing__(self, key: Any) -> Any:
        raise UserError(
            f"the model reads hparams[{key!r}], which this trial does not have (a conditional hparam is "
            f"absent where its when does not hold): use hparams.get({key!r}, default), or give {key!r} "
            "a when that matches where the model uses it"
        )


def _check_user_model(model: ModelSpec, built: Any, n_outputs: Any, task: str) -> None:
    import keras

    if not isinstance(built, keras.Model):
        raise UserError(
            f"model {model.name!r} returned a {type(built).__name__}, not a keras.Model"
        )
    if isinstance(n_outputs, Mapping) or getattr(built, "compiled", False):
        return  # a compiled model's loss decides what its outputs mean
    try:
        out = built.output_shape  # unknown until a subclassed model is called
    except (AttributeError, ValueError):
        return
    if isinstance(out, tuple) and out and out[-1] != n_outputs:
        head = {"multiclass": f"Dense({n_outputs}, activation='softmax')",
                "binary": "Dense(1, activation='sigmoid')",
                "multilabel": f"Dense({n_outputs}, activation='sigmoid')"}.get(task, f"Dense({n_outputs})")
        raise UserError(
            f"model {model.name!r} outputs shape {out}, but the data needs {n_outputs} output(s) "
            f"for the {task} task; end the model with {head}"
        )


def build_optimizer(hparams: Mapping[str, Any]) -> Any:
    """A Keras optimizer; only the hparams present are passed, the rest use Keras' defaults."""
    name, kwargs = _optimizer_kwargs(hparams)
    import keras

    cls = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
           "rmsprop": keras.optimizers.RMSprop}[name]
    return cls(**kwargs)


def _optimizer_kwargs(hparams: Mapping[str, Any]) -> tuple[str, dict[str, float]]:
    name = hparams.get("optimizer", "adam")
    check_optimizer(name)
    kwargs = {"learning_rate": _real(hparams, "learning_rate", 1e-3, low=0.0, low_open=True)}
    for key in _OPTIMIZER_HPARAMS[name]:
        if hparams.get(key) is None:
            continue
        high = None if key == "weight_decay" else 1.0
        kwargs[key] = _real(hparams, key, None, low=0.0, high=high)
    return name, kwargs


def check_hparam_values(model: ModelSpec, hparams: Mapping[str, Any]) -> None:
    """Validate one trial's hparams without Keras, so a bad value fails before training.

    Covers names (built-ins), numbers and types of the built-in models, and the
    optimizer hparams; activation / initializer names are checked by Keras at build.
    """
    check_hparams(model, hparams)
    _optimizer_kwargs(hparams)
    for key in ("batch_size", "epochs"):
        if key in hparams:
            _int(hparams, key, None, low=1)
    if model.builtin:
        _CONFIGS[model.name](hparams)


# --- hparam values ------------------------------------------------------------------


def _bad(name: str, value: Any, allowed: str) -> UserError:
    return UserError(f"hyperparameter {name!r} = {value!r} is invalid: {allowed}")


def _finite(value: Any) -> bool:
    """A real number that is not a bool, NaN or infinite."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return ok and math.isfinite(value)


def _int(hp: Mapping[str, Any], name: str, default: int | None, low: int) -> int | None:
    """An integer >= low; integral floats (64.0, as TensorBoard stores ints) are accepted."""
    value = hp.get(name, default)
    if value is None and default is None:
        return None
    ok = _finite(value) and value == int(value) and value >= low
    if not ok:
        raise _bad(name, value, f"expected an integer >= {low}")
    return int(value)


def _real(hp, name, default, *, low=None, high=None, low_open=False) -> float:
    """A float in [low, high) (or (low, high) when low_open)."""
    value = hp.get(name, default)
    ok = _finite(value)
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or value < high)
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"< {high:g}"
        raise _bad(name, value, f"expected a number {' and '.join(filter(None, (lo, hi)))}")
    return float(value)


def _bool(hp: Mapping[str, Any], name: str, default: bool) -> bool:
    value = hp.get(name, default)
    # 0/1 too: a Discrete([0, 1]) domain is a common way to write an on/off switch.
    if isinstance(value, (bool, numbers.Integral)) and value in (0, 1):
        return bool(value)
    raise _bad(name, value, "expected true or false")


def _names(hp: Mapping[str, Any]) -> dict[str, str]:
    """activation / kernel_initializer: strings here; Keras checks the names at build."""
    out = {}
    for key, default in (("activation", "relu"), ("kernel_initializer", "glorot_uniform")):
        out[key] = hp.get(key, default)
        if not isinstance(out[key], str) or not out[key]:
            raise _bad(key, out[key], f"expected a Keras name such as {default!r}")
    return out


def _keras_layer_args(config: Mapping[str, Any]) -> dict[str, str]:
    import keras

    for key, getter in (("activation", keras.activations.get),
                        ("kernel_initializer", keras.initializers.get)):
        try:
            getter(config[key])
        except (ValueError, TypeError) as exc:
            raise _bad(key, config[key], f"Keras does not know it ({one_line(exc)})") from exc
    # Names, not objects: Keras 3 warns when one initializer object is shared by layers.
    return {"activation": config["activation"], "kernel_initializer": config["kernel_initializer"]}


def _units(hp: Mapping[str, Any]) -> int:
    if "units" in hp and "num_units" in hp:
        raise UserError(
            f"hyperparameters 'units' = {hp['units']!r} and 'num_units' = {hp['num_units']!r} "
            "are the same setting (num_units is an alias); give only one"
        )
    key = "num_units" if "num_units" in hp else "units"
    return _int(hp, key, 64, low=1)


def _dense_head(x: Any, config: Mapping[str, Any], n_hidden: int, n_outputs: int, head: str) -> Any:
    """n_hidden x Dense(units) [+Dropout] -> Dense(n_outputs, head activation); layer i
    takes config["layers"][i] (its units and dropout) where the config has per-layer ones."""
    from keras import layers

    from hparams_lab.training.layers import tuned_dropout

    args = _keras_layer_args(config)
    per_layer = config.get("layers") or [(config["units"], config["dropout"])] * n_hidden
    for units, dropout in per_layer[:n_hidden]:
        x = layers.Dense(units, **args)(x)
        if dropout > 0:
            x = tuned_dropout()(dropout)(x)  # its rate a variable: trials of other rates share a trace
    return layers.Dense(
        n_outputs, activation=head, kernel_initializer=args["kernel_initializer"]
    )(x)


# --- built-in models ----------------------------------------------------------------


def _mlp_config(hp: Mapping[str, Any]) -> dict[str, Any]:
    config = {
        # extra_layer: the classic "one more hidden layer on/off" switch.
        "n_hidden": _int(hp, "num_layers", 1, low=0) + _bool(hp, "extra_layer", False),
        "units": _units(hp),
        "dropout": _real(hp, "dropout", 0.0, low=0.0, high=1.0),
        **_names(hp),
    }
    config["layers"] = [
        (_int(hp, f"units_{i}", config["units"], low=1),
         _real(hp, f"dropout_{i}", config["dropout"], low=0.0, high=1.0))
        for i in range(1, config["n_hidden"] + 1)
    ]
    return config


def _build_mlp(hp: dict, input_shape: tuple[int, ...], n_outputs: int, head: str = "softmax") -> Any:
    """Flatten -> (num_layers [+1 if extra_layer]) x Dense(units) [+Dropout] -> the task's head."""
    config = _mlp_config(hp)
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    outputs = _dense_head(x, config, config["n_hidden"], n_outputs, head)
    return keras.Model(inputs, outputs, name="mlp")


def _cnn_config(hp: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "filters": _int(hp, "filters", 32, low=1),
        "kernel_size": _int(hp, "kernel_size", 3, low=1),
        "num_conv_layers": _int(hp, "num_conv_layers", 2, low=1),
        "image_size": _int(hp, "image_size", None, low=2),
        "units": _units(hp),
        "dropout": _real(hp, "dropout", 0.0, low=0.0, high=1.0),
        **_names(hp),
    }


def _build_cnn(hp: dict, input_shape: tuple[int, ...], n_outputs: int, head: str = "softmax") -> Any:
    """num_conv_layers x (Conv2D + MaxPool) -> Dense(units) [+Dropout] -> the task's head.

    Conv layer i has filters * 2**i filters (the usual doubling as the image shrinks).
    Pooling is skipped once it would shrink the image below 2x2, so 8x8 digits work.
    """
    config = _cnn_config(hp)
    if len(input_shape) not in (2, 3):
        raise UserError(
            f"model 'cnn' needs images shaped (height, width) or (height, width, channels), "
            f"got input_shape {input_shape}; use mlp for flat features"
        )
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((*input_shape, 1))(inputs) if len(input_shape) == 2 else inputs
    size = min(input_shape[:2])
    if config["image_size"] is not None:
        x = layers.Resizing(config["image_size"], config["image_size"])(x)
        size = config["image_size"]
    args = _keras_layer_args(config)
    for i in range(config["num_conv_layers"]):
        x = layers.Conv2D(config["filters"] * 2**i, config["kernel_size"], padding="same",
                          **args)(x)
        if (size + 1) // 2 >= 2:  # "same" pooling: ceil(size / 2)
            x = layers.MaxPooling2D(2, padding="same")(x)
            size = (size + 1) // 2
    outputs = _dense_head(layers.Flatten()(x), config, 1, n_outputs, head)
    return keras.Model(inputs, outputs, name="cnn")


_BUILTINS: dict[str, tuple[Callable[..., Any], frozenset[str]]] = {
    "mlp": (_build_mlp, MLP_HPARAMS),
    "cnn": (_build_cnn, CNN_HPARAMS),
}
BUILTIN_MODELS: tuple[str, ...] = tuple(_BUILTINS)
_CONFIGS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "mlp": _mlp_config,
    "cnn": _cnn_config,
}
