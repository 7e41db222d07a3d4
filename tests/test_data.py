"""hparams_lab.training.data: names, digits, the split, the cache, .npz files, mnist offline/mocked."""

import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hparams_lab.training import data
from hparams_lab.training.data import DATASETS, check_data_source, load_data
from hparams_lab.core.errors import UserError


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def balanced(n_classes=3, per_class=10, shape=(4,), dtype=np.float32, seed=0):
    """x, y with per_class samples of each class, shuffled."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    rng.shuffle(y)
    x = rng.random((len(y), *shape)).astype(dtype)
    return x, y


# --- names ---------------------------------------------------------------------------


def test_builtin_names_pass_check():
    assert DATASETS == ("digits", "mnist", "fashion_mnist", "iris", "wine", "breast_cancer", "diabetes")
    for name in DATASETS:
        check_data_source(name)


@pytest.mark.parametrize("name", ["foo", "Digits", "data.txt", "", None])
def test_unknown_name_is_rejected_with_choices(name):
    with pytest.raises(UserError, match=r"unknown data set .*choose digits, mnist, fashion_mnist"):
        check_data_source(name)


def test_existing_file_of_another_kind_is_rejected(tmp_path):
    txt = tmp_path / "data.txt"
    txt.write_text("1,2\n")
    with pytest.raises(UserError, match=r"unknown data set '.*data\.txt'.*\.npz or \.csv file"):
        check_data_source(str(txt))


def test_csv_passes_the_alias_check_only_with_targets(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a,y\n1,2\n")
    with pytest.raises(UserError, match=r"'.*data\.csv': a CSV file needs targets"):
        check_data_source(str(csv))
    data.check_data_source(str(csv), targets=("y",))


def test_missing_npz_is_rejected(tmp_path):
    with pytest.raises(UserError, match=r"data set file '.*nope\.npz' does not exist"):
        check_data_source(str(tmp_path / "nope.npz"))
    with pytest.raises(UserError, match="does not exist"):
        load_data(str(tmp_path / "nope.npz"))


def test_directory_named_npz_is_rejected(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(UserError, match=r"'.*dir\.npz' is not a file"):
        check_data_source(str(tmp_path / "dir.npz"))


def test_existing_npz_passes_check(tmp_path):
    check_data_source(write_npz(tmp_path / "d.npz", x_train=np.zeros((2, 2)), y_train=np.zeros(2)))


# --- digits and the split --------------------------------------------------------------


def test_digits_shapes_dtypes_and_scaling():
    ds = load_data("digits")
    assert ds.name == "digits"
    assert ds.x_train.shape == (1437, 8, 8) and ds.x_val.shape == (360, 8, 8)
    assert ds.y_train.shape == (1437,) and ds.y_val.shape == (360,)
    assert ds.x_train.dtype == np.float32 and ds.x_val.dtype == np.float32
    assert ds.y_train.dtype in (np.int32, np.int64)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0  # 0..16 divided by 16
    assert set(np.unique(ds.x_train * 16)) <= set(range(17))
    assert ds.x_test is None and ds.y_test is None
    assert ds.n_classes == 10 and ds.input_shape == (8, 8)


def test_split_is_stratified():
    ds = load_data("digits")
    p_train = np.bincount(ds.y_train, minlength=10) / len(ds.y_train)
    p_val = np.bincount(ds.y_val, minlength=10) / len(ds.y_val)
    # Stratified: each class within one sample's worth of val proportion (1/360).
    np.testing.assert_allclose(p_train, p_val, atol=1 / len(ds.y_val) + 1e-9)


def test_same_seed_same_split_other_seed_other_split(monkeypatch):
    monkeypatch.setattr(data, "_CACHE", {})
    a = load_data("digits", seed=1)
    monkeypatch.setattr(data, "_CACHE", {})
    b = load_data("digits", seed=1)
    c = load_data("digits", seed=2)
    assert a is not b  # really loaded twice, not served from the cache
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_val, c.y_val)


def test_validation_split_sets_the_val_size(monkeypatch):
    ds = load_data("digits", validation_split=0.5)
    assert len(ds.y_val) == 899 and len(ds.y_train) == 898


@pytest.mark.parametrize("split", [0, 0.0, 1, 1.5, -0.1, "0.2", None, True])
def test_bad_validation_split(split):
    with pytest.raises(UserError, match=r"validation_split must be .*between 0 and 1, got"):
        load_data("digits", validation_split=split)


@pytest.mark.parametrize("seed", [None, "1", 1.5])
def test_bad_seed(seed):
    with pytest.raises(UserError, match="seed must be an integer, got"):
        load_data("digits", seed=seed)


def test_arrays_are_read_only():
    ds = load_data("digits")
    with pytest.raises(ValueError, match="read-only"):
        ds.x_train[0, 0, 0] = 5.0


# --- the per-process cache ----------------------------------------------------------------


def test_cache_returns_the_same_object():
    assert load_data("digits", seed=3) is load_data("digits", seed=3)
    assert load_data("digits", seed=3) is not load_data("digits", seed=4)
    assert load_data("digits", seed=3) is not load_data("digits", seed=3, validation_split=0.3)


def test_cache_keys_npz_on_resolved_path_and_mtime(tmp_path, monkeypatch):
    x, y = balanced()
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y)
    first = load_data(path)
    monkeypatch.chdir(tmp_path)
    assert load_data("d.npz") is first  # same file, relative name
    x2, y2 = balanced(n_classes=4)
    write_npz(tmp_path / "d.npz", x_train=x2, y_train=y2)
    stat = (tmp_path / "d.npz").stat()
    # Make sure the mtime differs even on a coarse-grained file system.
    os.utime(tmp_path / "d.npz", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = load_data(path)
    assert second is not first and second.n_classes == 4


# --- .npz files ---------------------------------------------------------------------------


def test_npz_uint8_images_are_scaled_and_test_split_kept(tmp_path):
    x, y = balanced(shape=(5, 5), dtype=np.uint8)
    x = (x * 0).astype(np.uint8) + np.uint8(255)
    x_test = np.full((6, 5, 5), 51, dtype=np.uint8)
    y_test = np.array([0, 1, 2, 3, 0, 1])  # label 3 only in test: n_classes counts it
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    ds = load_data(path, validation_split=0.3)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert np.all(ds.x_train == 1.0) and np.allclose(ds.x_test, 0.2)
    assert len(ds.y_train) + len(ds.y_val) == 30 and len(ds.y_val) == 9
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.n_classes == 4 and ds.input_shape == (5, 5)


def test_npz_float_inputs_are_kept_as_is(tmp_path):
    x, y = balanced(dtype=np.float64)
    x = x * 100  # not scaled: only uint8 is taken as 0..255 pixels
    ds = load_data(write_npz(tmp_path / "d.npz", x_train=x, y_train=y))
    assert ds.x_train.dtype == np.float32
    assert ds.x_train.max() > 1.0
    assert np.isclose(np.sort(np.concatenate([ds.x_train, ds.x_val]).ravel()),
                      np.sort(x.astype(np.float32).ravel())).all()
    assert ds.x_test is None and ds.y_test is None


def test_npz_integral_float_labels_and_column_labels_are_accepted(tmp_path):
    x, y = balanced()
    ds = load_data(write_npz(tmp_path / "f.npz", x_train=x, y_train=y.astype(np.float32)))
    assert ds.y_train.dtype == np.int64 and ds.n_classes == 3
    ds = load_data(write_npz(tmp_path / "c.npz", x_train=x, y_train=y.reshape(-1, 1)))
    assert ds.y_train.shape == (len(ds.x_train),)


def test_npz_missing_arrays_are_named_with_what_the_file_has(tmp_path):
    path = write_npz(tmp_path / "d.npz", features=np.zeros((4, 2)), y_train=np.zeros(4))
    with pytest.raises(UserError, match=r"lacks x_train: it holds features, y_train; x_train and y_train"):
        load_data(path)
    path = write_npz(tmp_path / "e.npz", images=np.zeros((4, 2)))
    with pytest.raises(UserError, match=r"lacks x_train, y_train: it holds images"):
        load_data(path)


def test_npz_test_arrays_must_come_together(tmp_path):
    x, y = balanced()
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x)
    with pytest.raises(UserError, match="only one of x_test and y_test"):
        load_data(path)


def test_npz_empty_test_arrays_are_refused(tmp_path):
    x, y = balanced()
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:0], y_test=y[:0])
    with pytest.raises(UserError, match=r"x_test is empty \(0 samples\)"):
        load_data(path)


def test_npz_mismatched_lengths(tmp_path):
    x, y = balanced()
    with pytest.raises(UserError, match=r"x_train has 30 samples but y_train has 29"):
        load_data(write_npz(tmp_path / "d.npz", x_train=x, y_train=y[:-1]))
    path = write_npz(tmp_path / "t.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:2])
    with pytest.raises(UserError, match=r"x_test has 3 samples but y_test has 2"):
        load_data(path)


def test_npz_test_sample_shape_must_match_train(tmp_path):
    x, y = balanced(shape=(4,))
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y,
                     x_test=np.zeros((2, 5), np.float32), y_test=np.array([0, 1]))
    with pytest.raises(UserError, match=r"x_test samples are shaped \(5,\) but x_train samples \(4,\)"):
        load_data(path)


def test_npz_float_labels_mean_regression_unless_multiclass_is_asked(tmp_path):
    x, _ = balanced()
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0.5, 1.0, 2.0] * 10))
    assert load_data(path).task == "regression"
    with pytest.raises(UserError, match=r"y_train must hold integer class labels 0\.\.n-1 for task "
                                        r"'multiclass', got dtype float64 \(e\.g\. 0\.5\)"):
        load_data(path, task="multiclass")


def test_npz_string_labels_are_class_names(tmp_path):
    x, _ = balanced()
    ds = load_data(write_npz(tmp_path / "d.npz", x_train=x, y_train=np.array(["b", "a", "c"] * 10)))
    assert ds.task == "multiclass" and ds.classes == ("a", "b", "c") and ds.n_classes == 3
    assert sorted(np.bincount(np.concatenate([ds.y_train, ds.y_val]))) == [10, 10, 10]


def test_npz_nan_labels_are_named_with_their_index(tmp_path):
    x, _ = balanced()
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0.0, np.nan, 1.0] * 10))
    with pytest.raises(UserError, match=r"'.*d\.npz': y_train holds nan at index 1; every value must be a finite"):
        load_data(path)


def test_npz_one_hot_labels_are_multilabel_unless_multiclass_is_asked(tmp_path):
    x, y = balanced()
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=np.eye(3)[y])
    ds = load_data(path)
    assert ds.task == "multilabel" and ds.n_outputs == 3 and ds.y_train.dtype == np.float32
    with pytest.raises(UserError, match=r"task 'multiclass' needs one label per sample, but y_train is shaped \(30, 3\)"):
        load_data(path, task="multiclass")


def test_npz_negative_labels(tmp_path):
    x, y = balanced()
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y - 1)
    with pytest.raises(UserError, match=r"y_train has label -1; labels must be >= 0"):
        load_data(path)


def test_npz_needs_two_classes(tmp_path):
    path = write_npz(tmp_path / "d.npz", x_train=np.zeros((10, 2)), y_train=np.zeros(10, int))
    with pytest.raises(UserError, match=r"y_train has 1 class\(es\); at least 2"):
        load_data(path)


def test_npz_class_too_small_to_stratify(tmp_path):
    x, y = balanced()
    y[0] = 7  # class 7 has a single sample
    with pytest.raises(UserError, match=r"class 7 has only 1 training sample\(s\).*at least 2"):
        load_data(write_npz(tmp_path / "d.npz", x_train=x, y_train=y))


def test_split_too_small_for_the_classes(tmp_path):
    x, y = balanced(n_classes=3, per_class=10)
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y)
    with pytest.raises(UserError, match=r"validation_split 0\.05 gives 2 validation .* for 3 classes"):
        load_data(path, validation_split=0.05)


def test_npz_non_numeric_inputs(tmp_path):
    path = write_npz(tmp_path / "d.npz", x_train=np.array(["a", "b"]), y_train=np.array([0, 1]))
    with pytest.raises(UserError, match=r"x_train must be a numeric array .*got dtype <U1 with shape \(2,\)"):
        load_data(path)


def test_not_an_npz_file(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(UserError, match=r"'.*text\.npz' is not an \.npz file"):
        load_data(str(tmp_path / "text.npz"))
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with pytest.raises(UserError, match="is not an .npz file"):
        load_data(str(tmp_path / "one.npz"))


def test_truncated_npz(tmp_path):
    x, y = balanced()
    good = write_npz(tmp_path / "good.npz", x_train=x, y_train=y)
    (tmp_path / "cut.npz").write_bytes(open(good, "rb").read()[:100])
    with pytest.raises(UserError, match=r"'.*cut\.npz' could not be read as an \.npz file: "):
        load_data(str(tmp_path / "cut.npz"))


def test_pickled_arrays_are_refused(tmp_path):
    x = np.array([{"a": 1}, {"b": 2}], dtype=object)
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1]))
    with pytest.raises(UserError, match=r"could not be read as an \.npz file: .*allow_pickle=False"):
        load_data(path)


# --- mnist / fashion_mnist without the network --------------------------------------------


def tiny_mnist(n_train=100, n_test=20):
    """Arrays shaped like keras.datasets.mnist.load_data()'s, but tiny."""
    rng = np.random.default_rng(0)
    y_train = np.arange(n_train, dtype=np.uint8) % 10
    y_test = np.arange(n_test, dtype=np.uint8) % 10
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_train[0, 0, 0] = 255
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    return (x_train, y_train), (x_test, y_test)


def never_called(name):
    raise AssertionError(f"the Keras loader must not be reached ({name})")


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(data, "_CACHE", {})
    return home


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_offline_and_not_cached_fails_fast_with_a_hint(empty_keras_home, monkeypatch, name):
    monkeypatch.setattr(data, "_network_reachable", lambda: False)
    monkeypatch.setattr(data, "_keras_loader", never_called)
    with pytest.raises(
        UserError,
        match=rf"could not load data set '{name}': not in the Keras cache .*keras_home.*"
        r"no network.*--dataset digits or an \.npz file",
    ):
        load_data(name)


def test_failed_download_is_a_user_error_under_a_socket_timeout(empty_keras_home, monkeypatch):
    seen = []

    def failing_download():
        seen.append(socket.getdefaulttimeout())
        raise Exception("URL fetch failure on https://example: None -- timed out")

    before = socket.getdefaulttimeout()
    monkeypatch.setattr(data, "_network_reachable", lambda: True)
    monkeypatch.setattr(data, "_keras_loader", lambda name: failing_download)
    with pytest.raises(UserError, match=r"'mnist' \(download failed\): Exception: URL fetch failure.*--dataset digits"):
        load_data("mnist")
    assert seen == [data._DOWNLOAD_TIMEOUT_S]
    assert socket.getdefaulttimeout() == before


def test_probe_reports_unreachable_host(monkeypatch):
    def refuse(address, timeout):
        assert timeout == data._PROBE_TIMEOUT_S
        raise OSError("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert data._network_reachable() is False


def test_cached_mnist_loads_without_the_network(empty_keras_home, monkeypatch):
    (empty_keras_home / "datasets").mkdir()
    (empty_keras_home / "datasets" / "mnist.npz").write_bytes(b"stand-in")
    monkeypatch.setattr(data, "_network_reachable", lambda: never_called("probe"))
    monkeypatch.setattr(data, "_keras_loader", lambda name: tiny_mnist)
    ds = load_data("mnist")
    assert ds.name == "mnist" and ds.n_classes == 10 and ds.input_shape == (28, 28)
    assert ds.x_train.shape == (80, 28, 28) and ds.x_val.shape == (20, 28, 28)
    assert ds.x_test.shape == (20, 28, 28) and ds.y_test.shape == (20,)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and max(ds.x_train.max(), ds.x_val.max()) == 1.0
    np.testing.assert_allclose(ds.x_test * 255, tiny_mnist()[1][0], atol=1e-4)


def test_fashion_mnist_counts_as_cached_only_with_all_four_files(empty_keras_home, monkeypatch):
    folder = empty_keras_home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    names = ["train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"]
    for name in names[:3]:
        (folder / name).write_bytes(b"x")
    assert data._keras_cached("fashion_mnist") is None
    (folder / names[3]).write_bytes(b"x")
    assert data._keras_cached("fashion_mnist") == empty_keras_home / "datasets"
    monkeypatch.setattr(data, "_keras_loader", lambda name: tiny_mnist)
    assert load_data("fashion_mnist").name == "fashion_mnist"


def test_corrupt_cached_file_is_a_user_error(empty_keras_home, monkeypatch):
    (empty_keras_home / "datasets").mkdir()
    (empty_keras_home / "datasets" / "mnist.npz").write_bytes(b"junk")

    def corrupt():
        raise ValueError("Incomplete or corrupted file detected.")

    monkeypatch.setattr(data, "_keras_loader", lambda name: corrupt)
    with pytest.raises(UserError, match=r"could not load data set 'mnist' from .*datasets: ValueError: Incomplete"):
        load_data("mnist")


# --- no TensorFlow ----------------------------------------------------------------------------


def test_names_digits_npz_csv_and_arrays_never_import_tensorflow(tmp_path):
    x, y = balanced()
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y)
    csv = tmp_path / "d.csv"
    csv.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
    code = textwrap.dedent(f"""
        import sys
        import hparams_lab.training.data, hparams_lab.training.models
        from hparams_lab.training.data import check_data_source, load_data
        from hparams_lab.training.models import check_hparams, check_optimizer, resolve_model
        check_hparams(resolve_model('mlp'), ['units', 'learning_rate'])
        resolve_model('cnn')
        check_optimizer('sgd')
        check_data_source('digits')
        load_data('digits')
        load_data({path!r})
        from hparams_lab.training.data import load_data
        import numpy as np
        load_data('iris'); load_data({str(csv)!r}, targets=('y',))
        load_data((np.zeros((10, 2)), np.arange(10) % 2))
        print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))
    """)
    checkout = str(pathlib.Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([checkout, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(tmp_path), env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
