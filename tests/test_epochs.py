"""training.epochs: a trial's epochs as one TensorFlow call each, with model.fit's semantics.

Real Keras on a small slice of digits (a few hundred samples, 1-4 epochs). What needs
no training (the choice of path, the shuffling order) is tested without it.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from hparams_lab.core.trial import Trial
from hparams_lab.training import epochs as epoch_loop
from hparams_lab.training.data import load_data
from hparams_lab.training.fit import TrainSettings, compiled_model, import_keras, train_trial
from hparams_lab.training.models import model_spec, resolve_model

HPARAMS = {"units": 16, "dropout": 0.2, "optimizer": "adam", "learning_rate": 0.01}


@pytest.fixture(scope="module")
def data():
    digits = load_data("digits", seed=0)
    return dataclasses.replace(digits, x_train=digits.x_train[:300], y_train=digits.y_train[:300],
                               x_val=digits.x_val[:100], y_val=digits.y_val[:100])


@pytest.fixture
def said(monkeypatch):
    """The fallback messages of this test alone (they are said once per process)."""
    monkeypatch.setattr(epoch_loop, "_SAID", set())


def model_for(data, hparams=HPARAMS, seed=0):
    keras = import_keras()
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    return keras, compiled_model(hparams, data, resolve_model("mlp"), TrainSettings())


def train(data, hparams=HPARAMS, seed=1, **options):
    return train_trial(Trial(hparams, seed=seed), data, resolve_model("mlp"), TrainSettings(epochs=2), **options)


def test_the_order_follows_the_seed_and_the_epoch_alone():
    first = epoch_loop.order(3, 0, 10)
    assert sorted(first) == list(range(10)) and first.dtype == np.int32
    assert np.array_equal(first, epoch_loop.order(3, 0, 10))
    assert not np.array_equal(first, epoch_loop.order(3, 1, 10))
    assert not np.array_equal(first, epoch_loop.order(4, 0, 10))


@pytest.mark.slow
def test_what_keeps_a_fit_on_model_fit(data):
    keras, model = model_for(data)

    class PerBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    class PerEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    x, y = data.x_train, data.y_train
    assert epoch_loop.why_not(model, [PerEpoch(), keras.callbacks.EarlyStopping()], x, y) is None
    assert "PerBatch has per-batch hooks (on_train_batch_end)" in epoch_loop.why_not(model, [PerBatch()], x, y)
    assert "TensorBoard" in epoch_loop.why_not(model, [keras.callbacks.TensorBoard("/nonexistent")], x, y)
    import tensorflow as tf

    assert epoch_loop.why_not(model, [], tf.data.Dataset.from_tensor_slices(x), None) == "the data is not numpy arrays"

    class OwnStep(keras.Sequential):
        def train_step(self, batch):
            return super().train_step(batch)

    assert epoch_loop.why_not(OwnStep(), [], x, y) == "model OwnStep has its own train_step"


@pytest.mark.slow
def test_the_epoch_loop_logs_what_model_fit_logs(data):
    logs = {}
    for path in ("fit", "loop"):
        keras, model = model_for(data)
        if path == "fit":
            history = model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=2,
                                batch_size=64, verbose=0)
        else:
            history = epoch_loop.fit(model, data.x_train, data.y_train, data.x_val, data.y_val, batch_size=64,
                                     callbacks=[], seed=0, initial_epoch=0, epochs=2).history
        logs[path] = history.history
    assert sorted(logs["loop"]) == sorted(logs["fit"]) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(values) == 2 for values in logs["loop"].values())
    # Other shuffles, so other numbers, but the same training: close after two epochs.
    assert abs(logs["loop"]["val_accuracy"][-1] - logs["fit"]["val_accuracy"][-1]) < 0.15


@pytest.mark.slow
def test_a_trial_is_the_same_bit_for_bit_twice_and_after_another_trial(data, said):
    with warnings.catch_warnings():
        warnings.simplefilter("error", epoch_loop.FitFallback)  # the fast path, not fit
        first = train(data)
        again = train(data)
        train(data, {**HPARAMS, "units": 8}, seed=5)
        after_another = train(data)
    assert first.history == again.history == after_another.history
    assert first.test == after_another.test
    assert train(data, seed=2).history != first.history


@pytest.mark.slow
def test_early_stopping_restores_the_best_epochs_weights(data):
    keras, model = model_for(data)
    weights = []

    class Score(keras.callbacks.Callback):  # a monitored value that peaks at epoch 1
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = [0.5, 0.9, 0.1, 0.2, 0.3][epoch]
            weights.append(self.model.get_weights())

    stopping = keras.callbacks.EarlyStopping(monitor="score", mode="max", patience=2, restore_best_weights=True)
    history = epoch_loop.fit(model, data.x_train, data.y_train, data.x_val, data.y_val, batch_size=64,
                             callbacks=[Score(), stopping], seed=0, initial_epoch=0, epochs=5).history
    assert len(history.history["loss"]) == 4  # epochs 2 and 3 did not beat epoch 1
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights[1], strict=True))


@pytest.mark.slow
def test_a_pruned_trial_and_a_nan_loss_stop_training(data):
    pruned = train(data, on_epoch=lambda epoch, logs: True)
    assert pruned.epochs == 1 and len(pruned.history["loss"]) == 1
    nan = train(data, {**HPARAMS, "optimizer": "sgd", "learning_rate": 1e38})  # weights blow up
    assert nan.epochs == 1 and np.isnan(nan.history["loss"][0])


@pytest.mark.slow
def test_a_callback_with_per_batch_hooks_trains_with_fit_and_says_so_once(data, said):
    keras = import_keras()
    batches = []

    class PerBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)

    with pytest.warns(epoch_loop.FitFallback, match="per-batch hooks") as caught:
        train(data, user_callbacks=lambda hparams: [PerBatch()])
        train(data, user_callbacks=lambda hparams: [PerBatch()])
    assert len(caught) == 1
    assert batches  # fit called the hook


@pytest.mark.slow
def test_a_trial_on_a_kept_runner_trains_as_on_a_model_of_its_own(data, monkeypatch):
    """Trials of one shape share a traced epoch loop, whatever their data; the numbers are a
    fresh model's, bit for bit."""
    other = {**HPARAMS, "learning_rate": 0.002, "dropout": 0.35}  # same shape: both rates are variables
    reversed_ = dataclasses.replace(data, x_train=data.x_train[::-1].copy(), y_train=data.y_train[::-1].copy())
    fewer = dataclasses.replace(data, x_train=data.x_train[:200], y_train=data.y_train[:200])
    monkeypatch.setattr(epoch_loop, "_KEPT", epoch_loop.OrderedDict())
    cold = {}
    for name, each in {"data": data, "reversed": reversed_, "fewer": fewer}.items():
        epoch_loop._KEPT.clear()
        cold[name] = train(each, other, seed=7)
    epoch_loop._KEPT.clear()
    train(data, seed=3)  # keeps a runner of this shape
    (runner,) = epoch_loop._KEPT.values()
    traces = runner.train_epoch.experimental_get_tracing_count()
    warm = train(data, other, seed=7)
    assert warm.history == cold["data"].history and warm.test == cold["data"].test
    assert train(reversed_, other, seed=7).history == cold["reversed"].history  # other values, same shapes
    assert train(fewer, other, seed=7).history == cold["fewer"].history  # another size
    assert runner.train_epoch.experimental_get_tracing_count() == traces  # none traced again
    assert list(epoch_loop._KEPT.values()) == [runner]
    train(data, {**HPARAMS, "units": 8}, seed=3)  # another shape: a runner of its own
    assert len(epoch_loop._KEPT) == 2


STATEFUL_RANDOM = ("Random", "Stateful", "Rng", "Multinomial", "TruncatedNormal")


def op_types(graph) -> set[str]:
    """The op types of a traced graph and of every function it calls (the while loop's body)."""
    types = {op.type for op in graph.get_operations()}
    for function in graph._functions.values():
        types |= {node.op for node in function.cached_definition.node_def}
    return types


@pytest.mark.slow
@pytest.mark.parametrize("model, hparams", [("mlp", HPARAMS), ("cnn", {"filters": 4, "units": 8, "dropout": 0.3})])
def test_a_built_in_models_epoch_loop_draws_from_no_stateful_random_op(data, model, hparams):
    """What lets a trial keep TensorFlow's kernel cache (training.fit._kernels_kept): no kernel of
    these graphs holds a random stream that seeding would have restarted."""
    keras = import_keras()
    keras.backend.clear_session()
    built = compiled_model(hparams, data, resolve_model(model), TrainSettings())
    train, val = epoch_loop.tensors(((data.x_train, data.y_train), (data.x_val, data.y_val)))
    runner = epoch_loop.EpochRunner(built, 32, epoch_loop.spec(train), epoch_loop.spec(val))
    runner.build(train)
    types = set()
    for function in (runner.train_epoch, runner.evaluate):
        types |= op_types(function.get_concrete_function().graph)
    assert any(t.startswith("StatelessRandom") for t in types)  # dropout's masks: stateless
    stateful = {t for t in types if not t.startswith("Stateless") and any(s in t for s in STATEFUL_RANDOM)}
    assert types and not stateful


@pytest.mark.slow
def test_seeding_with_the_kernel_cache_kept_sets_tensorflows_seed_as_tensorflow_does():
    import tensorflow as tf
    from tensorflow.python.framework import random_seed

    from hparams_lab.training.fit import _kernels_kept

    keras = import_keras()
    tf.random.set_seed(3)
    expected = [random_seed.get_seed(None) for _ in range(3)]
    first = float(tf.random.uniform([1], seed=1)[0])
    with _kernels_kept():
        keras.utils.set_random_seed(3)
    assert [random_seed.get_seed(None) for _ in range(3)] == expected  # the same op seeds follow
    assert float(tf.random.uniform([1], seed=1)[0]) != first  # the op's kernel was kept: its stream goes on
    tf.random.set_seed(3)
    assert float(tf.random.uniform([1], seed=1)[0]) == first  # TensorFlow's own seeding restarts it


@pytest.mark.slow
def test_a_trial_traces_a_coming_shape_while_it_trains_and_that_trial_trains_as_on_its_own(data, monkeypatch):
    monkeypatch.setattr(epoch_loop, "_KEPT", epoch_loop.OrderedDict())
    other = {**HPARAMS, "units": 8, "optimizer": "sgd"}
    cold = train(data, other, seed=5)
    epoch_loop._KEPT.clear()
    train(data, seed=3, warm=other)
    assert len(epoch_loop._KEPT) == 2  # this trial's shape, and the coming one's
    warmed = list(epoch_loop._KEPT.values())[-1]
    traces = warmed.train_epoch.experimental_get_tracing_count()
    again = train(data, other, seed=5)
    assert again.history == cold.history and again.test == cold.test  # bit for bit
    assert warmed.train_epoch.experimental_get_tracing_count() == traces  # traced in the thread alone
    assert list(epoch_loop._KEPT.values())[-1] is warmed


def test_the_trainer_warms_the_plans_next_new_shape(monkeypatch):
    """Which coming trial a trial traces for: the next in the plan of another shape, not kept yet."""
    from hparams_lab.training import fit

    warmed = []
    monkeypatch.setattr(fit, "train_trial", lambda *args, warm=None, **kwargs: warmed.append(warm))
    monkeypatch.setattr(epoch_loop, "_KEPT", epoch_loop.OrderedDict())
    a, a2, b = {"units": 8, "dropout": 0.1}, {"units": 8, "dropout": 0.3}, {"units": 16, "dropout": 0.1}
    plan = [a, a2, b, a]
    data = load_data("digits", seed=0)
    train = fit.trainer(data, resolve_model("mlp"), TrainSettings(), None, 0, upcoming=plan)
    for hparams in plan:
        train(Trial(hparams, seed=0), None)
    # a2 shares a's shape (dropout is a variable); b is new; after b, a comes again
    assert warmed == [b, b, a, None]
    own = fit.trainer(data, model_spec(own_model), TrainSettings(), None, 0, upcoming=plan)
    warmed.clear()
    own(Trial(a, seed=0), None)
    assert warmed == [None]  # a user's builder is not called from another thread


def own_model(hparams, input_shape, n_outputs):
    raise AssertionError("never built here")


@pytest.mark.slow
def test_a_segment_saves_its_model_only_to_beat_the_bar_or_refresh_its_own(data, tmp_path):
    from hparams_lab.store.jsonfile import write_json_atomic
    from hparams_lab.store.kept import BAR, MODEL_FILE

    run_dir = tmp_path / "e" / "1"
    settings = TrainSettings(epochs=4, keep_model="last", monitor="val_accuracy")

    def segment(start, stop):
        return train_trial(Trial(HPARAMS, seed=2), data, resolve_model("mlp"), settings, start=start, stop=stop,
                           checkpoint=run_dir / "checkpoint.npz", run_dir=run_dir)

    run_dir.mkdir(parents=True)
    write_json_atomic(tmp_path / "e" / BAR, {"metric": "best_val_accuracy", "value": 2.0, "maximize": True})
    segment(0, 1)
    assert not (run_dir / MODEL_FILE).exists()  # it cannot be among the K best
    (tmp_path / "e" / BAR).unlink()  # fewer than K kept: any model may be
    segment(1, 2)
    saved = (run_dir / MODEL_FILE).stat().st_mtime_ns
    write_json_atomic(tmp_path / "e" / BAR, {"metric": "best_val_accuracy", "value": 2.0, "maximize": True})
    segment(2, 3)
    assert (run_dir / MODEL_FILE).stat().st_mtime_ns != saved  # kept already: the newest weights replace it


@pytest.mark.slow
def test_the_first_models_evaluation_is_kept_for_the_first_trial(data, monkeypatch):
    """logged_metrics(keep=True) leaves its runner, validation traced, to the first trial, which
    trains on it bit for bit as on a model of its own."""
    from hparams_lab.training.fit import logged_metrics

    monkeypatch.setattr(epoch_loop, "_KEPT", epoch_loop.OrderedDict())
    settings = TrainSettings(epochs=2)
    cold = train(data, seed=4)
    epoch_loop._KEPT.clear()
    assert logged_metrics(Trial(HPARAMS, seed=4), data, resolve_model("mlp"), settings, keep=True) == [
        "loss", "accuracy"]
    (runner,) = epoch_loop._KEPT.values()
    traced = runner.evaluate.experimental_get_tracing_count()
    first = train(data, seed=4)
    assert first.history == cold.history
    assert list(epoch_loop._KEPT.values()) == [runner]  # the first trial took it
    assert runner.evaluate.experimental_get_tracing_count() == traced
    trained = runner.train_epoch.experimental_get_tracing_count()
    logged_metrics(Trial(HPARAMS, seed=5), data, resolve_model("mlp"), settings, keep=True)  # the next study's
    assert list(epoch_loop._KEPT.values()) == [runner]  # the traced runner stays, not a new one
    assert train(data, seed=4).history == cold.history
    assert runner.train_epoch.experimental_get_tracing_count() == trained
    epoch_loop._KEPT.clear()
    logged_metrics(Trial(HPARAMS, seed=4), data, resolve_model("mlp"), settings)
    assert not epoch_loop._KEPT  # workers train: nothing kept here


@pytest.mark.slow
def test_setting_a_runner_up_changes_no_weight_and_traces_once(data):
    """EpochRunner.trace runs the epoch function on no samples in a thread, to set its graph up."""
    _, model = model_for(data)
    train, val = epoch_loop.tensors(((data.x_train, data.y_train), (data.x_val, data.y_val)))
    runner = epoch_loop.EpochRunner(model, 32, epoch_loop.spec(train), epoch_loop.spec(val))
    runner.build(train)
    before = [v.numpy() for v in [*model.variables, *model.optimizer.variables]]
    runner.trace(train)
    runner.trace(train)
    after = [v.numpy() for v in [*model.variables, *model.optimizer.variables]]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert runner.train_epoch.experimental_get_tracing_count() == 1
    assert runner.evaluate.experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_segments_train_as_the_whole_run_on_the_kept_model_or_a_built_one(data, tmp_path, monkeypatch):
    """A continued segment restores the dropout layers' random streams and rates with the weights
    and optimizer: segments 0-1 and 1-3 give one 3-epoch run's numbers bit for bit, whether the
    continuation trains on the model kept for its shape (no build) or on a model built and
    restored (another worker, a runner let go)."""
    monkeypatch.setattr(epoch_loop, "_KEPT", epoch_loop.OrderedDict())
    hparams = {**HPARAMS, "dropout": 0.3}
    settings = TrainSettings(epochs=3)

    def segment(start, stop, checkpoint):
        return train_trial(Trial(hparams, seed=5), data, resolve_model("mlp"), settings, start=start, stop=stop,
                           checkpoint=checkpoint)

    whole = segment(0, 3, None).history
    built = []
    monkeypatch.setattr("hparams_lab.training.fit._built_and_compiled", _counting(built))
    for kept in (True, False):
        checkpoint = tmp_path / f"{kept}.npz"
        first = segment(0, 1, checkpoint).history
        if not kept:
            epoch_loop._KEPT.clear()
        built.clear()
        rest = segment(1, 3, checkpoint).history
        assert len(built) == (0 if kept else 1)
        assert {name: first[name] + rest[name] for name in whole} == whole


def _counting(calls):
    from hparams_lab.training import fit

    build = fit._built_and_compiled

    def counted(*args, **kwargs):
        calls.append(args)
        return build(*args, **kwargs)

    return counted


@pytest.mark.slow
def test_a_checkpoint_from_before_the_streams_were_kept_still_continues(data, tmp_path):
    """Weights and optimizer only (a study started by an earlier version, resumed): the segment
    builds its model, restores those, and trains on."""
    checkpoint = tmp_path / "checkpoint.npz"
    settings = TrainSettings(epochs=3)
    train_trial(Trial(HPARAMS, seed=5), data, resolve_model("mlp"), settings, start=0, stop=1, checkpoint=checkpoint)
    with np.load(checkpoint) as saved:
        old = {name: saved[name] for name in saved.files if name[0] in "wo" and name[1:].isdigit()}
        assert len(old) < len(saved.files)
    np.savez(checkpoint, **old)
    rest = train_trial(Trial(HPARAMS, seed=5), data, resolve_model("mlp"), settings, start=1, stop=3,
                       checkpoint=checkpoint)
    assert rest.epochs == 2 and all(np.isfinite(rest.history["loss"]))
    with np.load(checkpoint) as saved:
        assert "rates" in saved.files  # written anew, whole


@pytest.mark.slow
def test_a_continuation_whose_kept_shape_holds_other_data_builds_its_own(data, tmp_path, monkeypatch):
    """The same hparams on data of another width (a second study in the process) share a shape
    key, not a model: the continuation builds and restores instead of failing on the kept one."""
    monkeypatch.setattr(epoch_loop, "_KEPT", epoch_loop.OrderedDict())
    narrow = dataclasses.replace(data, x_train=data.x_train[:, :4], x_val=data.x_val[:, :4],
                                 input_shape=(4, *data.x_train.shape[2:]))  # digits: 8 x 8 images
    settings = TrainSettings(epochs=3)

    def segment(dataset, start, stop, checkpoint, seed=5):
        return train_trial(Trial(HPARAMS, seed=seed), dataset, resolve_model("mlp"), settings, start=start, stop=stop,
                           checkpoint=checkpoint)

    segment(narrow, 0, 1, tmp_path / "narrow.npz")
    segment(data, 0, 1, tmp_path / "wide.npz", seed=6)  # the shape's kept model is now the wide one
    rest = segment(narrow, 1, 3, tmp_path / "narrow.npz")
    whole = segment(narrow, 0, 3, None)
    assert rest.epochs == 2 and rest.history["val_loss"] == whole.history["val_loss"][1:]
