"""hparams_lab.training.data with the user's own data: every source kind, task inference,
CSV files, data functions, dict inputs/outputs, tf.data, bad inputs, source records."""

import hashlib
import os
from pathlib import Path
import textwrap

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from hparams_lab.core.errors import UserError
from hparams_lab.training import data
from hparams_lab.training.data import (
    check_data_source,
    check_folds,
    cv_fold,
    load_data,
    sendable,
    source_changed,
)


def xy(n=40, features=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32)


def write_csv(path, text):
    path.write_text(textwrap.dedent(text).lstrip())
    return str(path)


# --- named sets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, task, n_outputs, n_classes, shape, n",
    [
        ("iris", "multiclass", 3, 3, (4,), 150),
        ("wine", "multiclass", 3, 3, (13,), 178),
        ("breast_cancer", "binary", 1, 2, (30,), 569),
        ("diabetes", "regression", 1, None, (10,), 442),
    ],
)
def test_sklearn_sets(name, task, n_outputs, n_classes, shape, n):
    ds = load_data(name)
    assert (ds.task, ds.n_outputs, ds.n_classes, ds.input_shape) == (task, n_outputs, n_classes, shape)
    assert len(ds.y_train) + len(ds.y_val) == n and len(ds.y_val) == int(np.ceil(0.2 * n))
    x = np.concatenate([ds.x_train, ds.x_val])
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)  # standardised
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-4)
    assert ds.source == {"kind": "named", "name": name} and ds.classes is None
    assert ds.batched is False and ds.x_test is None


def test_label_dtypes_of_the_named_sets():
    assert load_data("iris").y_train.dtype == np.int64
    bc = load_data("breast_cancer").y_train
    assert bc.dtype == np.float32 and bc.ndim == 1 and set(np.unique(bc)) == {0.0, 1.0}
    diabetes = load_data("diabetes")
    y = np.concatenate([diabetes.y_train, diabetes.y_val])
    assert y.dtype == np.float32 and y.min() == 25.0 and y.max() == 346.0  # the raw target


def test_digits_split_is_bit_for_bit_sklearns():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    for seed, split in ((0, 0.2), (5, 0.3)):
        xt, xv, yt, yv = train_test_split(x, bunch.target.astype(np.int64), test_size=split,
                                          stratify=bunch.target, random_state=seed)
        ds = load_data("digits", seed=seed, validation_split=split)
        assert ds.task == "multiclass" and ds.n_outputs == 10 and ds.y_train.dtype == np.int64
        np.testing.assert_array_equal(ds.x_train, xt)
        np.testing.assert_array_equal(ds.x_val, xv)
        np.testing.assert_array_equal(ds.y_train, yt)
        np.testing.assert_array_equal(ds.y_val, yv)


def test_digits_cv_folds_are_sklearns_stratified_folds():
    from sklearn.model_selection import StratifiedKFold

    ds = load_data("digits")
    y = np.concatenate([ds.y_train, ds.y_val])
    expected = list(StratifiedKFold(3, shuffle=True, random_state=7).split(np.zeros(len(y)), y))
    for fold in range(3):
        np.testing.assert_array_equal(cv_fold(ds, fold, 3, 7).y_val, y[expected[fold][1]])


# --- task inference ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "y, task, n_outputs, dtype, shape",
    [
        (np.arange(40) % 4, "multiclass", 4, np.int64, ()),
        (np.arange(40) % 2, "binary", 1, np.float32, ()),
        ((np.arange(40) % 2).astype(np.float64), "binary", 1, np.float32, ()),
        ((np.arange(40) % 2).reshape(-1, 1), "binary", 1, np.float32, ()),
        (np.arange(40) % 2 == 1, "binary", 1, np.float32, ()),
        ((np.arange(40) % 3).astype(np.float32), "multiclass", 3, np.int64, ()),
        (np.linspace(0, 1, 40) + 0.01, "regression", 1, np.float32, ()),
        ((np.linspace(0, 1, 40) + 0.01).reshape(-1, 1), "regression", 1, np.float32, (1,)),
        (np.stack([np.arange(40) % 2, np.arange(40) // 20], 1), "multilabel", 2, np.float32, (2,)),
        (np.stack([np.linspace(0, 1, 40), np.linspace(3, 1, 40)], 1), "regression", 2, np.float32, (2,)),
        (np.array(["dog", "cat", "eel", "ant"] * 10), "multiclass", 4, np.int64, ()),
        (np.array(["no", "yes"] * 20), "binary", 1, np.float32, ()),
    ],
)
def test_task_inference(y, task, n_outputs, dtype, shape):
    ds = load_data((xy(), y))
    assert ds.task == task and ds.n_outputs == n_outputs
    assert ds.y_train.dtype == dtype and ds.y_train.shape[1:] == shape
    assert ds.name == "arrays" and ds.source == {"kind": "memory", "type": "arrays"}


def test_string_labels_map_sorted_and_binary_one_is_the_second_name():
    y = np.array(["yes", "no", "no", "yes"] * 10)
    ds = load_data((xy(), y), task="binary")
    assert ds.classes == ("no", "yes") and ds.n_classes == 2
    x_all = np.concatenate([ds.x_train, ds.x_val])
    y_all = np.concatenate([ds.y_train, ds.y_val])
    x = xy()
    for row, label in zip(x_all, y_all):
        i = int(np.flatnonzero((x == row).all(axis=1))[0])
        assert label == (1.0 if y[i] == "yes" else 0.0)


@pytest.mark.parametrize(
    "y, task, message",
    [
        (np.linspace(0, 1, 40) + 0.01, "multiclass", r"integer class labels 0\.\.n-1 for task 'multiclass'"),
        (np.arange(40) % 3, "binary", r"task 'binary' needs labels 0 and 1, but y_train holds 2"),
        (np.arange(40) % 2, "multilabel", r"task 'multilabel' needs 2-D labels .* y_train is shaped \(40,\)"),
        (np.array(["a", "b", "c"] * 13 + ["a"]), "regression", r"task 'regression' needs numbers, but y_train holds strings \(e\.g\. 'a'\)"),
        (np.array(["a", "b", "c"] * 13 + ["a"]), "binary", r"task 'binary' needs exactly 2 classes, but the labels name 3 \('a', 'b', 'c'\)"),
        (np.stack([np.arange(40) % 2, np.arange(40) % 3], 1), "multilabel", r"task 'multilabel' needs labels 0 and 1, but y_train holds 2"),
    ],
)
def test_explicit_task_contradicting_the_labels(y, task, message):
    with pytest.raises(UserError, match=message):
        load_data((xy(), y), task=task)


def test_explicit_regression_on_integer_labels_is_allowed():
    ds = load_data((xy(), np.arange(40)), task="regression")
    assert ds.task == "regression" and ds.y_train.dtype == np.float32 and ds.n_classes is None


def test_unknown_task():
    with pytest.raises(UserError, match=r"task must be one of multiclass, binary, multilabel, regression.*'ranking'"):
        load_data("digits", task="ranking")


def test_negative_integer_labels_hint_at_regression():
    with pytest.raises(UserError, match=r"y_train has label -2; labels must be >= 0 \(for a numeric target pass task='regression'"):
        load_data((xy(), np.arange(40) % 5 - 2))


# --- splits -----------------------------------------------------------------------------


def test_classification_split_is_stratified_regression_split_is_plain():
    y = np.array([0] * 30 + [1] * 10)
    x = xy()
    ds = load_data((x, y), seed=3, validation_split=0.25)
    assert ds.task == "binary" and len(ds.y_val) == 10 and ds.y_val.sum() in (2.0, 3.0)
    idx_t, idx_v = train_test_split(np.arange(40), test_size=0.25, stratify=y, random_state=3)
    np.testing.assert_array_equal(ds.x_val, x[idx_v])

    target = np.linspace(0, 1, 40) + 0.01
    reg = load_data((x, target), seed=3, validation_split=0.25)
    idx_t, idx_v = train_test_split(np.arange(40), test_size=0.25, shuffle=True, random_state=3)
    np.testing.assert_array_equal(reg.x_val, x[idx_v])
    np.testing.assert_allclose(reg.y_val, target[idx_v].astype(np.float32))


def test_given_validation_arrays_are_used_as_they_are():
    x, y = xy(), np.arange(40) % 4
    xv, yv = xy(8, seed=1), np.array([0, 1, 2, 3, 0, 1, 2, 3])
    for source in ((x, y, xv, yv), {"x_train": x, "y_train": y, "x_val": xv, "y_val": yv}):
        ds = load_data(source)
        np.testing.assert_array_equal(ds.x_train, x)
        np.testing.assert_array_equal(ds.y_val, yv)
        assert ds.x_test is None


def test_mapping_with_test_arrays_and_the_callers_arrays_stay_writable():
    x, y = xy(), np.arange(40) % 4
    ds = load_data({"x_train": x, "y_train": y, "x_test": x[:5], "y_test": y[:5] + 1})
    assert ds.n_outputs == 5  # label 4 only in test: n_outputs counts it
    np.testing.assert_array_equal(ds.y_test, y[:5] + 1)
    assert x.flags.writeable and not ds.x_train.flags.writeable and not ds.x_test.flags.writeable


def test_dict_inputs_and_outputs_are_split_by_the_same_indices():
    n = 40
    ident = np.arange(n, dtype=np.float32)
    x = {"a": np.stack([ident, ident], 1), "img": np.repeat(ident, 4).reshape(n, 2, 2)}
    y = {"cls": np.arange(n) % 4, "size": ident * 10 + 0.5}
    ds = load_data((x, y), seed=1)
    assert ds.task == "regression"  # outputs disagree, one is a float: regression for all
    assert ds.input_shape == {"a": (2,), "img": (2, 2)} and ds.n_outputs == {"cls": 1, "size": 1}
    ids = ds.x_val["a"][:, 0]
    np.testing.assert_array_equal(ds.x_val["img"][:, 0, 0], ids)
    np.testing.assert_array_equal(ds.y_val["size"], ids * 10 + 0.5)
    np.testing.assert_array_equal(ds.y_val["cls"], (ids % 4).astype(np.float32))
    assert len(ids) == 8 and len(set(ids) | set(ds.x_train["a"][:, 0])) == n
    folds = [cv_fold(ds, f, 4, 0) for f in range(4)]
    for fold in folds:
        np.testing.assert_array_equal(fold.y_val["size"], fold.x_val["a"][:, 0] * 10 + 0.5)
    assert sorted(np.concatenate([f.x_val["a"][:, 0] for f in folds])) == list(ident)


def test_dict_outputs_agreeing_keep_their_task_and_conflicting_ones_ask_for_it():
    x = xy()
    ds = load_data((x, {"a": np.arange(40) % 3, "b": np.arange(40) % 5}))
    assert ds.task == "multiclass" and ds.n_outputs == {"a": 3, "b": 5}
    assert ds.n_classes == {"a": 3, "b": 5}
    with pytest.raises(UserError, match=r"suggest different tasks \(a: multiclass, b: binary\); pass the task"):
        load_data((x, {"a": np.arange(40) % 3, "b": np.arange(40) % 2}))


def test_regression_cv_is_plain_kfold():
    from sklearn.model_selection import KFold

    x, target = xy(), np.linspace(0, 1, 40) + 0.01
    ds = load_data((x, target))
    y = np.concatenate([ds.y_train, ds.y_val])
    expected = list(KFold(5, shuffle=True, random_state=2).split(np.zeros(40)))
    np.testing.assert_array_equal(cv_fold(ds, 1, 5, 2).y_val, y[expected[1][1]])
    check_folds(ds, 5)
    with pytest.raises(UserError, match=r"--cv 41: data set 'arrays' has only 40 samples"):
        check_folds(ds, 41)


# --- CSV --------------------------------------------------------------------------------


def test_csv_string_target_becomes_classes(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5},{['setosa', 'virginica', 'versicolor'][i % 3]}" for i in range(30))
    path = write_csv(tmp_path / "flowers.csv", "a,b,species\n" + rows + "\n\n")
    ds = load_data(path, targets=("species",))
    assert ds.task == "multiclass" and ds.classes == ("setosa", "versicolor", "virginica")
    assert ds.input_shape == (2,) and ds.x_train.dtype == np.float32
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    for (a, b), label in zip(x, y):
        assert b == a * 0.5 and ds.classes[label] == ["setosa", "virginica", "versicolor"][int(a) % 3]
    stat = os.stat(path)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert ds.source == {"kind": "file", "path": str(tmp_path.resolve() / "flowers.csv"),
                         "size": stat.st_size, "sha256": digest, "targets": ["species"]}
    assert ds.name == path


def test_csv_several_numeric_targets(tmp_path):
    rows = "\n".join(f"{i},{i * 1.5 + 0.25},{i % 2}" for i in range(20))
    path = write_csv(tmp_path / "d.csv", "y1,x,y2\n" + rows)
    ds = load_data(path, targets=["y1", "y2"])
    assert ds.task == "regression" and ds.n_outputs == 2 and ds.y_train.shape[1:] == (2,)
    x, y = np.concatenate([ds.x_train, ds.x_val]), np.concatenate([ds.y_train, ds.y_val])
    np.testing.assert_allclose(x[:, 0], y[:, 0] * 1.5 + 0.25)
    np.testing.assert_array_equal(y[:, 1], y[:, 0] % 2)


def test_csv_integer_target_is_multiclass_and_binary(tmp_path):
    rows = "\n".join(f"{i},{i % 2}" for i in range(20))
    path = write_csv(tmp_path / "b.csv", "x,label\n" + rows)
    ds = load_data(path, targets=("label",))
    assert ds.task == "binary" and ds.classes is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,b,y\n1,2,0\n3,abc,1\n", r"'.*bad\.csv': row 3, column 'b' holds 'abc', not a number"),
        ("a,b,y\n1,2,0\n3,4,1\n5,,0\n", r"row 4, column 'b' is empty; missing values are not supported"),
        ("a,b,y\n1,2,0\n3,nan,1\n", r"row 3, column 'b' holds 'nan'; every value must be a finite number"),
        ("a,b,y\n1,2,0\n3,1e300,1\n", r"row 3, column 'b' holds '1e300', too large for the float32"),
        ("a,b,y\n1,2,0\n3,4,\n", r"row 3, target column 'y' is empty"),
        ("a,b,y\n1,2,0\n3,4\n", r"row 3 has 2 cells but the header 3"),
        ("a,b,label\n1,2,0\n", r"has no target column 'y'; its columns are a, b, label"),
        ("", r"is empty: a CSV file needs a header row"),
        ("a,b,y\n", r"has a header but no data rows"),
        ("a,a,y\n1,2,3\n", r"the header names column 'a' twice"),
        ("y\n1\n", r"every column is a target; no feature columns"),
    ],
)
def test_csv_errors_name_the_cell(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_data(str(path), targets=("y",))


def test_csv_needs_targets_and_several_targets_must_be_numeric(tmp_path):
    path = write_csv(tmp_path / "d.csv", "a,y,z\n1,cat,2\n2,dog,3\n")
    with pytest.raises(UserError, match=r"a CSV file needs targets"):
        load_data(path)
    with pytest.raises(UserError, match=r"target column 'y' holds text; with several targets"):
        load_data(path, targets=("y", "z"))


# --- data functions and callables -------------------------------------------------------


@pytest.fixture
def data_module(tmp_path, monkeypatch):
    (tmp_path / "my_data_mod_q7.py").write_text(textwrap.dedent("""
        import numpy as np
        CALLS = []

        def make():
            CALLS.append(1)
            x = np.arange(60, dtype=np.float32).reshape(30, 2)
            return x, np.arange(30) % 3

        def broken():
            raise ValueError("no such table")

        def wrong():
            return [1, 2, 3]

        NOT_A_FUNCTION = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(data, "_CACHE", {})
    import my_data_mod_q7

    return my_data_mod_q7


def test_data_function_is_imported_called_once_and_cached(data_module):
    ds = load_data("my_data_mod_q7:make")
    assert ds.name == "my_data_mod_q7:make" and ds.task == "multiclass" and ds.n_outputs == 3
    assert ds.source == {"kind": "function", "function": "my_data_mod_q7:make"}
    assert load_data("my_data_mod_q7:make") is ds and len(data_module.CALLS) == 1
    assert sendable("my_data_mod_q7:make")


def test_data_function_errors(data_module):
    with pytest.raises(UserError, match=r"^data function 'my_data_mod_q7:broken' raised ValueError: no such table$"):
        load_data("my_data_mod_q7:broken")
    with pytest.raises(UserError, match=r"data function 'my_data_mod_q7:wrong' returned a list of 3 \(int, int, int\); expected \(x, y\)"):
        load_data("my_data_mod_q7:wrong")
    with pytest.raises(UserError, match=r"module 'my_data_mod_q7' has no attribute 'nope'"):
        load_data("my_data_mod_q7:nope")
    with pytest.raises(UserError, match=r"'NOT_A_FUNCTION' is a int, not a function"):
        load_data("my_data_mod_q7:NOT_A_FUNCTION")
    with pytest.raises(UserError, match=r"data function 'no_such_mod_zz:f': cannot import module 'no_such_mod_zz'"):
        load_data("no_such_mod_zz:f")


def test_an_in_memory_callable_is_called_each_time_not_cached():
    calls = []

    def make():
        calls.append(1)
        return {"x_train": xy(), "y_train": np.arange(40) % 2}

    a, b = load_data(make), load_data(make)
    assert a is not b and len(calls) == 2 and a.task == "binary"
    assert a.source == {"kind": "memory", "type": "arrays"} and not sendable(make)
    assert load_data((xy(), np.arange(40) % 2)) is not load_data((xy(), np.arange(40) % 2))


def test_callable_raising_or_returning_junk():
    def bad():
        raise KeyError("k")

    with pytest.raises(UserError, match=r"data function '.*bad' raised KeyError: 'k'"):
        load_data(bad)
    with pytest.raises(UserError, match=r"data function '.*<lambda>' returned a int; expected"):
        load_data(lambda: 5)
    with pytest.raises(UserError, match=r"data of type a tuple of 3 \(ndarray, ndarray, ndarray\) is not accepted"):
        load_data((xy(), xy(), xy()))


# --- the cheap check, sendable, records ---------------------------------------------------


def test_check_data_source(tmp_path):
    check_data_source("iris")
    check_data_source("pkg.mod:make_data")
    check_data_source((1, 2))
    check_data_source(lambda: None)
    for bad in ("pkg.mod:", ":f", "pkg..mod:f", "pkg.mod:f.g", "1mod:f"):
        with pytest.raises(UserError, match=r"a data function must have the form 'package\.module:function'"):
            check_data_source(bad)
    with pytest.raises(UserError, match=r"data set file '.*missing\.csv' does not exist"):
        check_data_source(str(tmp_path / "missing.csv"), targets=("y",))
    with pytest.raises(UserError, match=r"targets \['y'\] are for CSV files only, not for data set 'digits'"):
        load_data("digits", targets=("y",))
    with pytest.raises(UserError, match=r"targets \['y'\] are for CSV files only, not for data set of type tuple"):
        load_data((xy(), np.arange(40) % 2), targets=("y",))


def test_sendable():
    assert sendable("digits") and sendable("a.csv") and sendable("m:f")
    assert not sendable((1, 2)) and not sendable({"x_train": 1}) and not sendable(print)


def test_source_changed(tmp_path):
    x, y = xy(), np.arange(40) % 2
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    ds = load_data(str(tmp_path / "d.npz"))
    recorded = dict(ds.source)
    assert recorded["kind"] == "file" and recorded["path"] == str((tmp_path / "d.npz").resolve())
    assert "targets" not in recorded
    assert source_changed(recorded) is None
    assert source_changed({"kind": "named", "name": "digits"}) is None
    assert source_changed({"kind": "function", "function": "m:f"}) is None
    os.utime(tmp_path / "d.npz", (1, 1_000_000))
    assert source_changed(recorded) is None  # only touched: the same data
    np.savez(tmp_path / "d.npz", x_train=x[::-1], y_train=y)  # same size, other contents
    os.utime(tmp_path / "d.npz", (1, 1_000_000))
    assert source_changed(recorded) == (
        f"data file {recorded['path']!r} changed since the study recorded it (its contents differ)")
    np.savez(tmp_path / "d.npz", x_train=x[:20], y_train=y[:20])
    assert source_changed(recorded) == (
        f"data file {recorded['path']!r} changed since the study recorded it "
        f"(size {recorded['size']} -> {os.stat(tmp_path / 'd.npz').st_size} bytes)"
    )
    os.remove(tmp_path / "d.npz")
    assert source_changed(recorded) == f"data file {recorded['path']!r} recorded by the study no longer exists"


def test_npz_with_validation_arrays(tmp_path):
    x, y = xy(), np.arange(40) % 2
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_val=x[:6], y_val=y[:6])
    ds = load_data(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(ds.x_train, x)
    np.testing.assert_array_equal(ds.y_val, y[:6].astype(np.float32))
    np.savez(tmp_path / "e.npz", x_train=x, y_train=y, x_val=x[:6])
    with pytest.raises(UserError, match=r"has only one of x_val and y_val"):
        load_data(str(tmp_path / "e.npz"))


# --- bad input --------------------------------------------------------------------------


def with_nan(a, index):
    a = a.astype(np.float64).copy()
    a[index] = np.nan
    return a


@pytest.mark.parametrize(
    "source, message",
    [
        ((with_nan(xy(), (7, 2)), np.arange(40) % 2), r"'arrays': x_train holds nan at index \(7, 2\)"),
        ((xy(), with_nan(np.arange(40) % 3, 5)), r"y_train holds nan at index 5"),
        ((xy(), np.where(np.arange(40) == 3, np.inf, np.arange(40) % 3)), r"y_train holds inf at index 3"),
        ((xy(), np.arange(39) % 2), r"x_train has 40 samples but y_train has 39"),
        ((xy(0), np.zeros(0)), r"x_train is empty \(0 samples\)"),
        ((np.array([["a", "b"]] * 40), np.arange(40) % 2), r"x_train must be a numeric array .* dtype <U1"),
        ((xy(), np.arange(40) % 2, xy(5, features=4), np.arange(5) % 2),
         r"x_val samples are shaped \(4,\) but x_train samples \(3,\)"),
        (({"a": xy()}, np.arange(40) % 2, {"b": xy(5)}, np.arange(5) % 2),
         r"x_val has inputs \['b'\] but x_train \['a'\]"),
        (({"a": xy(), "b": xy(39)}, np.arange(40) % 2), r"x_train\['a'\] has 40 samples but x_train\['b'\] has 39"),
        ((xy(), np.arange(40) % 2, xy(5), np.arange(5) % 3), r"task 'binary' needs labels 0 and 1, but y_val holds 2"),
        ((xy(), np.eye(2)[np.arange(40) % 2], xy(5), np.eye(3)[np.arange(5) % 3]),
         r"y_val is shaped \(3,\) per sample but y_train \(2,\)"),
        ((xy(), np.arange(40) % 2, xy(5), np.array(["a"] * 5)), r"y_val holds strings but y_train numbers"),
        ((xy(), np.array([0] * 39 + [1])), r"class 1 has only 1 training sample\(s\)"),
        ((xy(), np.array(["a"] * 39 + ["b"])), r"class 'b' has only 1 training sample"),
        ((xy(), np.zeros(40, int)), r"y_train has 1 class\(es\); at least 2"),
        ({"x_train": xy()}, r"has only one of x_train and y_train; give both"),
        ({"x_train": xy(), "y_train": np.arange(40) % 2, "x_vali": 1}, r"unknown keys \['x_vali'\]"),
        ((xy(), np.zeros((40, 2, 2))), r"y_train must be shaped \(samples,\) or \(samples, outputs\)"),
    ],
)
def test_bad_input(source, message):
    with pytest.raises(UserError, match=message):
        load_data(source)


def test_validation_split_leaving_an_empty_split():
    with pytest.raises(UserError, match=r"validation_split 0\.9 gives 2 validation and 0 training samples; each split needs at least one"):
        load_data((xy(2), np.array([0.5, 1.5])), validation_split=0.9)


def test_float32_overflow_is_caught():
    x = xy().astype(np.float64)
    x[2, 1] = 1e300
    with pytest.raises(UserError, match=r"x_train holds inf at index \(2, 1\)"):
        load_data((x, np.arange(40) % 2))


# --- tf.data ------------------------------------------------------------------------------


@pytest.mark.slow
def test_tfdata_pair_and_mapping():
    import tensorflow as tf

    x, y = xy(), np.arange(40) % 3
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    val = tf.data.Dataset.from_tensor_slices((x[:12], y[:12])).batch(5)
    ds = load_data((train, val))
    assert ds.x_train is train and ds.x_val is val and ds.y_train is None and ds.y_val is None
    assert ds.batched and ds.task == "multiclass" and ds.n_outputs == 3 and ds.input_shape == (3,)
    assert ds.name == "tf.data" and ds.source == {"kind": "memory", "type": "tf.data"}
    assert not sendable((train, val))
    binary = load_data({"train": train, "validation": val.map(lambda a, b: (a, b % 2)), "test": val})
    assert binary.task == "binary" and binary.x_test is val
    with pytest.raises(UserError, match=r"--cv needs arrays, not tf.data"):
        cv_fold(ds, 0, 3, 0)
    with pytest.raises(UserError, match=r"--cv 3 needs arrays, not tf.data"):
        check_folds(ds, 3)
    singles = tf.data.Dataset.from_tensor_slices(x)
    with pytest.raises(UserError, match=r"the train tf.data.Dataset must yield \(x, y\) pairs"):
        load_data((singles, val))
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(UserError, match=r"yields single samples .*batch it"):
        load_data((train, unbatched))
    other = tf.data.Dataset.from_tensor_slices((xy(10, features=4), y[:10])).batch(5)
    with pytest.raises(UserError, match=r"x_val samples are shaped \(4,\) but x_train samples \(3,\)"):
        load_data((train, other))
