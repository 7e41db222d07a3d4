"""Data sets: the user's own data or a named one, checked, split and cached.

A source is a named set (digits, the offline default; mnist / fashion_mnist through
keras.datasets; iris, wine, breast_cancer, diabetes from scikit-learn's bundled
files), an .npz or .csv file, a 'module:function' returning data, or (from Python)
arrays, tf.data datasets or a callable returning them (`training.sources`). Labels
mean a task (`training.tasks`); CSV files are read by `training.tabular`.

Only mnist / fashion_mnist import Keras, and only a tf.data source imports
TensorFlow; everything else stays TensorFlow-free so that validating a study and
`--help` remain fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from hparams_lab.core.errors import UserError, one_line
from hparams_lab.training import sources, tasks
from hparams_lab.training.sources import Parts, check_data_source, sendable, source_changed
from hparams_lab.training.tasks import CLASSIFICATION, TASKS

__all__ = [
    "DATASETS", "TASKS", "Dataset", "load_data", "check_data_source", "sendable",
    "source_changed", "needs_keras", "cv_fold", "check_folds",
]

DATASETS: tuple[str, ...] = sources.NAMED

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
# scikit-learn's bundled (offline) tabular sets: loader name, task.
_SKLEARN_SETS = {
    "iris": ("load_iris", "multiclass"),
    "wine": ("load_wine", "multiclass"),
    "breast_cancer": ("load_breast_cancer", "binary"),
    "diabetes": ("load_diabetes", "regression"),
}

Arrays = Any  # np.ndarray | dict[str, np.ndarray]; for tf.data x_* is the user's dataset


# eq=False: field-wise == on numpy arrays is ambiguous; identity is what the cache needs.
@dataclass(frozen=True, eq=False)
class Dataset:
    """One data set, split. x arrays are float32 (dicts of them for several inputs);
    labels are as `training.tasks` makes them for ``task``. For a tf.data source x_train
    / x_val / x_test are the user's datasets (yielding (x, y) batches), y_* are None."""

    name: str
    x_train: Arrays
    y_train: Arrays | None
    x_val: Arrays
    y_val: Arrays | None
    x_test: Arrays | None
    y_test: Arrays | None
    task: str
    n_outputs: int | dict[str, int]
    input_shape: tuple[int, ...] | dict[str, tuple[int, ...]]
    classes: tuple[str, ...] | None = None
    source: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int | dict[str, int] | None:
        """Classes a classifier's labels take: n_outputs (multiclass), 2 (binary), else None."""
        if self.task == "multiclass":
            return self.n_outputs
        if self.task == "binary":
            return 2 if not isinstance(self.n_outputs, dict) else {k: 2 for k in self.n_outputs}
        return None

    @property
    def batched(self) -> bool:
        """True for tf.data: the batch size is the user's, not a hparam's."""
        return self.y_train is None


# A study trains many trials in one process; loading and splitting once saves seconds
# per trial. Keys: (source, mtime for files, seed, validation_split, task, targets).
# In-memory sources (and what a callable returns) are not cached.
_CACHE: dict[tuple, Dataset] = {}


def needs_keras(name: Any) -> bool:
    """Whether loading ``name`` imports Keras (its keras.datasets loader)."""
    return isinstance(name, str) and name in _KERAS_FILES


def load_data(
    source: Any,
    *,
    seed: int = 0,
    validation_split: float = 0.2,
    task: str | None = None,
    targets: tuple[str, ...] | list[str] = (),
) -> Dataset:
    """Load, check and split ``source``; the same string source and arguments return
    the same object. Every mistake is a UserError raised here, before anything is written."""
    _check_split_args(seed, validation_split)
    task = tasks.check_task(task)
    targets = _check_targets(targets)
    check_data_source(source, targets=targets)
    validation_split = float(validation_split)
    if not sendable(source):
        return _build(sources.from_memory(source), seed, validation_split, task)
    source = os.fspath(source)
    key = (*_source_key(source), seed, validation_split, task, targets)
    if key not in _CACHE:
        _CACHE[key] = _build(_read(source, targets), seed, validation_split, task)
    return _CACHE[key]


def _check_targets(targets: Any) -> tuple[str, ...]:
    if isinstance(targets, str):
        targets = (targets,)
    if not isinstance(targets, (tuple, list)) or not all(isinstance(t, str) and t for t in targets):
        raise UserError(f"targets must be column names (strings), got {targets!r}")
    return tuple(targets)


def _source_key(source: str) -> tuple:
    if sources.kind(source) != "file":
        return (source,)
    path = Path(source).expanduser().resolve()
    # mtime: a file rewritten between studies in one process must be read again.
    return (str(path), path.stat().st_mtime_ns)


def _check_split_args(seed: int, validation_split: float) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UserError(f"seed must be an integer, got {seed!r}")
    ok = isinstance(validation_split, (int, float)) and not isinstance(validation_split, bool)
    if not ok or not 0.0 < validation_split < 1.0:
        raise UserError(
            f"validation_split must be a number strictly between 0 and 1, got {validation_split!r}"
        )


def _read(source: str, targets: tuple[str, ...]) -> Parts:
    """Parts of a string source: a named set, a file or a data function."""
    which = sources.kind(source)
    if which == "function":
        record = {"kind": "function", "function": source}
        return sources.from_memory(sources.call_function(source), name=source, source=record)
    record = sources.record(source, targets)
    if source == "digits":
        (x, y), test = _load_digits()
        task = "multiclass"
    elif source in _KERAS_FILES:
        (x, y), test = _load_keras(source)
        task = "multiclass"
    elif source in _SKLEARN_SETS:
        (x, y), test = _load_sklearn(source)
        task = _SKLEARN_SETS[source][1]
    elif source.lower().endswith(".csv"):
        from hparams_lab.training.tabular import read_csv

        return Parts(name=source, source=record, train=read_csv(source, targets))
    else:
        return _npz_parts(source, record)
    return Parts(name=source, source=record, train=(x, y), test=test, task=task)


# --- checking and splitting arrays ------------------------------------------------------------


def _build(parts: Parts, seed: int, validation_split: float, task: str | None) -> Dataset:
    if parts.tfdata:
        return _build_tfdata(parts, task)
    name = parts.name
    given = {s: p for s, p in (("train", parts.train), ("val", parts.val), ("test", parts.test))
             if p is not None}
    xs = {s: _inputs(name, x, s) for s, (x, _) in given.items()}
    labels = tasks.prepare(name, {s: y for s, (_, y) in given.items()}, task or parts.task)
    ys = labels.y
    for s in given:
        _same_length(name, s, xs[s], ys[s])
    for s in given:
        if s != "train":
            _same_samples(name, s, xs[s], xs["train"])
    if "val" in given:
        x_train, y_train, x_val, y_val = xs["train"], ys["train"], xs["val"], ys["val"]
    else:
        x_train, y_train, x_val, y_val = _split(
            name, xs["train"], ys["train"], labels.task, labels.classes, seed, validation_split
        )
    return Dataset(
        name=name,
        x_train=_frozen(x_train),
        y_train=_frozen(y_train),
        x_val=_frozen(x_val),
        y_val=_frozen(y_val),
        x_test=_frozen(xs.get("test")),
        y_test=_frozen(ys.get("test")),
        task=labels.task,
        n_outputs=labels.n_outputs,
        input_shape=_map(lambda a: tuple(int(d) for d in a.shape[1:]), x_train),
        classes=labels.classes,
        source=parts.source,
    )


def _map(f: Callable, arrays: Any) -> Any:
    if isinstance(arrays, dict):
        return {k: f(v) for k, v in arrays.items()}
    return f(arrays)


def _named(arrays: Any, label: str) -> list[tuple[str, np.ndarray]]:
    if isinstance(arrays, dict):
        return [(f"{label}[{k!r}]", v) for k, v in arrays.items()]
    return [(label, arrays)]


def _inputs(name: str, x: Any, split: str) -> Any:
    """x as float32 (uint8 as 0..255 pixels scaled to 0..1), or a dict of such arrays."""
    if isinstance(x, Mapping):
        if not x:
            raise UserError(f"data set {name!r}: x_{split} is an empty mapping; it needs arrays")
        return {str(k): _input(name, f"x_{split}[{str(k)!r}]", v) for k, v in x.items()}
    return _input(name, f"x_{split}", x)


def _input(name: str, label: str, x: Any) -> np.ndarray:
    a = tasks.as_array(name, label, x)
    if a.dtype == object:
        with contextlib.suppress(TypeError, ValueError):
            a = a.astype(np.float64)
    if a.dtype.kind not in "biuf" or a.ndim < 2:
        raise UserError(
            f"data set {name!r}: {label} must be a numeric array shaped "
            f"(samples, features...), got dtype {a.dtype} with shape {a.shape}"
        )
    if len(a) == 0:
        raise UserError(f"data set {name!r}: {label} is empty (0 samples)")
    # uint8 means 0..255 pixels by convention; anything else is taken as already scaled.
    # astype copies, so freezing never touches the caller's arrays.
    with np.errstate(over="ignore"):  # reported below, with the index
        a = _images(a) if a.dtype == np.uint8 else a.astype(np.float32)
    tasks.check_finite(name, label, a)  # after the cast: float64 beyond float32's range is inf
    return a


def _same_length(name: str, split: str, x: Any, y: Any) -> None:
    arrays = _named(x, f"x_{split}") + _named(y, f"y_{split}")
    first, a0 = arrays[0]
    for label, a in arrays[1:]:
        if len(a) != len(a0):
            raise UserError(
                f"data set {name!r}: {first} has {len(a0)} samples but {label} has {len(a)}; "
                "they must match"
            )


def _same_samples(name: str, split: str, x: Any, train: Any) -> None:
    if isinstance(x, dict) != isinstance(train, dict) or (
        isinstance(x, dict) and sorted(x) != sorted(train)
    ):
        have = lambda a: sorted(a) if isinstance(a, dict) else "one array"  # noqa: E731
        raise UserError(
            f"data set {name!r}: x_{split} has inputs {have(x)} but x_train {have(train)}; "
            "they must match"
        )
    if isinstance(x, dict):
        pairs = [(f"x_{split}[{k!r}]", x[k], f"x_train[{k!r}]", train[k]) for k in train]
    else:
        pairs = [(f"x_{split}", x, "x_train", train)]
    for label, a, train_label, t in pairs:
        if a.shape[1:] != t.shape[1:]:
            raise UserError(
                f"data set {name!r}: {label} samples are shaped {a.shape[1:]} but "
                f"{train_label} samples {t.shape[1:]}; they must match"
            )


def _length(arrays: Any) -> int:
    return len(next(iter(arrays.values())) if isinstance(arrays, dict) else arrays)


def _take(arrays: Any, index: np.ndarray) -> Any:
    return _map(lambda a: a[index], arrays)


def _class_name(value: Any, classes: tuple[str, ...] | None) -> str:
    return repr(classes[int(value)]) if classes else str(int(value))


def _split(name, x, y, task, classes, seed, validation_split):
    """Seeded train/validation split with errors a user can act on: stratified for one
    classification output, plainly shuffled otherwise; every array by the same indices."""
    from sklearn.model_selection import train_test_split

    n = _length(x)
    n_val = math.ceil(validation_split * n)
    index = np.arange(n)
    if task in CLASSIFICATION and not isinstance(y, dict):
        values, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            small = _class_name(values[counts.argmin()], classes)
            raise UserError(
                f"data set {name!r}: class {small} has only {counts.min()} training sample(s); "
                "each class needs at least 2 for a stratified validation split"
            )
        if n_val < len(values) or n - n_val < len(values):
            raise UserError(
                f"data set {name!r}: validation_split {validation_split} gives {n_val} validation "
                f"and {n - n_val} training samples for {len(values)} classes; "
                "each split needs at least one sample per class"
            )
        # Splitting indices gives the very arrays train_test_split(x, y, ...) would.
        train, val = train_test_split(
            index, test_size=validation_split, stratify=y, random_state=int(seed)
        )
    else:
        if n_val < 1 or n - n_val < 1:
            raise UserError(
                f"data set {name!r}: validation_split {validation_split} gives {n_val} validation "
                f"and {n - n_val} training samples; each split needs at least one"
            )
        train, val = train_test_split(
            index, test_size=validation_split, shuffle=True, random_state=int(seed)
        )
    return _take(x, train), _take(y, train), _take(x, val), _take(y, val)


def _frozen(arrays: Any) -> Any:
    # The cached arrays are shared by every trial; read-only stops one trial's
    # in-place preprocessing from leaking into the next.
    def freeze(a):
        a.setflags(write=False)
        return a

    return None if arrays is None else _map(freeze, arrays)


# --- tf.data ---------------------------------------------------------------------------------


def _build_tfdata(parts: Parts, task: str | None) -> Dataset:
    """The user's datasets as they are; the task and input shape from their element spec
    and the validation labels (iterated once: a validation dataset is finite)."""
    name = parts.name
    specs = {}
    for split, pair in (("train", parts.train), ("val", parts.val), ("test", parts.test)):
        if pair is None:
            continue
        spec = pair[0].element_spec
        if not isinstance(spec, tuple) or len(spec) != 2:
            raise UserError(
                f"data set {name!r}: the {split} tf.data.Dataset must yield (x, y) pairs, "
                f"got elements {spec}"
            )
        specs[split] = spec
    for split, (x_spec, y_spec) in specs.items():
        for label, s in _named(_spec_dict(y_spec), f"y_{split}"):
            if s.shape.rank == 0:
                raise UserError(
                    f"data set {name!r}: the {split} tf.data.Dataset yields single samples "
                    f"({label} is a scalar); batch it (dataset.batch(32))"
                )
    shapes = {s: _map(_sample_shape, _spec_dict(x)) for s, (x, _) in specs.items()}
    for split, shape in shapes.items():
        if shape != shapes["train"]:
            raise UserError(
                f"data set {name!r}: x_{split} samples are shaped {shape} but x_train "
                f"samples {shapes['train']}; they must match"
            )
    y_val = _collect_labels(name, parts.val[0])
    labels = tasks.prepare(name, {"train": y_val}, task or parts.task)
    if labels.classes is not None:
        raise UserError(f"data set {name!r}: tf.data labels must be numbers, not strings")
    return Dataset(
        name=name,
        x_train=parts.train[0], y_train=None,
        x_val=parts.val[0], y_val=None,
        x_test=None if parts.test is None else parts.test[0], y_test=None,
        task=labels.task,
        n_outputs=labels.n_outputs,
        input_shape=shapes["train"],
        classes=None,
        source=parts.source,
    )


def _spec_dict(spec: Any) -> Any:
    return dict(spec) if isinstance(spec, Mapping) else spec


def _sample_shape(spec: Any) -> tuple:
    dims = spec.shape.as_list() if spec.shape.rank is not None else []
    return tuple(dims[1:])


def _collect_labels(name: str, dataset: Any) -> Any:
    batches = []
    try:
        for _, y in dataset:
            batches.append(_map(np.asarray, dict(y) if isinstance(y, Mapping) else y))
    except Exception as exc:  # the user's pipeline
        raise UserError(
            f"data set {name!r}: iterating the validation tf.data.Dataset failed: {one_line(exc)}"
        ) from exc
    if not batches:
        raise UserError(f"data set {name!r}: the validation tf.data.Dataset is empty")
    if isinstance(batches[0], dict):
        return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    return np.concatenate(batches)


# --- built-in data sets -------------------------------------------------------------


def _load_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16 in this data set.
    x = (bunch.images / 16.0).astype(np.float32)
    return (x, bunch.target.astype(np.int64)), None


def _load_sklearn(name: str):
    """iris, wine, breast_cancer, diabetes: scikit-learn's bundled files (offline)."""
    import sklearn.datasets

    loader, task = _SKLEARN_SETS[name]
    bunch = getattr(sklearn.datasets, loader)()
    x = bunch.data.astype(np.float64)
    # z-scored over the whole set (train and validation together) so an MLP trains on
    # the raw units: a small leak of the validation statistics, acceptable for these
    # fixed demo sets; the user's own data is never rescaled.
    std = x.std(axis=0)
    x = ((x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)
    y = bunch.target
    y = y.astype(np.float64) if task == "regression" else y.astype(np.int64)  # diabetes: raw
    return (x, y), None


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


def _npz_parts(name: str, record: dict) -> Parts:
    """x_train/y_train (and optionally x_val/y_val, x_test/y_test) from an .npz file."""
    arrays = _read_npz(name)
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise UserError(
            f"data set {name!r} lacks {', '.join(missing)}: it holds "
            f"{', '.join(sorted(arrays)) or 'no arrays'}; x_train and y_train are required"
        )
    pairs = {}
    for split in ("val", "test"):
        has = [f"x_{split}" in arrays, f"y_{split}" in arrays]
        if any(has) and not all(has):
            raise UserError(
                f"data set {name!r} has only one of x_{split} and y_{split}; give both or neither"
            )
        pairs[split] = (arrays[f"x_{split}"], arrays[f"y_{split}"]) if all(has) else None
    return Parts(name=name, source=record, train=(arrays["x_train"], arrays["y_train"]), **pairs)


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


# --- cross-validation ---------------------------------------------------------------


def check_folds(data: Dataset, folds: int) -> None:
    """K-fold needs arrays, K samples, and (stratified) K samples of every class."""
    if data.batched:
        raise UserError(f"--cv {folds} needs arrays, not tf.data (data set {data.name!r})")
    y = _concat(data.y_train, data.y_val)
    if _stratified(data):
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() < folds:
            raise UserError(
                f"--cv {folds}: class {_class_name(classes[counts.argmin()], data.classes)} of data "
                f"set {data.name!r} has only {counts.min()} sample(s); stratified {folds}-fold "
                f"cross-validation needs at least {folds}"
            )
    elif _length(y) < folds:
        raise UserError(
            f"--cv {folds}: data set {data.name!r} has only {_length(y)} samples; "
            f"{folds}-fold cross-validation needs at least {folds}"
        )


def cv_fold(data: Dataset, fold: int, folds: int, seed: int) -> Dataset:
    """Fold ``fold`` of a seeded K-fold over train + validation (test untouched):
    stratified for one classification output, plainly shuffled otherwise."""
    if data.batched:
        raise UserError(f"--cv needs arrays, not tf.data (data set {data.name!r})")
    return _cv_folds(data, folds, seed)[fold]


# (id(data), folds, seed) -> (data, its folds); holding data keeps its id from being reused
# by another Dataset (in-memory sources are not in _CACHE).
_FOLD_CACHE: dict[tuple[int, int, int], tuple[Dataset, tuple[Dataset, ...]]] = {}


def _stratified(data: Dataset) -> bool:
    return data.task in CLASSIFICATION and not isinstance(data.y_train, dict)


def _concat(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {k: np.concatenate([a[k], b[k]]) for k in a}
    return np.concatenate([a, b])


def _cv_folds(data: Dataset, folds: int, seed: int) -> tuple[Dataset, ...]:
    key = (id(data), folds, seed)
    if key not in _FOLD_CACHE or _FOLD_CACHE[key][0] is not data:
        from sklearn.model_selection import KFold, StratifiedKFold

        x = _concat(data.x_train, data.x_val)
        y = _concat(data.y_train, data.y_val)
        n = _length(x)
        if _stratified(data):
            splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(seed)).split(
                np.zeros(n), y
            )
        else:
            splits = KFold(n_splits=folds, shuffle=True, random_state=int(seed)).split(np.zeros(n))
        _FOLD_CACHE[key] = (data, tuple(
            dataclasses.replace(
                data,
                x_train=_frozen(_take(x, train)), y_train=_frozen(_take(y, train)),
                x_val=_frozen(_take(x, val)), y_val=_frozen(_take(y, val)),
            )
            for train, val in splits
        ))
    return _FOLD_CACHE[key][1]
