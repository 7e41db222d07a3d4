"""A trial's model saved for ``--keep-best``: a ``.keras`` file and what its weights scored.

When the study ranks by a ``best_val_*`` metric, the weights kept are those of the best
epoch by that metric's per-epoch twin (what the leaderboard shows, and what early
stopping with best weights restores); otherwise the model as training left it. A
hyperband segment saves its last epoch's weights. ``model.json`` beside the file says
which epoch (counted from 1) and the validation metrics of that epoch, so that
``model.evaluate`` on the validation data can be checked against it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from hparams_lab.core.errors import one_line
from hparams_lab.core.metrics import summarize
from hparams_lab.store.kept import MODEL_FILE, MODEL_INFO, bar_of


def best_epoch_tracker(keras: Any, monitor: str, maximize: bool, start: int = 0) -> Any:
    """A callback holding a copy of the weights of the best epoch so far by ``monitor``.

    Strictly better only, as ``core.metrics.best``: the earliest epoch wins a tie, a NaN
    never counts. The copy is taken on improvement only (one host copy of the weights).
    """

    class BestEpoch(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.weights: list | None = None
            self.epoch: int | None = None  # 1-based
            self.logs: dict[str, float] = {}
            self._best = math.nan
            self._seen = 0

        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            self._seen += 1
            try:
                value = float((logs or {}).get(monitor, math.nan))
            except (TypeError, ValueError):
                return
            if not math.isfinite(value):
                return
            if math.isnan(self._best) or (value > self._best if maximize else value < self._best):
                self._best = value
                self.weights = self.model.get_weights()  # new numpy arrays: copies on the host
                self.epoch = start + self._seen
                self.logs = _numbers(logs)

    return BestEpoch()


def worth_keeping(run_dir: Path, history: Mapping[str, list[float]], test: Mapping[str, float] | None) -> bool:
    """Whether a trial's model could be among the K kept: it must beat the K-th best so far.

    Skips writing (~70 ms for the default MLP) the models that would be deleted at once.
    Another worker's result may raise the bar meanwhile: then the keeper deletes it."""
    bar = bar_of(run_dir.parent)
    if bar is None:
        return True
    metric, value, maximize = bar
    score = summarize(history, test).get(metric)
    if score is None or not math.isfinite(score):
        return False
    return score > value if maximize else score < value


def save_model(model: Any, run_dir: Path, *, epoch: int, logs: Mapping[str, Any], weights: str,
               monitor: str | None = None) -> None:
    """``model.keras`` and ``model.json`` in ``run_dir``, each written whole or not at all."""
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = run_dir / f".partial-{os.getpid()}-{MODEL_FILE}"  # Keras wants the .keras suffix
    try:
        model.save(partial)
        os.replace(partial, run_dir / MODEL_FILE)
    finally:
        partial.unlink(missing_ok=True)
    info = {"file": MODEL_FILE, "epoch": epoch, "weights": weights,
            "validation": {name: value for name, value in _numbers(logs).items() if name.startswith("val_")}}
    if monitor is not None:
        info["monitor"] = monitor
    tmp = run_dir / f".partial-{os.getpid()}-{MODEL_INFO}"
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, run_dir / MODEL_INFO)


def load_model(path: Path) -> Any:
    """A kept model, loaded by Keras in safe mode (a file cannot make it run code)."""
    from hparams_lab.training.fit import import_keras

    return import_keras().saving.load_model(path, safe_mode=True)


def unsaved(run_dir: Path, error: BaseException) -> None:
    """Says in ``model.json`` why there is no ``model.keras`` (export shows it)."""
    for leftover in run_dir.glob(f".partial-*-{MODEL_FILE}"):
        leftover.unlink(missing_ok=True)
    tmp = run_dir / f".partial-{os.getpid()}-{MODEL_INFO}"
    tmp.write_text(json.dumps({"error": f"Keras could not save the model: {one_line(error)}"}, indent=2) + "\n")
    os.replace(tmp, run_dir / MODEL_INFO)


def _numbers(logs: Mapping[str, Any] | None) -> dict[str, float]:
    out = {}
    for name, value in (logs or {}).items():
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            continue
    return out
