"""Data sets by name: digits (offline default), mnist / fashion_mnist, or an .npz file.

Only loading mnist / fashion_mnist imports Keras; names, digits and .npz files stay
TensorFlow-free so that validating a study and `--help` remain fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from hparams_lab.core.errors import UserError, one_line

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion_mnist")

_CHOICES = "choose digits, mnist, fashion_mnist or a path to an .npz file"
_OFFLINE_HINT = "use --dataset digits or an .npz file"
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)  # where keras.datasets downloads from
_PROBE_TIMEOUT_S = 3.0
_DOWNLOAD_TIMEOUT_S = 30.0  # per socket operation, so a dead network fails, not hangs
# Files keras.datasets keeps under <keras home>/datasets for each data set.
_KERAS_FILES = {
    "mnist": ("mnist.npz",),
    "fashion_mnist": tuple(
        f"fashion-mnist/{f}"
        for f in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        )
    ),
}


# eq=False: field-wise == on numpy arrays is ambiguous; identity is what the cache needs.
@dataclass(frozen=True, eq=False)
class Dataset:
    """One data set, split; x is float32, y holds int labels 0..n_classes-1."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    n_classes: int
    input_shape: tuple[int, ...]
    task: str = "multiclass"
    classes: tuple[str, ...] | None = None
    source: dict = dataclasses.field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        return self.n_classes

    @property
    def batched(self) -> bool:
        return False


# TEMPORARY shims until the data-sources branch lands.
def check_data_source(source, *, targets=()):
    check_dataset(source)


def load_data(source, *, seed=0, validation_split=0.2, task=None, targets=()):
    data = load_dataset(source, seed=seed, validation_split=validation_split)
    return dataclasses.replace(data, source={"kind": "named", "name": source})


def sendable(source):
    return isinstance(source, str)


def source_changed(recorded):
    return None


# A study trains many trials in one process; loading and splitting once saves seconds
# per trial. Keys: (name or absolute path, mtime for files, seed, validation_split).
_CACHE: dict[tuple, Dataset] = {}


def check_dataset(name: str) -> None:
    """Cheap validation of a data set name, without loading anything."""
    if not isinstance(name, str) or not name:
        raise UserError(f"unknown data set {name!r}: {_CHOICES}")
    if name in DATASETS:
        return
    if not name.endswith(".npz"):
        raise UserError(f"unknown data set {name!r}: {_CHOICES}")
    path = Path(name).expanduser()
    if not path.exists():
        raise UserError(f"data set file {name!r} does not exist: {_CHOICES}")
    if not path.is_file():
        raise UserError(f"data set {name!r} is not a file: {_CHOICES}")


def needs_keras(name: str) -> bool:
    """Whether loading ``name`` imports Keras (its keras.datasets loader)."""
    return name in _KERAS_FILES


def load_dataset(name: str, *, seed: int = 0, validation_split: float = 0.2) -> Dataset:
    """Load, scale and split a data set; the same arguments return the same object."""
    check_dataset(name)
    _check_split_args(seed, validation_split)
    key = (*_source_key(name), seed, float(validation_split))
    if key not in _CACHE:
        _CACHE[key] = _load_uncached(name, seed, float(validation_split))
    return _CACHE[key]


def _source_key(name: str) -> tuple:
    if name in DATASETS:
        return (name,)
    path = Path(name).expanduser().resolve()
    # mtime: an .npz rewritten between studies in one process must be read again.
    return (str(path), path.stat().st_mtime_ns)


def _check_split_args(seed: int, validation_split: float) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UserError(f"seed must be an integer, got {seed!r}")
    ok = isinstance(validation_split, (int, float)) and not isinstance(validation_split, bool)
    if not ok or not 0.0 < validation_split < 1.0:
        raise UserError(
            f"validation_split must be a number strictly between 0 and 1, got {validation_split!r}"
        )


def _load_uncached(name: str, seed: int, validation_split: float) -> Dataset:
    if name == "digits":
        (x, y), test = _load_digits()
    elif name in _KERAS_FILES:
        (x, y), test = _load_keras(name)
    else:
        (x, y), test = _load_npz(name)
    x_train, x_val, y_train, y_val = _split(name, x, y, seed, validation_split)
    x_test, y_test = test if test is not None else (None, None)
    labels = [y_train, y_val] + ([y_test] if y_test is not None else [])
    return Dataset(
        name=name,
        x_train=_frozen(x_train),
        y_train=_frozen(y_train),
        x_val=_frozen(x_val),
        y_val=_frozen(y_val),
        x_test=None if x_test is None else _frozen(x_test),
        y_test=None if y_test is None else _frozen(y_test),
        n_classes=int(max(int(y.max()) for y in labels)) + 1,
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    # The cached arrays are shared by every trial; read-only stops one trial's
    # in-place preprocessing from leaking into the next.
    a.setflags(write=False)
    return a


def _split(name, x, y, seed, validation_split):
    """Seeded, stratified train/validation split with errors a user can act on."""
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        small = classes[counts.argmin()]
        raise UserError(
            f"data set {name!r}: class {small} has only {counts.min()} training sample(s); "
            "each class needs at least 2 for a stratified validation split"
        )
    n_val = math.ceil(validation_split * len(y))
    if n_val < len(classes) or len(y) - n_val < len(classes):
        raise UserError(
            f"data set {name!r}: validation_split {validation_split} gives {n_val} validation "
            f"and {len(y) - n_val} training samples for {len(classes)} classes; "
            "each split needs at least one sample per class"
        )
    return train_test_split(
        x, y, test_size=validation_split, stratify=y, random_state=int(seed)
    )


# --- built-in data sets -------------------------------------------------------------


def _load_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16 in this data set.
    x = (bunch.images / 16.0).astype(np.float32)
    return (x, bunch.target.astype(np.int64)), None


def _load_keras(name: str):
    """mnist / fashion_mnist through keras.datasets, failing fast when offline."""
    cached = _keras_cached(name)
    if cached is None and not _network_reachable():
        raise UserError(
            f"could not load data set {name!r}: not in the Keras cache "
            f"({_keras_home() / 'datasets'}) and no network to download it; {_OFFLINE_HINT}"
        )
    loader = _keras_loader(name)
    try:
        with _socket_timeout(None if cached else _DOWNLOAD_TIMEOUT_S):
            (x_train, y_train), (x_test, y_test) = loader()
    except Exception as exc:  # download, hash or file errors all mean "cannot load"
        where = f"from {cached}" if cached else "(download failed)"
        raise UserError(
            f"could not load data set {name!r} {where}: {one_line(exc)}; {_OFFLINE_HINT}"
        ) from exc
    return (_images(x_train), y_train.astype(np.int64)), (
        _images(x_test),
        y_test.astype(np.int64),
    )


def _images(x: np.ndarray) -> np.ndarray:
    return (x / 255.0).astype(np.float32)


def _keras_loader(name: str) -> Callable[[], tuple]:
    """The keras.datasets load_data function (tests replace this; it downloads)."""
    import keras

    return getattr(keras.datasets, name).load_data


def _keras_home() -> Path:
    """Where keras.datasets caches files, resolved the way Keras resolves it."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def _keras_cached(name: str) -> Path | None:
    """The cache directory holding all of the data set's files, or None."""
    homes = [_keras_home()]
    # Keras falls back to /tmp/.keras when its home is not writable.
    if not os.access(homes[0], os.W_OK):
        homes.append(Path("/tmp/.keras"))
    for home in homes:
        datadir = home / "datasets"
        if all((datadir / f).is_file() for f in _KERAS_FILES[name]):
            return datadir
    return None


def _network_reachable() -> bool:
    try:
        socket.create_connection(_DOWNLOAD_HOST, timeout=_PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _socket_timeout(seconds: float | None) -> Iterator[None]:
    # urllib (used by keras' get_file) has no timeout of its own; a stalled
    # download would otherwise hang the study for minutes.
    if seconds is None:
        yield
        return
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


# --- .npz files ---------------------------------------------------------------------


def _load_npz(name: str):
    """x_train/y_train (and optionally x_test/y_test together) from an .npz file."""
    arrays = _read_npz(name)
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise UserError(
            f"data set {name!r} lacks {', '.join(missing)}: it holds "
            f"{', '.join(sorted(arrays)) or 'no arrays'}; x_train and y_train are required"
        )
    has_test = ["x_test" in arrays, "y_test" in arrays]
    if any(has_test) and not all(has_test):
        raise UserError(
            f"data set {name!r} has only one of x_test and y_test; give both or neither"
        )
    train = _npz_pair(name, arrays, "train")
    test = _npz_pair(name, arrays, "test") if all(has_test) else None
    if test is not None and test[0].shape[1:] != train[0].shape[1:]:
        raise UserError(
            f"data set {name!r}: x_test samples are shaped {test[0].shape[1:]} but "
            f"x_train samples {train[0].shape[1:]}; they must match"
        )
    if len(np.unique(train[1])) < 2:
        raise UserError(
            f"data set {name!r}: y_train has {len(np.unique(train[1]))} class(es); "
            "at least 2 are needed"
        )
    return train, test


def _read_npz(name: str) -> dict[str, np.ndarray]:
    path = Path(name).expanduser()
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise UserError(f"data set {name!r} could not be read: {one_line(exc)}") from exc
    # An .npz is a zip archive; say so plainly instead of numpy's pickle message.
    if magic != b"PK\x03\x04":
        raise UserError(f"data set {name!r} is not an .npz file (not a zip archive of arrays)")
    try:
        # allow_pickle=False: an .npz from elsewhere must never run code on load.
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(
            f"data set {name!r} could not be read as an .npz file: {one_line(exc)}"
        ) from exc


def _npz_pair(name: str, arrays: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise UserError(
            f"data set {name!r}: x_{split} must be a numeric array shaped "
            f"(samples, features...), got dtype {x.dtype} with shape {x.shape}"
        )
    y = _labels(name, y, split)
    if len(x) != len(y):
        raise UserError(
            f"data set {name!r}: x_{split} has {len(x)} samples but y_{split} has {len(y)}; "
            "they must match"
        )
    # uint8 means 0..255 pixels by convention; anything else is taken as already scaled.
    x = _images(x) if x.dtype == np.uint8 else x.astype(np.float32)
    return x, y


def _labels(name: str, y: np.ndarray, split: str) -> np.ndarray:
    """Integer labels >= 0; float labels are accepted when every value is integral."""
    if y.ndim == 2 and y.shape[1] == 1:  # (n, 1) as in keras' cifar10
        y = y.reshape(-1)
    if y.ndim != 1:
        raise UserError(
            f"data set {name!r}: y_{split} must hold one integer label per sample, "
            f"got shape {y.shape} (one-hot labels are not supported)"
        )
    integral = y.dtype.kind in "iu" or (
        y.dtype.kind == "f" and bool(np.all(np.isfinite(y))) and bool(np.all(y == np.round(y)))
    )
    if not integral:
        bad = y if y.dtype.kind != "f" else y[~np.isfinite(y) | (y != np.round(y))]
        raise UserError(
            f"data set {name!r}: y_{split} must hold integer class labels 0..n-1, "
            f"got dtype {y.dtype} (e.g. {bad.flat[0].item()!r})"
        )
    if len(y) and y.min() < 0:
        raise UserError(
            f"data set {name!r}: y_{split} has label {y.min().item()}; labels must be >= 0"
        )
    return y.astype(np.int64)


# --- cross-validation ---------------------------------------------------------------


def check_folds(data: Dataset, folds: int) -> None:
    """Stratified K-fold needs at least K samples of every class."""
    y = np.concatenate([data.y_train, data.y_val])
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < folds:
        raise UserError(
            f"--cv {folds}: class {classes[counts.argmin()]} of data set {data.name!r} has only "
            f"{counts.min()} sample(s); stratified {folds}-fold cross-validation needs at least {folds}"
        )


def cv_fold(data: Dataset, fold: int, folds: int, seed: int) -> Dataset:
    """Fold ``fold`` of a seeded, stratified K-fold over train + validation (test untouched)."""
    return _cv_folds(data, folds, seed)[fold]


_FOLD_CACHE: dict[tuple[int, int, int], tuple[Dataset, ...]] = {}


def _cv_folds(data: Dataset, folds: int, seed: int) -> tuple[Dataset, ...]:
    key = (id(data), folds, seed)  # data sets are cached per process, so id() is stable
    if key not in _FOLD_CACHE:
        from sklearn.model_selection import StratifiedKFold

        x = np.concatenate([data.x_train, data.x_val])
        y = np.concatenate([data.y_train, data.y_val])
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(seed))
        _FOLD_CACHE[key] = tuple(
            dataclasses.replace(
                data,
                x_train=_frozen(x[train]), y_train=_frozen(y[train]),
                x_val=_frozen(x[val]), y_val=_frozen(y[val]),
            )
            for train, val in splitter.split(x, y)
        )
    return _FOLD_CACHE[key]
