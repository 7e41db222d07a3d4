"""Cost metrics: every session logs params, epoch_time_s, latency_ms and peak_memory_mb at its
run root, declared as metrics in experiment.json and the logdir's union config; measured by
training.costs on real Keras fits, given by the fake train function otherwise (same path)."""

import json
import time
import types

import pytest

from hparams_lab import Discrete, HParam, Space, run_study
from hparams_lab.core.metrics import COST_METRICS
from hparams_lab.review import reader



def _check_declared_and_logged(logdir, experiment, n):
    logs = reader.load(logdir)
    assert len(logs.rows) == n
    for row in logs.rows:
        assert set(COST_METRICS) <= set(row.series), row.run  # in TensorBoard's events, at the run root
    declared = {(m["tag"], m["group"]): m["direction"]
                for m in json.loads((logdir / experiment / "experiment.json").read_text())["metrics"]}
    assert all(declared[(name, "")] == "min" for name in COST_METRICS)
    (config,) = logs.configs  # the union config TensorBoard's HParams dashboard reads
    assert {("", name) for name in COST_METRICS} <= {(group.strip("."), tag) for group, tag in config.metrics}


def test_fake_trials_log_and_declare_costs(tmp_path, fake_train):
    from tests.fakes import fake_costs

    space = Space([HParam("units", Discrete([8, 16, 32]))])
    study = run_study(space, strategy="grid", epochs=2, logdir=tmp_path, experiment="fake-costs")
    assert len(study.results) == 3
    for result in study.results:
        assert {k: result.metrics[k] for k in COST_METRICS} == pytest.approx(fake_costs(result.trial))
        recorded = json.loads((result.run_dir / "trial.json").read_text())["metrics"]
        assert {k: recorded[k] for k in COST_METRICS} == pytest.approx(fake_costs(result.trial))
    _check_declared_and_logged(tmp_path, "fake-costs", 3)


def test_a_failed_trial_logs_no_costs(tmp_path, fake_train):
    fake_train.configure(fail_on=lambda trial: trial.hparams["units"] == 16)
    space = Space([HParam("units", Discrete([8, 16]))])
    study = run_study(space, strategy="grid", epochs=1, logdir=tmp_path, experiment="fail")
    by_units = {r.trial.hparams["units"]: r for r in study.results}
    assert set(COST_METRICS) <= set(by_units[8].metrics)
    assert by_units[16].status.name == "FAILURE" and not set(COST_METRICS) & set(by_units[16].metrics)


@pytest.mark.slow
def test_cost_metrics_in_every_session_and_declared(tmp_path):
    space = Space([HParam("units", Discrete([8, 16])), HParam("extra_layer", Discrete([False, True]))])
    study = run_study(space, strategy="grid", epochs=1, logdir=tmp_path, experiment="costs", keep_best=0)
    assert len(study.results) == 4
    for result in study.results:
        assert set(COST_METRICS) <= set(result.metrics), result.metrics
        recorded = json.loads((result.run_dir / "trial.json").read_text())["metrics"]
        assert all(recorded[name] > 0 for name in COST_METRICS)
    by_units = {(r.trial.hparams["units"], r.trial.hparams["extra_layer"]): r.metrics["params"] for r in study.results}
    # digits: 64 inputs, 10 classes; Dense layers' kernels and biases
    assert by_units[(8, False)] == 64 * 8 + 8 + 8 * 10 + 10
    assert by_units[(16, True)] == 64 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10

    _check_declared_and_logged(tmp_path, "costs", 4)


@pytest.mark.slow
def test_measuring_costs_is_cheap():
    """Parameters, the median epoch and ~200 batch-1 calls: a small fraction of a trial."""
    from hparams_lab.training import costs
    from hparams_lab.training.data import load_data
    from hparams_lab.training.fit import TrainSettings, compiled_model, import_keras
    from hparams_lab.training.models import model_spec

    keras = import_keras()
    keras.utils.set_random_seed(0)
    data = load_data("digits", seed=0)
    model = compiled_model({"units": 32}, data, model_spec("mlp"), TrainSettings())
    timer = costs.epoch_timer(keras)
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=2, verbose=0,
              callbacks=[timer])
    began = time.perf_counter()
    measured = costs.measure(model, data, timer)
    spent = time.perf_counter() - began
    assert len(timer.durations) == 2 and measured["epoch_time_s"] > 0
    assert 0 < measured["latency_ms"] < 50 and measured["peak_memory_mb"] > 10
    assert spent < 0.5, spent  # ~0.1 s on an idle 2-core machine (tracing ~0.05 s, the loop <= 0.05 s)


@pytest.mark.slow
def test_a_kept_model_is_timed_once(monkeypatch):
    """Trials of one shape share a kept model (training.epochs) and so its latency: the second
    trial's number is the first's, without calling the model again."""
    import numpy as np

    from hparams_lab.training import costs

    calls = []

    def inference_call(model):
        return lambda x: calls.append(x)

    class Model:  # weakly referenced, as a Keras model
        pass

    monkeypatch.setattr(costs, "inference_call", inference_call)
    data = types.SimpleNamespace(batched=False, x_val=np.zeros((5, 3), np.float32))
    kept, other = Model(), Model()
    first = costs.latency_ms(kept, data)
    timed = len(calls)
    assert timed >= 2 and first is not None
    assert costs.latency_ms(kept, data) == first and len(calls) == timed
    assert costs.latency_ms(other, data) is not None and len(calls) > timed
