"""What the user passed as data, resolved: a named set, an .npz / .csv path, a
'module:function', or an in-memory object (arrays, tf.data datasets, a callable).

This module decides which kind a source is, checks strings cheaply before anything
loads (`check_data_source`), says which sources worker processes can load
themselves (`sendable`), what experiment.json records (`record`, `source_changed`)
and turns in-memory forms into `Parts`. TensorFlow is imported only to recognise a
tf.data.Dataset, and only when an object's type comes from tensorflow.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from hparams_lab.core.errors import UserError, one_line
from hparams_lab.training.importer import import_function

NAMED: tuple[str, ...] = (
    "digits", "mnist", "fashion_mnist", "iris", "wine", "breast_cancer", "diabetes",
)
FILE_SUFFIXES: tuple[str, ...] = (".npz", ".csv")
_FUNCTION_FORM = "'package.module:function'"
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_NAME = re.compile(r"[A-Za-z_]\w*")
_CHOICES = (
    f"choose {', '.join(NAMED)}, a path to an .npz or .csv file, or {_FUNCTION_FORM} "
    "returning the data"
)
ACCEPTED = (
    "(x, y), (x_train, y_train, x_val, y_val), a mapping with x_train and y_train "
    "(and optionally x_val, y_val, x_test, y_test), a pair (train, validation) of "
    "tf.data.Datasets or a mapping {'train': ..., 'validation': ...} of them"
)


@dataclass
class Parts:
    """A source read but not yet checked: each split is (x, y); x and y are array-likes or
    dicts of them. For tf.data, each split is (dataset, None) and ``tfdata`` is True."""

    name: str
    source: dict
    train: tuple[Any, Any]
    val: tuple[Any, Any] | None = None
    test: tuple[Any, Any] | None = None
    tfdata: bool = False
    task: str | None = None  # a named set's own task, used unless the user gives one


def kind(source: Any) -> str:
    """'named', 'file', 'function' or 'memory' (no checks beyond the form)."""
    if isinstance(source, os.PathLike):
        return "file"
    if not isinstance(source, str):
        return "memory"
    if source in NAMED:
        return "named"
    if source.lower().endswith(FILE_SUFFIXES):
        return "file"
    if ":" in source:
        return "function"
    return "unknown"


def check_data_source(source: Any, *, targets: tuple[str, ...] = ()) -> None:
    """Cheap check before anything loads: no file is read, no module imported."""
    if source is None or isinstance(source, (bool, int, float)) or source == "":
        raise UserError(f"unknown data set {source!r}: {_CHOICES}")
    which = kind(source)
    name = os.fspath(source) if isinstance(source, os.PathLike) else source
    if which == "unknown":
        raise UserError(f"unknown data set {name!r}: {_CHOICES}")
    is_csv = which == "file" and str(name).lower().endswith(".csv")
    if targets and not is_csv:
        shown = repr(name) if isinstance(name, str) else f"of type {type(name).__name__}"
        raise UserError(f"targets {list(targets)} are for CSV files only, not for data set {shown}")
    if which == "file":
        path = Path(name).expanduser()
        if not path.exists():
            raise UserError(f"data set file {name!r} does not exist: {_CHOICES}")
        if not path.is_file():
            raise UserError(f"data set {name!r} is not a file: {_CHOICES}")
        if is_csv and not targets:
            raise UserError(
                f"data set {name!r}: a CSV file needs targets, the names of its target "
                "columns (--target COLUMN)"
            )
    elif which == "function":
        module, _, function = name.partition(":")
        if not _MODULE.fullmatch(module) or not _NAME.fullmatch(function):
            raise UserError(
                f"data set {name!r}: a data function must have the form {_FUNCTION_FORM}"
            )


def sendable(source: Any) -> bool:
    """Whether a worker process can load the source itself: names, paths and
    'module:function' strings can; in-memory objects and callables cannot."""
    return isinstance(source, (str, os.PathLike))


def record(source: Any, targets: tuple[str, ...] = ()) -> dict:
    """What experiment.json records about a string source (see `source_changed`)."""
    which = kind(source)
    if which == "named":
        return {"kind": "named", "name": source}
    if which == "function":
        return {"kind": "function", "function": source}
    if which == "file":
        path = Path(os.fspath(source)).expanduser().resolve()
        # The contents' hash, not the time: a copy restored with its old time (cp -p, rsync -a)
        # is still noticed, and a file only touched is still the same data.
        out = {"kind": "file", "path": str(path), "size": path.stat().st_size, "sha256": _sha256(path)}
        if path.suffix.lower() == ".csv":
            out["targets"] = list(targets)
        return out
    raise ValueError(f"no record for a {which} source")  # memory: see from_memory


def source_changed(recorded: Mapping) -> str | None:
    """Why the recorded source is not what it was (a file changed or gone), else None."""
    if not isinstance(recorded, Mapping) or recorded.get("kind") != "file":
        return None
    path = Path(recorded["path"])
    try:
        stat = path.stat()
    except OSError:
        return f"data file {str(path)!r} recorded by the study no longer exists"
    changes = []
    if stat.st_size != recorded.get("size"):
        changes.append(f"size {recorded.get('size')} -> {stat.st_size} bytes")
    elif "sha256" in recorded and _sha256(path) != recorded["sha256"]:
        changes.append("its contents differ")
    if changes:
        return f"data file {str(path)!r} changed since the study recorded it ({', '.join(changes)})"
    return None


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# --- functions and in-memory objects --------------------------------------------------------


def call_function(spec: str) -> Any:
    """Import 'module:function' and call it with no arguments."""
    return _call(spec, import_function(spec, "data function", "of no arguments returning the data"))


def _call(what: str, function: Callable[[], Any]) -> Any:
    try:
        return function()
    except Exception as exc:  # the user's code: any failure is theirs to fix
        raise UserError(f"data function {what!r} raised {one_line(exc)}") from exc


def from_memory(obj: Any, *, name: str | None = None, source: dict | None = None) -> Parts:
    """Parts from an in-memory form, or from what a zero-argument callable returns.
    ``name`` / ``source`` are given for a 'module:function' (its result)."""
    if name is None and callable(obj):
        what = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
        return _parts(_call(what, obj), None, None, returned_from=what)
    return _parts(obj, name, source, returned_from=name)


def _parts(obj: Any, name: str | None, source: dict | None, *, returned_from: str | None) -> Parts:
    def made(kind_: str, **splits) -> Parts:
        return Parts(
            name=name or kind_,
            source=source or {"kind": "memory", "type": kind_},
            tfdata=kind_ == "tf.data",
            **splits,
        )

    if isinstance(obj, Mapping):
        if "train" in obj and _is_tfdata(obj["train"]):
            unknown = sorted(set(obj) - {"train", "validation", "test"})
            if unknown or not _is_tfdata(obj.get("validation")):
                raise UserError(
                    f"data set {name or 'tf.data'!r}: a mapping of tf.data.Datasets needs "
                    "'train' and 'validation' (and optionally 'test') datasets"
                    + (f"; unknown keys {unknown}" if unknown else "")
                )
            test = obj.get("test")
            if test is not None and not _is_tfdata(test):
                raise UserError(f"data set {name or 'tf.data'!r}: 'test' must be a tf.data.Dataset")
            return made("tf.data", train=(obj["train"], None), val=(obj["validation"], None),
                        test=None if test is None else (test, None))
        if "x_train" in obj or "y_train" in obj:
            keys = {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}
            unknown = sorted(map(str, set(obj) - keys))
            if unknown:
                raise UserError(
                    f"data set {name or 'arrays'!r}: unknown keys {unknown}; expected "
                    f"{', '.join(sorted(keys))}"
                )
            pairs = {}
            for split in ("train", "val", "test"):
                has = [f"x_{split}" in obj, f"y_{split}" in obj]
                if any(has) and not all(has):
                    raise UserError(
                        f"data set {name or 'arrays'!r} has only one of x_{split} and "
                        f"y_{split}; give both" + ("" if split == "train" else " or neither")
                    )
                pairs[split] = (obj[f"x_{split}"], obj[f"y_{split}"]) if all(has) else None
            return made("arrays", **pairs)
    elif isinstance(obj, (tuple, list)):
        if len(obj) == 2 and _is_tfdata(obj[0]) and _is_tfdata(obj[1]):
            return made("tf.data", train=(obj[0], None), val=(obj[1], None))
        if len(obj) == 2 and not any(_is_tfdata(o) for o in obj):
            return made("arrays", train=(obj[0], obj[1]))
        if len(obj) == 4 and not any(_is_tfdata(o) for o in obj):
            return made("arrays", train=(obj[0], obj[1]), val=(obj[2], obj[3]))
    what = _describe(obj)
    if returned_from:
        raise UserError(f"data function {returned_from!r} returned {what}; expected {ACCEPTED}")
    raise UserError(f"data of type {what} is not accepted; expected {ACCEPTED}, or a function returning one")


def _describe(obj: Any) -> str:
    if isinstance(obj, (tuple, list)):
        inner = ", ".join(type(o).__name__ for o in obj[:6]) + (", ..." if len(obj) > 6 else "")
        return f"a {type(obj).__name__} of {len(obj)} ({inner})"
    if isinstance(obj, Mapping):
        return f"a {type(obj).__name__} with keys {sorted(map(str, obj))[:8]}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}" if type(obj).__module__ != "builtins" else f"a {type(obj).__name__}"


def _is_tfdata(obj: Any) -> bool:
    """A tf.data.Dataset, recognised without importing TensorFlow for anything else."""
    if not type(obj).__module__.startswith("tensorflow"):
        return False
    import tensorflow as tf

    return isinstance(obj, tf.data.Dataset)
