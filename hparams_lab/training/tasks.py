"""Learning tasks and the labels they take: which task a data set's labels mean, and
those labels in the dtype and shape each task's model head and loss expect.

    multiclass  y int64 (n,), classes 0..n-1          head: n_outputs = n classes
    binary      y float32 (n,) of 0/1                 head: 1
    multilabel  y float32 (n, k) of 0/1               head: k
    regression  y float32 (n,) or (n, k) as given     head: 1 or k

TensorFlow-free (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from hparams_lab.core.errors import UserError

TASKS: tuple[str, ...] = ("multiclass", "binary", "multilabel", "regression")
CLASSIFICATION: tuple[str, ...] = ("multiclass", "binary")  # stratified splits and folds
_REGRESSION_HINT = " (for a numeric target pass task='regression', --task regression)"


def check_task(task: str | None) -> str | None:
    if task is None or (isinstance(task, str) and task in TASKS):
        return task
    raise UserError(
        f"task must be one of {', '.join(TASKS)} (or None to infer it from the labels), "
        f"got {task!r}"
    )


@dataclass(frozen=True)
class Labels:
    """Every split's labels, converted for one task."""

    task: str
    y: dict[str, Any]  # split ("train", "val", "test") -> array | dict[str, array] | None
    n_outputs: int | dict[str, int]
    classes: tuple[str, ...] | None


def prepare(name: str, ys: dict[str, Any], task: str | None = None) -> Labels:
    """Infer the task from ``ys["train"]`` (when ``task`` is None), check every split
    against it and convert. ``ys`` maps split -> labels (array-like, a dict of them
    for several outputs, or None when the split is absent)."""
    train = ys["train"]
    if isinstance(train, Mapping) or any(isinstance(y, Mapping) for y in ys.values()):
        return _prepare_dict(name, ys, task)
    arrays = {f"y_{s}": as_label_array(name, f"y_{s}", y) for s, y in ys.items() if y is not None}
    task, out, n_outputs, classes = _one(name, arrays, task)
    return Labels(task, {s: out.get(f"y_{s}") for s in ys}, n_outputs, classes)


def infer(name: str, label: str, y: np.ndarray) -> str:
    """The task numeric labels mean: see the module docstring's table."""
    column = y.ndim == 1 or y.shape[1] == 1
    if not column:
        return "multilabel" if _zero_one(y) else "regression"
    if not _integral(y):
        return "regression"
    values = np.unique(y)
    if len(values) < 2:
        raise UserError(
            f"data set {name!r}: {label} has {len(values)} class(es); at least 2 are needed"
            + _REGRESSION_HINT
        )
    return "binary" if _zero_one(values) else "multiclass"


def check_finite(name: str, label: str, a: np.ndarray) -> None:
    """NaN / inf anywhere is an error naming the array and the first index."""
    if a.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        shown = index[0] if len(index) == 1 else index
        raise UserError(
            f"data set {name!r}: {label} holds {a[index].item()!r} at index {shown}; "
            "every value must be a finite number"
        )


def as_array(name: str, label: str, value: Any) -> np.ndarray:
    """``value`` as a numpy array; ragged nested lists are the user's error."""
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise UserError(f"data set {name!r}: {label} is not an array: {exc}") from exc


def as_label_array(name: str, label: str, y: Any) -> np.ndarray:
    """Labels as a numeric or str numpy array shaped (n,) or (n, k)."""
    a = as_array(name, label, y)
    if a.dtype == object:
        if all(isinstance(v, str) for v in a.flat):
            a = a.astype(str)
        else:
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError):
                kinds = sorted({type(v).__name__ for v in a.flat})
                raise UserError(
                    f"data set {name!r}: {label} holds {', '.join(kinds)} objects; "
                    "labels must be numbers or strings"
                ) from None
    if a.dtype.kind == "S":
        a = a.astype(str)
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    if a.dtype.kind not in "iufU":
        raise UserError(
            f"data set {name!r}: {label} must hold numbers or strings, got dtype {a.dtype}"
        )
    if a.ndim not in (1, 2):
        raise UserError(
            f"data set {name!r}: {label} must be shaped (samples,) or (samples, outputs), "
            f"got shape {a.shape}"
        )
    return a


# --- one output -------------------------------------------------------------------------


def _one(name: str, arrays: dict[str, np.ndarray], task: str | None):
    """(task, {label: converted}, n_outputs, classes) for one output's splits; the first
    label is the training one."""
    strings = [label for label, a in arrays.items() if a.dtype.kind == "U"]
    if strings:
        numbers = [label for label in arrays if label not in strings]
        if numbers:
            raise UserError(
                f"data set {name!r}: {strings[0]} holds strings but {numbers[0]} numbers; "
                "the splits' labels must be of one kind"
            )
        return _strings(name, arrays, task)
    for label, a in arrays.items():
        check_finite(name, label, a)
    train_label = next(iter(arrays))
    inferred = task is None
    if inferred:
        task = infer(name, train_label, arrays[train_label])
    convert = {"multiclass": _multiclass, "binary": _binary,
               "multilabel": _multilabel, "regression": _regression}[task]
    out, n_outputs = convert(name, arrays, inferred)
    return task, out, n_outputs, None


def _multiclass(name, arrays, inferred):
    out = {}
    for label, y in arrays.items():
        y = _column(name, "multiclass", label, y)
        if not _integral(y):
            bad = y[y != np.round(y)]
            raise UserError(
                f"data set {name!r}: {label} must hold integer class labels 0..n-1 for task "
                f"'multiclass', got dtype {y.dtype} (e.g. {bad.flat[0].item()!r})"
            )
        if len(y) and y.min() < 0:
            raise UserError(
                f"data set {name!r}: {label} has label {y.min().item()}; labels must be >= 0"
                + (_REGRESSION_HINT if inferred else "")
            )
        out[label] = y.astype(np.int64)
    _two_classes(name, out)
    return out, int(max(int(y.max()) for y in out.values() if len(y))) + 1


def _binary(name, arrays, inferred):
    out = {}
    for label, y in arrays.items():
        y = _column(name, "binary", label, y)
        _need_zero_one(name, "binary", label, y)
        out[label] = y.astype(np.float32)
    _two_classes(name, out)
    return out, 1


def _multilabel(name, arrays, inferred):
    out = {}
    for label, y in arrays.items():
        if y.ndim != 2:
            raise UserError(
                f"data set {name!r}: task 'multilabel' needs 2-D labels (samples, labels) "
                f"of 0 and 1, but {label} is shaped {y.shape}"
            )
        _need_zero_one(name, "multilabel", label, y)
        out[label] = y.astype(np.float32)
    _same_width(name, out)
    return out, int(next(iter(out.values())).shape[1])


def _regression(name, arrays, inferred):
    out = {label: y.astype(np.float32) for label, y in arrays.items()}
    _same_width(name, out)
    first = next(iter(out.values()))
    return out, 1 if first.ndim == 1 else int(first.shape[1])


def _strings(name, arrays, task):
    """String labels are class names: 0..n-1 in sorted order over every split."""
    flat = {}
    for label, y in arrays.items():
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(-1)
        if y.ndim != 1:
            raise UserError(
                f"data set {name!r}: {label} holds strings shaped {y.shape}; string class "
                "labels must be one per sample"
            )
        flat[label] = y
    train_label = next(iter(flat))
    classes = tuple(sorted(set().union(*(set(y.tolist()) for y in flat.values()))))
    if task is None:
        task = "binary" if len(classes) == 2 else "multiclass"
    if task not in CLASSIFICATION:
        raise UserError(
            f"data set {name!r}: task {task!r} needs numbers, but {train_label} holds strings "
            f"(e.g. {str(flat[train_label].flat[0])!r})"
        )
    if task == "binary" and len(classes) != 2:
        shown = ", ".join(repr(c) for c in classes[:5]) + (", ..." if len(classes) > 5 else "")
        raise UserError(
            f"data set {name!r}: task 'binary' needs exactly 2 classes, but the labels name "
            f"{len(classes)} ({shown})"
        )
    table = np.array(classes)
    dtype = np.int64 if task == "multiclass" else np.float32
    out = {label: np.searchsorted(table, y).astype(dtype) for label, y in flat.items()}
    _two_classes(name, out)
    return task, out, len(classes) if task == "multiclass" else 1, classes


def _column(name, task, label, y):
    if y.ndim == 2 and y.shape[1] == 1:  # (n, 1) as in keras' cifar10
        return y.reshape(-1)
    if y.ndim != 1:
        raise UserError(
            f"data set {name!r}: task {task!r} needs one label per sample, but {label} is "
            f"shaped {y.shape} (for 2-D 0/1 labels use task 'multilabel')"
        )
    return y


def _need_zero_one(name, task, label, y):
    if not _zero_one(y):
        bad = y[(y != 0) & (y != 1)]
        raise UserError(
            f"data set {name!r}: task {task!r} needs labels 0 and 1, but {label} holds "
            f"{bad.flat[0].item()!r}"
        )


def _two_classes(name, out):
    label, y = next(iter(out.items()))
    n = len(np.unique(y))
    if n < 2:
        raise UserError(f"data set {name!r}: {label} has {n} class(es); at least 2 are needed")


def _same_width(name, out):
    (first, y0), *rest = out.items()
    for label, y in rest:
        if y.shape[1:] != y0.shape[1:]:
            raise UserError(
                f"data set {name!r}: {label} is shaped {y.shape[1:]} per sample but {first} "
                f"{y0.shape[1:]}; they must match"
            )


def _integral(y: np.ndarray) -> bool:
    return y.dtype.kind in "iu" or bool(np.all(y == np.round(y)))


def _zero_one(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)))


# --- several outputs (a dict of label arrays) ---------------------------------------------


def _prepare_dict(name: str, ys: dict[str, Any], task: str | None) -> Labels:
    train = ys["train"]
    if not isinstance(train, Mapping) or not train:
        raise UserError(f"data set {name!r}: y_train must be an array or a non-empty dict of arrays")
    keys = [str(k) for k in train]
    for split, y in ys.items():
        if y is None:
            continue
        if not isinstance(y, Mapping) or sorted(map(str, y)) != sorted(keys):
            have = sorted(map(str, y)) if isinstance(y, Mapping) else type(y).__name__
            raise UserError(
                f"data set {name!r}: y_{split} has outputs {have} but y_train {sorted(keys)}; "
                "they must match"
            )
    per = {
        k: {f"y_{s}[{k!r}]": as_label_array(name, f"y_{s}[{k!r}]", {str(j): v for j, v in y.items()}[k])
            for s, y in ys.items() if y is not None}
        for k in keys
    }
    for arrays in per.values():
        for label, a in arrays.items():
            if a.dtype.kind == "U":
                raise UserError(
                    f"data set {name!r}: {label} holds strings; string class labels are "
                    "supported for a single output only (map them to 0..n-1)"
                )
    results = {k: _one(name, arrays, task) for k, arrays in per.items()}
    if task is None:
        found = {k: r[0] for k, r in results.items()}
        if len(set(found.values())) == 1:
            task = next(iter(found.values()))
        elif "regression" in found.values():
            task = "regression"
            results = {k: _one(name, arrays, task) for k, arrays in per.items()}
        else:
            shown = ", ".join(f"{k}: {t}" for k, t in found.items())
            raise UserError(
                f"data set {name!r}: the outputs' labels suggest different tasks ({shown}); "
                "pass the task (task=..., --task)"
            )
    y = {
        s: None if ys[s] is None else {k: results[k][1][f"y_{s}[{k!r}]"] for k in keys}
        for s in ys
    }
    return Labels(task, y, {k: results[k][2] for k in keys}, None)
