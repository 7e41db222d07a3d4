"""Importing a user's 'package.module:function' (a model builder, a data function).

One importer so that a model and a data function are found the same way: the cwd
is on sys.path, and every failure is a one-line UserError naming the spec.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from hparams_lab.core.errors import UserError, one_line


def import_attribute(spec: str, what: str, form: str) -> Any:
    """The attribute ``spec`` ('module:attr') names; ``what`` starts each message ("model")."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"{what} {spec!r} must have the form {form}")
    # `python run.py` puts run.py's folder on sys.path, not the cwd; users expect
    # their file next to where they run the study to be found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of the user's module
        raise UserError(
            f"{what} {spec!r}: cannot import module {module_name!r}: {one_line(exc)}"
        ) from exc
    if not hasattr(module, attr):
        raise UserError(
            f"{what} {spec!r}: module {module_name!r} has no attribute {attr!r}; "
            f"expected {form} naming a function"
        )
    return getattr(module, attr)
