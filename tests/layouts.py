"""Logdirs holding two experiments with different hparams and metrics, in the
layouts that decide where the experiment-level hparams_config lives:

    logs/expA/<run>/...   hparams {units, optimizer}, root metric final_val_loss
    logs/expB/<run>/...   hparams {filters, dropout}, root metric best_val_auc

Every run writes best_val_accuracy at its root and epoch_accuracy /
epoch_loss in train/ and validation/ (the Keras TensorBoard callback layout).

    "per_experiment"  (a) a config in logs/expA and in logs/expB
    "union_run"       (b) one config declaring everything of both, alone in a hidden
                          run directory logs/.hparams_lab-config-<n>/ (hparams_lab's layout)
    "root_union"      (b') the same config at logs/ itself (hparams_lab before: a running
                          TensorBoard never sees a later experiment's columns)
    "none"            (c) no config anywhere
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tensorboard.plugins.hparams import summary_v2 as hp

from tests.tblogs import Run, write_config, write_run

LAYOUTS = ("per_experiment", "union_run", "root_union", "none")
UNION_RUN_PREFIX = ".hparams_lab-config-"

COMMON_METRICS = {
    ("", "best_val_accuracy"),
    ("train", "epoch_accuracy"), ("train", "epoch_loss"),
    ("validation", "epoch_accuracy"), ("validation", "epoch_loss"),
}
METRICS = {
    "expA": COMMON_METRICS | {("", "final_val_loss")},
    "expB": COMMON_METRICS | {("", "best_val_auc")},
}
HPARAMS = {
    "expA": [hp.HParam("units", hp.Discrete([16, 32])),
             hp.HParam("optimizer", hp.Discrete(["adam", "sgd"]))],
    "expB": [hp.HParam("filters", hp.Discrete([8, 16])),
             hp.HParam("dropout", hp.RealInterval(0.0, 0.5))],
}


def _epochs(i: int) -> dict[str, dict[str, list[float]]]:
    return {
        "train": {"epoch_accuracy": [0.5 + i / 100, 0.6 + i / 100],
                  "epoch_loss": [1.0 - i / 100, 0.8 - i / 100]},
        "validation": {"epoch_accuracy": [0.45 + i / 100, 0.55 + i / 100],
                       "epoch_loss": [1.1 - i / 100, 0.9 - i / 100]},
    }


RUNS = {
    "expA": [
        Run("a1", {"units": 16, "optimizer": "adam"}, group="ga1",
            root={"best_val_accuracy": 0.71, "final_val_loss": 0.91}, epochs=_epochs(1)),
        Run("a2", {"units": 32, "optimizer": "sgd"}, group="ga2",
            root={"best_val_accuracy": 0.72, "final_val_loss": 0.92}, epochs=_epochs(2)),
    ],
    "expB": [
        Run("b1", {"filters": 8, "dropout": 0.1}, group="gb1",
            root={"best_val_accuracy": 0.81, "best_val_auc": 0.93}, epochs=_epochs(3)),
        Run("b2", {"filters": 16, "dropout": 0.3}, group="gb2",
            root={"best_val_accuracy": 0.82, "best_val_auc": 0.94}, epochs=_epochs(4)),
    ],
}


def metric(group: str, tag: str) -> hp.Metric:
    return hp.Metric(tag, group=group or None)


def write_layout(logs, layout: str, experiments=("expA", "expB"), config_number: int = 0) -> Path:
    """Write `experiments` under `logs` with the config placed per `layout`.

    Called again with more experiments, the union config is replaced as hparams_lab
    replaces it: "union_run" writes run `config_number` and removes the others,
    "root_union" writes a new file at the root and removes the old one.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: allowed are {', '.join(LAYOUTS)}")
    logs = Path(logs)
    for exp in experiments:
        if (logs / exp).exists():
            continue
        for run in RUNS[exp]:
            write_run(logs / exp, run)
        if layout == "per_experiment":
            write_config(logs / exp, HPARAMS[exp], [metric(*m) for m in sorted(METRICS[exp])])
    hparams = [h for exp in experiments for h in HPARAMS[exp]]
    metrics = [metric(*m) for m in sorted(set().union(*(METRICS[exp] for exp in experiments)))]
    if layout == "union_run":
        old = list(logs.glob(f"{UNION_RUN_PREFIX}*"))
        new = write_config(logs / f"{UNION_RUN_PREFIX}{config_number}", hparams, metrics).parent
        for run in old:
            if run != new:
                shutil.rmtree(run)
    if layout == "root_union":
        old = list(logs.glob("events.out.tfevents.*"))
        write_config(logs, hparams, metrics)
        for path in old:
            path.unlink()
    return logs


def hparam_names_of(exp: str) -> set[str]:
    return {h.name for h in HPARAMS[exp]}


def expected_values(exp: str) -> dict[str, dict[tuple[str, str], float]]:
    """group name -> the metric values TensorBoard should show for it."""
    return {run.group: run.last_values() for run in RUNS[exp]}
