"""The one way a user's 'package.module:function' becomes a function: models, data
functions, callbacks and fits all name theirs so, and all fail the same way."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable

from hparams_lab.core.errors import UserError, one_line

USER_FORM = "'package.module:function'"


def import_function(spec: str, what: str, signature: str) -> Callable[..., Any]:
    """Imports ``spec``; ``what`` names it in errors ("model", "--fit"), ``signature``
    says what kind of function was expected."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"{what} {spec!r} must have the form {USER_FORM}")
    # `python run.py` puts run.py's folder on sys.path, not the cwd; users expect
    # their file next to where they run the study to be found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    if module_name not in sys.modules:
        # Users' modules import keras at the top: TensorFlow loads first, quietly (its C++
        # start-up lines would otherwise come before any message of ours).
        from hparams_lab.training.fit import import_keras

        import_keras()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of the user's module
        raise UserError(f"{what} {spec!r}: cannot import module {module_name!r}: {one_line(exc)}") from exc
    if not hasattr(module, attr):
        raise UserError(
            f"{what} {spec!r}: module {module_name!r} has no attribute {attr!r}; "
            f"expected {USER_FORM} naming a function"
        )
    found = getattr(module, attr)
    if not callable(found):
        raise UserError(f"{what} {spec!r}: {attr!r} is a {type(found).__name__}, not a function {signature}")
    return found


def name_of(function: Callable[..., Any]) -> str:
    """A function as module:qualname, what experiment.json records and workers import again."""
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"
