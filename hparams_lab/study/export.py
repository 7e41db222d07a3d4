"""The study's model out of its logs: ``python run.py export LOGDIR/EXPERIMENT --output model.keras``.

Copies the best (or a named) trial's kept ``model.keras`` (``--keep-best``;
``store.kept``), or with ``retrain`` trains that trial again from its recorded settings
on the training and validation data together, for the epochs at which its metric was
best (``training.refit``), and saves that. Beside the model, a JSON sidecar
(``model.json`` for ``model.keras``) says what it is: the trial's hparams and metrics,
which epoch's weights, the data source, seeds, versions and commands.

Copying reads only JSON and copies a file: no TensorFlow, nothing the logs name is
run. Retraining imports what the experiment used under rerun's trust rules
(``study.trust``: a model or data function the logs name runs only on the user's say-so).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hparams_lab.core import metrics as m
from hparams_lab.core.errors import UserError
from hparams_lab.core.trial import TrialResult
from hparams_lab.store import resume
from hparams_lab.store.experiment import FILENAME as EXPERIMENT_FILE
from hparams_lab.store.experiment import ExperimentRecord
from hparams_lab.store.jsonfile import read_json_object
from hparams_lab.store.kept import MODEL_FILE, MODEL_INFO, has_model
from hparams_lab.study import trust


@dataclass(frozen=True)
class Exported:
    path: Path  # the .keras file
    sidecar: Path  # its JSON description
    trial: TrialResult
    retrained: bool
    info: dict[str, Any]


class StudyTrial(TrialResult):
    """A study's trial (``StudyResult.best``), with its kept model at hand."""

    def load_model(self) -> Any:
        """The trial's kept model (``--keep-best``), loaded with Keras (safe mode: no code from the file)."""
        if not has_model(self.run_dir):
            raise UserError(_not_kept(self))
        from hparams_lab.training.saving import load_model

        return load_model(self.run_dir / MODEL_FILE)

    def export(self, output: str | os.PathLike, *, retrain: bool = False, **options: Any) -> Exported:
        """Like ``python run.py export EXPERIMENT --trial ID``; see ``export``."""
        return export(self.run_dir.parent, output, trial=self.trial.id, retrain=retrain, **options)


def export(experiment: str | os.PathLike, output: str | os.PathLike, *, trial: str | None = None,
           retrain: bool = False, given: Mapping[str, str | None] | None = None,
           confirm: trust.Confirm | None = None, command: str = "") -> Exported:
    """Writes the best (or ``trial``'s) model of ``experiment`` to ``output`` (a .keras path) and its sidecar.

    ``given`` / ``confirm``: for ``retrain``, what the user named again or agreed to
    (as for rerun: ``{"model": ..., "data": ...}``). UserError for anything unusable,
    before anything is written.
    """
    experiment_dir = Path(experiment)
    output = Path(output)
    if output.suffix != ".keras":
        raise UserError(f"--output {str(output)!r} must end in .keras (Keras' model format)")
    if output.is_dir():
        raise UserError(f"--output {str(output)!r} is a directory; give a file name ending in .keras")
    record = _read_record(experiment_dir)
    chosen = _chosen(experiment_dir, record, trial)
    sidecar = output.with_suffix(".json")
    info = {"model": output.name, **_description(record, chosen, command)}
    if retrain:
        weights = _retrained(chosen, record, output, given, confirm)
    else:
        if not has_model(chosen.run_dir):
            raise UserError(_not_kept(chosen))
        weights = _kept_info(chosen.run_dir)
        _write_atomic(output, lambda partial: shutil.copyfile(chosen.run_dir / MODEL_FILE, partial))
    info["weights"] = weights
    _write_atomic(sidecar, lambda partial: partial.write_text(json.dumps(info, indent=2, default=str) + "\n"))
    return Exported(output, sidecar, chosen, retrain, info)


def _read_record(experiment_dir: Path) -> ExperimentRecord:
    if not (experiment_dir / EXPERIMENT_FILE).is_file():
        raise UserError(f"{str(experiment_dir)!r} is not an experiment directory: expected LOGDIR/EXPERIMENT "
                        f"holding {EXPERIMENT_FILE}")
    try:
        read_json_object(experiment_dir / EXPERIMENT_FILE)
        record = ExperimentRecord.read(experiment_dir)
    except (TypeError, ValueError) as err:
        raise UserError(f"{str(experiment_dir / EXPERIMENT_FILE)!r} is not a usable experiment record: {err}") from None
    if not isinstance(record.metric, str) or not isinstance(record.settings, dict):
        raise UserError(f"{str(experiment_dir / EXPERIMENT_FILE)!r} is not a usable experiment record: "
                        "no metric or settings")
    return record


def _chosen(experiment_dir: Path, record: ExperimentRecord, trial_id: str | None) -> TrialResult:
    """The named trial's latest successful attempt, or the experiment's best trial by its metric.

    Members of a group (repeats, CV folds) share the group's mean: among the best group
    the member with the best own metric comes first."""
    done = list(resume.scan(experiment_dir).done.values())
    if trial_id is not None:
        for result in done:
            if result.trial.id == trial_id:
                return result
        known = ", ".join(sorted(r.trial.id for r in done)[:8])
        raise UserError(f"no successful trial {trial_id!r} in {str(experiment_dir)!r}"
                        + (f"; successful trials include {known}" if known else ""))
    directions = {m.base_of(record.metric): record.settings["direction"]} if record.settings.get("direction") else {}
    member = m.run_metric(record.metric)
    ranked = m.ranked(m.ranked(done, member, directions), record.metric, directions)
    best = [r for r in ranked if r.metrics.get(record.metric) is not None]
    if record.objectives:  # several objectives: the front's best by the first (never an infeasible trial)
        best = _front(ranked, record)
    if not best:
        raise UserError(f"experiment {str(experiment_dir)!r} has no successful trial with {record.metric} to export")
    # Tied with the best, the trial the study kept a model of: the keeper keeps the first to
    # reach a value (a tie does not displace it), the scan here goes by run directory name.
    key = m.sort_key(record.metric, directions)
    tied = [r for r in best if key(r.metrics) == key(best[0].metrics)]
    return next((r for r in tied if has_model(r.run_dir)), best[0])


def _front(ranked: list[TrialResult], record: ExperimentRecord) -> list[TrialResult]:
    """The front (core.objectives) of an experiment recorded with several objectives, best first by the first."""
    from hparams_lab.core import objectives as obj

    try:
        objectives = [obj.parse_objective(text) for text in record.objectives]
        constraints = [obj.parse_constraint(text) for text in record.constraints or []]
    except (UserError, TypeError):
        raise UserError("experiment.json's objectives or constraints are not readable; name a trial with --trial") \
            from None
    return obj.front(ranked, objectives, constraints)


def _not_kept(result: TrialResult) -> str:
    why = ""
    info = result.run_dir / MODEL_INFO if result.run_dir is not None else None
    if info is not None and info.is_file():
        try:
            why = f" ({read_json_object(info).get('error')})" if read_json_object(info).get("error") else ""
        except ValueError:
            why = ""
    return (f"trial {result.trial.id} has no kept model{why}: the study kept only its --keep-best K best trials "
            "(default 1; 0 keeps none); export it with --retrain, which trains it again from its settings")


def _kept_info(run_dir: Path) -> dict[str, Any]:
    try:
        info = read_json_object(run_dir / MODEL_INFO)
    except (OSError, ValueError):
        return {"from": "the study's kept model"}
    return {"from": "the study's kept model", **{k: info[k] for k in ("epoch", "weights", "monitor", "validation")
                                                  if k in info}}


def _description(record: ExperimentRecord, result: TrialResult, command: str) -> dict[str, Any]:
    return {
        "experiment": record.name,
        "trial": result.trial.id,
        "run_dir": str(result.run_dir),
        "hparams": result.trial.hparams,
        "metric": record.metric,
        "metrics": result.metrics,
        "epochs": result.epochs,
        "seed": result.trial.seed,
        "experiment_seed": record.seed,
        "data": record.data or {"name": record.dataset},
        "task": record.settings.get("task"),
        "classes": record.classes,
        "model_builder": record.model,
        "settings": {k: record.settings.get(k) for k in ("epochs", "batch_size", "patience", "loss", "metrics")},
        "versions": record.versions,
        "study_command": record.command,
        "export_command": command,
    }


def _retrained(chosen: TrialResult, record: ExperimentRecord, output: Path,
               given: Mapping[str, str | None] | None, confirm: trust.Confirm | None) -> dict[str, Any]:
    from hparams_lab.study.rerun import plan_rerun, recorded_source

    plan = plan_rerun(chosen.run_dir, given=given, confirm=confirm)  # the trust rules, the data checks
    epochs = _best_epochs(chosen, record)
    from hparams_lab.training.data import load_data
    from hparams_lab.training.fit import TrainSettings
    from hparams_lab.training.refit import refit

    settings = record.settings
    data = load_data(recorded_source(record), seed=record.seed, task=settings.get("task"),
                     targets=tuple((record.data or {}).get("targets") or ()))
    model, samples, test = refit(chosen.trial, data, plan.model, TrainSettings.from_record(settings, record.metric),
                                 epochs)
    _write_atomic(output, lambda partial: model.save(partial))
    out: dict[str, Any] = {"from": "retrained on training + validation data", "epochs": epochs}
    if samples >= 0:
        out["samples"] = samples
    if test is not None:
        out["test"] = test
    return out


def _best_epochs(result: TrialResult, record: ExperimentRecord) -> int:
    """Epochs to train again: up to the best epoch of a best_val_ metric (from the run's own
    per-epoch scalars, read as review reads them), else all the trial trained."""
    member = m.run_metric(record.metric)
    if not member.startswith("best_val_") or result.run_dir is None:
        return max(result.epochs, 1)
    from hparams_lab.review.results import load

    tag = f"validation/epoch_{m.base_of(member)}"
    for run in load(result.run_dir):
        if tag in run.best:
            return int(run.best[tag]["step"]) + 1
    return max(result.epochs, 1)


def _write_atomic(path: Path, write) -> None:
    """``write(partial)`` then one rename: the output is whole or absent, never half-written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {str(path.parent)!r} for the output ({err.strerror})") from None
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        write(partial)
        os.replace(partial, path)
    except OSError as err:
        raise UserError(f"cannot write {str(path)!r} ({err.strerror})") from None
    finally:
        if partial.exists():
            partial.unlink()


def as_study_trial(result: TrialResult | None) -> StudyTrial | None:
    if result is None:
        return None
    return StudyTrial(**{f.name: getattr(result, f.name) for f in dataclasses.fields(TrialResult)})


__all__ = ["Exported", "StudyTrial", "as_study_trial", "export"]
