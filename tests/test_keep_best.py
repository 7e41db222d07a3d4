"""--keep-best K and export: at most K kept models, the right ones; the export round trip.

Plumbing with the fake train function (it keeps a text "model" where the Keras trainer
keeps model.keras); one real study (two worker processes) for the round trip: the
exported file loads with keras.models.load_model and scores what was recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hparams_lab.cli.app import main
from hparams_lab.core.metrics import ranked
from hparams_lab.store import kept
from hparams_lab.store.kept import MODEL_FILE, MODEL_INFO, Keeper
from hparams_lab.store.resume import scan

ARGS = ["--strategy", "random", "--trials", "8", "--epochs", "3", "--experiment", "e"]


def model_dirs(experiment_dir: Path) -> set[str]:
    return {p.parent.name for p in experiment_dir.glob(f"*/{MODEL_FILE}")}


def best_ids(experiment_dir: Path, k: int, metric: str = "best_val_accuracy") -> set[str]:
    done = list(scan(experiment_dir).done.values())
    return {r.run_dir.name for r in ranked(done, metric)[:k]}


@pytest.fixture
def most_on_disk(monkeypatch):
    """The most model files seen on disk right after the keeper heard of each result."""
    seen = [0]
    add = Keeper.add

    def counting(self, result):
        add(self, result)
        if result.run_dir is not None:
            seen[0] = max(seen[0], len(list(result.run_dir.parent.glob(f"*/{MODEL_FILE}"))))
    monkeypatch.setattr(Keeper, "add", counting)
    return seen


@pytest.mark.parametrize("k", [1, 3])
def test_keeps_the_k_best_trials_models_and_never_more(runner, tmp_path, fake_train, most_on_disk, k):
    result = runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--keep-best", str(k)])
    assert result.exit_code == 0, result.output
    experiment_dir = tmp_path / "e"
    assert model_dirs(experiment_dir) == best_ids(experiment_dir, k)
    assert len(model_dirs(experiment_dir)) == k
    assert 0 < most_on_disk[0] <= k
    info = json.loads((experiment_dir / next(iter(model_dirs(experiment_dir))) / MODEL_INFO).read_text())
    assert info["epoch"] == 3


def test_the_trainer_is_told_which_weights_to_keep(runner, tmp_path, fake_train):
    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path)])
    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--experiment", "f", "--metric", "final_val_accuracy"])
    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--experiment", "g", "--keep-best", "0"])
    assert [made.settings.keep_model for made in fake_train.made] == ["best", "last", None]
    assert model_dirs(tmp_path / "g") == set()
    assert len(model_dirs(tmp_path / "f")) == 1


def test_a_minimised_metric_keeps_the_lowest(runner, tmp_path, fake_train):
    result = runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--metric", "best_val_loss", "--keep-best", "2"])
    assert result.exit_code == 0, result.output
    assert model_dirs(tmp_path / "e") == best_ids(tmp_path / "e", 2, "best_val_loss")


def test_a_failed_trial_keeps_no_model(runner, tmp_path, fake_train):
    fake_train.configure(nan_at=1)  # every trial's loss goes NaN: FAILURE, though a file was written
    result = runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--trials", "3"])
    assert result.exit_code == 0, result.output
    assert model_dirs(tmp_path / "e") == set()


def test_a_resumed_study_keeps_k_across_both_runs(runner, tmp_path, fake_train):
    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--keep-best", "5"])
    assert len(model_dirs(tmp_path / "e")) == 5
    Keeper(tmp_path / "e", 2, "best_val_accuracy")  # what the next run starts with
    assert model_dirs(tmp_path / "e") == best_ids(tmp_path / "e", 2)


def test_hyperband_keeps_the_final_segments_model(runner, tmp_path, fake_train, most_on_disk):
    result = runner.invoke(main, ["--strategy", "hyperband", "--epochs", "9", "--experiment", "e",
                                  "--logdir", str(tmp_path), "--keep-best", "2"])
    assert result.exit_code == 0, result.output
    experiment_dir = tmp_path / "e"
    assert model_dirs(experiment_dir) == best_ids(experiment_dir, 2)
    assert most_on_disk[0] <= 2
    for name in model_dirs(experiment_dir):
        record = json.loads((experiment_dir / name / "trial.json").read_text())
        assert (experiment_dir / name / MODEL_FILE).read_text() == f"{record['id']}@{record['epochs']}"


# export, copying (no Keras: the fake's files are text)

def test_export_copies_the_best_model_and_describes_it(runner, tmp_path, fake_train):
    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--keep-best", "2"])
    experiment_dir = tmp_path / "e"
    (best,) = best_ids(experiment_dir, 1)
    out = tmp_path / "out" / "model.keras"
    result = runner.invoke(main, ["export", str(experiment_dir), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (experiment_dir / best / MODEL_FILE).read_bytes()
    sidecar = json.loads(out.with_suffix(".json").read_text())
    recorded = json.loads((experiment_dir / best / "trial.json").read_text())
    assert sidecar["trial"] == best and sidecar["hparams"] == recorded["hparams"]
    assert sidecar["metrics"] == recorded["metrics"] and sidecar["seed"] == recorded["seed"]
    assert sidecar["data"] == {"kind": "named", "name": "digits"}
    assert sidecar["weights"]["from"] == "the study's kept model" and sidecar["weights"]["epoch"] == 3
    assert "python" in sidecar["versions"] and sidecar["study_command"] and sidecar["export_command"]
    assert best in result.output


def test_export_of_tied_best_trials_takes_the_one_the_study_kept(runner, tmp_path, fake_train):
    """The keeper keeps the first trial to reach a value (a tie does not displace it); export,
    which ranks the run directories in another order, must pick that one among the tied."""
    from hparams_lab.store import rundirs

    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--keep-best", "1"])
    experiment_dir = tmp_path / "e"
    (kept_dir,) = {p.parent for p in experiment_dir.glob(f"*/{MODEL_FILE}")}
    first, *others = [attempt.run_dir for attempt in rundirs.scan(experiment_dir)]
    holder = others[0]  # scanned after `first`, which ties with it
    for name in (MODEL_FILE, MODEL_INFO):
        (kept_dir / name).rename(tmp_path / name)
        (tmp_path / name).rename(holder / name)
    for run_dir in (first, holder):
        record = json.loads((run_dir / "trial.json").read_text())
        record["metrics"]["best_val_accuracy"] = 2.0  # above every other trial's
        (run_dir / "trial.json").write_text(json.dumps(record))
    out = tmp_path / "out" / "model.keras"
    result = runner.invoke(main, ["export", str(experiment_dir), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (holder / MODEL_FILE).read_bytes()
    assert json.loads(out.with_suffix(".json").read_text())["trial"] == holder.name


def test_export_of_a_named_trial(runner, tmp_path, fake_train):
    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--keep-best", "2"])
    second = sorted(best_ids(tmp_path / "e", 2) - best_ids(tmp_path / "e", 1))[0]
    out = tmp_path / "second.keras"
    result = runner.invoke(main, ["export", str(tmp_path / "e"), "--trial", second, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.with_suffix(".json").read_text())["trial"] == second


def export_fails(runner, experiment_dir: Path, out: Path, *args: str) -> str:
    result = runner.invoke(main, ["export", str(experiment_dir), *args, "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.parent.exists()  # nothing written, not even the directory
    return result.output


def test_export_mistakes_are_one_line_and_write_nothing(runner, tmp_path, fake_train):
    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--keep-best", "1"])
    experiment_dir, out = tmp_path / "e", tmp_path / "out" / "model.keras"
    assert "no successful trial 'nosuchtrial0'" in export_fails(runner, experiment_dir, out, "--trial", "nosuchtrial0")
    assert "must end in .keras" in export_fails(runner, experiment_dir, tmp_path / "out" / "model.h5")
    not_kept = sorted({r.run_dir.name for r in scan(experiment_dir).done.values()} - model_dirs(experiment_dir))[0]
    message = export_fails(runner, experiment_dir, out, "--trial", not_kept)
    assert f"trial {not_kept} has no kept model" in message and "--retrain" in message


def test_export_needs_an_experiment(runner, tmp_path):
    result = runner.invoke(main, ["export", str(tmp_path), "-o", str(tmp_path / "m.keras")])
    assert result.exit_code == 2 and "is not an experiment directory" in result.output
    assert not (tmp_path / "m.keras").exists()


def test_export_without_retrain_loads_no_tensorflow(tmp_path, fake_train, runner):
    import subprocess
    import sys

    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path)])
    code = ("import sys; from hparams_lab.study.export import export; "
            f"export({str(tmp_path / 'e')!r}, {str(tmp_path / 'm.keras')!r}); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF loaded'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m.keras").is_file()


def test_the_keeper_forgets_unreadable_records(tmp_path):
    run_dir = tmp_path / "e" / "abc"
    run_dir.mkdir(parents=True)
    (run_dir / "trial.json").write_text(json.dumps({"status": "SUCCESS"}))  # no hparams: unusable
    (run_dir / MODEL_FILE).write_text("x")
    Keeper(tmp_path / "e", 1, "best_val_accuracy")
    assert not kept.has_model(run_dir)


# The real thing: Keras models from two worker processes, exported and evaluated.

@pytest.fixture(scope="module")
def real_study(tmp_path_factory):
    from hparams_lab import run_study

    logdir = tmp_path_factory.mktemp("real")
    study = run_study(strategy="random", trials=3, epochs=3, workers=2, keep_best=1, logdir=logdir,
                      experiment="e", seed=3)
    return study


@pytest.mark.slow
def test_exported_model_scores_what_the_leaderboard_said(real_study, tmp_path):
    import keras

    from hparams_lab.study.export import export
    from hparams_lab.training.data import load_data

    experiment_dir = real_study.experiment_dir
    assert model_dirs(experiment_dir) == {real_study.best.run_dir.name}
    done = export(experiment_dir, tmp_path / "best.keras")
    model = keras.models.load_model(done.path)
    data = load_data("digits", seed=3)
    scores = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
    assert scores["accuracy"] == pytest.approx(real_study.best.metrics["best_val_accuracy"], abs=1e-6)
    assert scores["loss"] == pytest.approx(done.info["weights"]["validation"]["val_loss"], rel=1e-4)
    # From Python, the same model.
    again = real_study.best.load_model()
    assert again.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)["accuracy"] == scores["accuracy"]


@pytest.mark.slow
def test_retrain_trains_on_training_and_validation_data_for_the_best_epochs(real_study, tmp_path):
    import keras

    from hparams_lab.review.results import load
    from hparams_lab.study.export import export
    from hparams_lab.training.data import load_data

    best = real_study.best
    (run,) = load(best.run_dir)
    best_epoch = run.best["validation/epoch_accuracy"]["step"] + 1
    done = export(real_study.experiment_dir, tmp_path / "again.keras", retrain=True)
    data = load_data("digits", seed=3)
    assert done.retrained and done.info["weights"]["epochs"] == best_epoch
    assert done.info["weights"]["samples"] == len(data.x_train) + len(data.x_val)
    model = keras.models.load_model(done.path)
    assert model.count_params() == keras.models.load_model(best.run_dir / MODEL_FILE).count_params()


def test_a_trial_that_cannot_enter_the_top_k_writes_no_model(runner, tmp_path, fake_train):
    from hparams_lab.training.saving import worth_keeping

    runner.invoke(main, [*ARGS, "--logdir", str(tmp_path), "--keep-best", "2"])
    experiment_dir = tmp_path / "e"
    second = sorted((r for r in scan(experiment_dir).done.values()), key=lambda r: -r.metrics["best_val_accuracy"])[1]
    bar = kept.bar_of(experiment_dir)
    assert bar == ("best_val_accuracy", second.metrics["best_val_accuracy"], True)
    value = bar[1]
    new_run = experiment_dir / "new"
    assert worth_keeping(new_run, {"val_accuracy": [0.1, value + 0.01]}, None)
    assert not worth_keeping(new_run, {"val_accuracy": [value, 0.1]}, None)  # a tie does not displace
    assert not worth_keeping(new_run, {"val_accuracy": [float("nan")]}, None)
    Keeper(experiment_dir, 5, "best_val_accuracy")  # fewer than K kept: no bar, every model is worth writing
    assert kept.bar_of(experiment_dir) is None and worth_keeping(new_run, {"val_accuracy": [0.0]}, None)
