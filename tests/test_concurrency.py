"""Two studies starting at once in one logdir: each keeps its columns in the one union config, they
get different default names, and an experiment can't be named like a file hparams_lab keeps."""

from __future__ import annotations

import multiprocessing

import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import metadata

from hparams_lab.cli.app import main
from hparams_lab.core.errors import UserError
from hparams_lab.store.experiment import ExperimentRecord, check_experiment_name, refresh_union_config
from hparams_lab.tb.summaries import CONFIG_SUFFIX

ROUNDS = 12


def start_study(logdir: str, name: str, barrier) -> None:
    """What a study does as it starts: write its experiment.json, then rebuild the union config."""
    from pathlib import Path

    experiment_dir = Path(logdir) / name
    experiment_dir.mkdir()
    barrier.wait()  # both at once
    ExperimentRecord(name=name, space={"hparams": {f"only_{name}": {"values": [1, 2]}}}, strategy="grid",
                     seed=0, trials=2, dataset="digits", model="mlp", metric="best_val_accuracy",
                     metrics=[{"tag": f"score_{name}", "group": ""}]).write(experiment_dir)
    refresh_union_config(Path(logdir))


def root_config_hparams(logdir) -> list[set[str]]:
    """The hparam names of each union config file under logdir."""
    found = []
    for path in sorted(logdir.rglob(f"*{CONFIG_SUFFIX}")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == metadata.EXPERIMENT_TAG:
                    content = value.metadata.plugin_data.content
                    experiment = metadata.parse_experiment_plugin_data(content)
                    found.append({info.name for info in experiment.hparam_infos})
    return found


def test_two_studies_starting_together_keep_both_columns_in_one_union_config(tmp_path):
    context = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        logdir = tmp_path / f"round{round_}"
        logdir.mkdir()
        barrier = context.Barrier(2)
        processes = [context.Process(target=start_study, args=(str(logdir), name, barrier)) for name in ("a", "b")]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
        assert root_config_hparams(logdir) == [{"only_a", "only_b"}], f"round {round_}"


def test_studies_started_in_the_same_second_get_different_default_names(runner, tmp_path, fake_train,
                                                                         monkeypatch):
    import os

    names = []
    for pid in (101, 102):
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        result = runner.invoke(main, ["--logdir", str(tmp_path), "--trials", "1", "--epochs", "1"])
        assert result.exit_code == 0, result.output
        names.append(next(line for line in result.output.splitlines() if line.startswith("Logs: ")))
    assert names[0] != names[1] and names[0].endswith("-101") and names[1].endswith("-102")


@pytest.mark.parametrize("name", ["experiment.json", "trial.json", "events.out.tfevents.1.x",
                                  f"x{CONFIG_SUFFIX}", ".lock", ".hparams_lab-config.lock",
                                  ".hparams_lab-config-1-2"])
def test_names_of_files_hparams_lab_keeps_are_refused(name):
    with pytest.raises(UserError, match="is not allowed"):
        check_experiment_name(name)
