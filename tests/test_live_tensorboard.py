"""A TensorBoard left running while studies add experiments shows every new column.

TensorBoard keeps the first hparams config it read for a run, so a config rewritten in
place never shows a later experiment's columns until a restart; hparams_lab writes each
union config into a new hidden run directory and deletes the old one, which TensorBoard
forgets at its next reload. Studies train with the fake; the TensorBoard is real.
"""

from __future__ import annotations

import json
import time

import pytest

from hparams_lab.cli.app import main
from tests.tbserver import TensorBoardServer, hparam_names, metric_names

pytestmark = pytest.mark.slow

# Each experiment brings hparams (and, for B, a metric: AUC) that no earlier one had.
EXPERIMENTS = {
    "A": ("digits", {"units": [8, 16]}),
    "B": ("breast_cancer", {"dropout": [0.0, 0.2], "activation": ["relu", "tanh"]}),
    "C": ("digits", {"num_layers": [1, 2]}),
}


def add_experiment(runner, logs, name: str) -> None:
    data, hparams = EXPERIMENTS[name]
    space = logs.parent / f"{name}.json"
    space.write_text(json.dumps({"hparams": {k: {"values": v} for k, v in hparams.items()}}))
    result = runner.invoke(main, ["--logdir", str(logs), "--experiment", name, "--data", data,
                                  "--space", str(space), "--strategy", "grid", "--epochs", "1"])
    assert result.exit_code == 0, result.output


def declared(logs, name: str) -> set[tuple[str, str]]:
    record = json.loads((logs / name / "experiment.json").read_text())
    return {(m["group"], m["tag"]) for m in record["metrics"]}


@pytest.mark.parametrize("load_fast", ["auto", "false"])  # the data server, the Python loader
def test_a_running_tensorboard_shows_the_columns_of_experiments_added_after_it_started(
        runner, tmp_path, fake_train, load_fast):
    logs = tmp_path / "logs"
    add_experiment(runner, logs, "A")
    with TensorBoardServer(logs, load_fast=load_fast) as tb:
        added, groups = [], 0
        for name in EXPERIMENTS:
            if added:  # A was there before TensorBoard started
                add_experiment(runner, logs, name)
            added.append(name)
            groups += len(list((logs / name).glob("*/trial.json")))
            metrics = {n: declared(logs, n) for n in added}
            # Every session has a value for each metric of its own experiment: a column
            # missing from the config TensorBoard uses would leave it without one.
            experiment, _ = tb.wait_for_sessions(
                groups, metrics=lambda session, metrics=metrics: metrics[session.split("/")[0]], timeout=30)
            wanted = {h for n in added for h in EXPERIMENTS[n][1]}
            deadline = time.monotonic() + 10  # a few reload intervals (1 s here)
            while hparam_names(experiment) != wanted and time.monotonic() < deadline:
                time.sleep(0.2)
                experiment = tb.experiment()
            assert hparam_names(experiment) == wanted
            assert metric_names(experiment) >= set().union(*metrics.values())
        assert ("", "best_val_auc") in metrics["B"] and ("", "best_val_auc") not in metrics["A"]
    hidden = [p.name for p in logs.iterdir() if p.name.startswith(".hparams_lab-config-")]
    assert len(hidden) == 1  # one config run, whatever the number of rebuilds
