"""GPUs, tested without one: which device each worker gets (CUDA_VISIBLE_DEVICES and a memory
cap when K share a GPU), --gpus checks, the CPU fallback, and the out-of-memory retry alone."""

from __future__ import annotations

import json
import os
from concurrent.futures import Future

import pytest

from hparams_lab.cli.app import main
from hparams_lab.core.errors import UserError
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.execution import devices
from hparams_lab.execution.devices import Gpu, Slot, choose_gpus, plan_slots

TWO = [Gpu(0, "H200", 100_000), Gpu(1, "H200", 100_000)]


def test_choosing_gpus():
    assert choose_gpus(None, TWO) == TWO and choose_gpus("all", TWO) == TWO
    assert choose_gpus("none", TWO) == [] and choose_gpus("1", TWO) == [TWO[1]]
    with pytest.raises(UserError, match=r"--gpus '0,3': there is no GPU 3 here \(GPUs: 0, 1\)"):
        choose_gpus("0,3", TWO)
    with pytest.raises(UserError, match="write all, none or GPU indices"):
        choose_gpus("first", TWO)


def test_one_worker_per_gpu_then_k_capped_ones_then_workers_spread_over_them():
    assert plan_slots(TWO, 1) == [Slot(0), Slot(1)]  # K = 1: the whole device, memory growth
    assert plan_slots(TWO, 2) == [Slot(0, 45_000), Slot(1, 45_000), Slot(0, 45_000), Slot(1, 45_000)]
    assert plan_slots(TWO, 1, workers=3) == [Slot(0, 45_000), Slot(1, 45_000), Slot(0, 45_000)]
    assert plan_slots([], 1, workers=3) == [Slot()] * 3  # no GPU: CPU workers, as before
    assert Slot(1, 45_000).env() == {"CUDA_VISIBLE_DEVICES": "1", "HPARAMS_LAB_GPU_MEMORY_MB": "45000"}
    assert Slot(0).env() == {"CUDA_VISIBLE_DEVICES": "0"} and Slot().env() == {"CUDA_VISIBLE_DEVICES": "-1"}
    assert Slot(1).label == "GPU 1" and Slot().label == "CPU"


def test_gpus_are_found_with_nvidia_smi_and_cuda_visible_devices_is_honoured(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '0, NVIDIA H200, 143771'\necho '1, NVIDIA H200, 143771'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert devices.visible_gpus() == [Gpu(0, "NVIDIA H200", 143771), Gpu(1, "NVIDIA H200", 143771)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert devices.visible_gpus() == [Gpu(1, "NVIDIA H200", 143771)]
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert devices.visible_gpus() == []


def test_each_worker_takes_its_device_before_tensorflow_starts(monkeypatch):
    import queue

    from hparams_lab.execution import local

    environ = dict(os.environ)
    monkeypatch.setattr(os, "environ", environ)
    monkeypatch.setattr(local, "worker_train", lambda job: environ.setdefault("TRAINED_WITH", environ["CUDA_VISIBLE_DEVICES"]))
    monkeypatch.setattr(local, "_device", [None])
    handed_out = queue.Queue()
    handed_out.put(Slot(1, 45_000))
    local._start_worker(None, 4, handed_out, {"HPARAMS_LAB_MIXED_PRECISION": "1"})
    assert environ["TRAINED_WITH"] == "1" and environ["HPARAMS_LAB_GPU_MEMORY_MB"] == "45000"
    assert environ["HPARAMS_LAB_MIXED_PRECISION"] == "1" and environ["TF_NUM_INTRAOP_THREADS"] == "4"
    assert local._device == ["GPU 1"]


def test_without_gpus_nothing_changes(runner, tmp_path, fake_train, monkeypatch):
    monkeypatch.setattr(devices, "visible_gpus", lambda: [])
    result = runner.invoke(main, ["--trials", "2", "--epochs", "1", "--logdir", str(tmp_path), "--experiment", "e",
                                  "--mixed-precision"])
    assert result.exit_code == 0, result.output
    assert "no GPU here: --mixed-precision is ignored" in result.output
    assert "device" not in next(line for line in result.output.splitlines() if line.startswith("rank "))
    assert all("device" not in json.loads(p.read_text()) for p in (tmp_path / "e").glob("*/trial.json"))


@pytest.mark.parametrize("args, message", [
    (["--gpus", "2"], "--gpus '2': there is no GPU 2 here (GPUs: none)"),
    (["--per-gpu", "0"], "--per-gpu must be a whole number >= 1, got 0"),
])
def test_bad_gpu_flags_are_one_line(runner, tmp_path, fake_train, monkeypatch, args, message):
    monkeypatch.setattr(devices, "visible_gpus", lambda: [])
    result = runner.invoke(main, ["--logdir", str(tmp_path / "logs"), *args])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [f"Error: {message}"]
    assert not (tmp_path / "logs").exists()


class GpuBackend:
    """Inline, but as if its workers shared GPUs: submit_alone runs a task on a 'whole GPU'."""

    slots, on_gpus = 1, True

    def __init__(self, train):
        self.train, self.alone = train, []

    def submit(self, task) -> Future:
        from hparams_lab.execution.events import SilentReporter
        from hparams_lab.execution.local import _run

        future = Future()
        future.set_result(_run(task, self.train, SilentReporter(), device="GPU 0"))
        return future

    def submit_alone(self, task) -> Future:
        self.alone.append(task.trial.id)
        return self.submit(task)

    def restart(self) -> None: ...
    def close(self) -> None: ...


OOM = "ResourceExhaustedError: OOM when allocating tensor with shape[4096,4096]"


def oom_train(too_big_always: set, too_big_shared: set):
    def train(trial, on_epoch, run_dir=None, **_):
        if trial.hparams["units"] in too_big_always or (trial.hparams["units"] in too_big_shared
                                                         and not str(run_dir).endswith(".2")):
            raise RuntimeError(OOM)
        on_epoch(0, {"accuracy": 0.5, "val_accuracy": 0.5, "loss": 1.0, "val_loss": 1.0})
        return type("Outcome", (), {"history": {"accuracy": [0.5], "val_accuracy": [0.5], "loss": [1.0],
                                                "val_loss": [1.0]}, "test": {}, "epochs": 1})()
    return train


def test_out_of_gpu_memory_runs_again_alone_then_fails_saying_so(tmp_path):
    from hparams_lab.execution.loop import drive
    from hparams_lab.search.base import FixedSearch

    trials = [Trial({"units": units}, seed=0) for units in (8, 4096, 65536, 16)]
    backend = GpuBackend(oom_train(too_big_always={65536}, too_big_shared={4096}))
    search = FixedSearch(trials)
    drive(search, backend, tmp_path)
    results = {t.hparams["units"]: search.results[t.id] for t in trials}
    assert backend.alone == [trials[1].id, trials[2].id]  # after the others, each on its own
    assert results[4096].status is TrialStatus.SUCCESS and results[4096].run_dir.name.endswith(".2")
    assert results[65536].status is TrialStatus.FAILURE
    assert results[65536].error.startswith("out of GPU memory with the whole device: RuntimeError: " + OOM)
    assert results[8].status is results[16].status is TrialStatus.SUCCESS
    recorded = json.loads((results[4096].run_dir / "trial.json").read_text())
    assert recorded["device"] == "GPU 0" and recorded["status"] == "SUCCESS"
    first = json.loads((tmp_path / trials[1].id / "trial.json").read_text())
    assert first["status"] == "FAILURE" and "OOM when allocating" in first["error"]


def test_the_leaderboard_names_each_trials_device():
    from hparams_lab.cli.console import leaderboard

    results = [TrialResult(Trial({"units": 8}, seed=0), TrialStatus.SUCCESS, {"best_val_accuracy": 0.9}, 1, 1.0,
                           device="GPU 1")]
    header, row = leaderboard(results, "best_val_accuracy").splitlines()[:2]
    assert header.split()[6] == "device" and "GPU 1" in row


@pytest.mark.slow
def test_tensorflows_own_out_of_memory_error_is_recognised():
    """The error text a trial records (core.errors.one_line) of TensorFlow's real exception."""
    tf = pytest.importorskip("tensorflow")
    from hparams_lab.core.errors import one_line

    error = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[65536,65536]")
    assert devices.is_out_of_memory(one_line(error))
    assert not devices.is_out_of_memory(one_line(ValueError("shapes (3,) and (4,) not aligned")))
