"""What a study is asked to do: one frozen ``StudyConfig``, built by the CLI and by ``run_study``.

Its fields are the CLI's study options, with the same names and defaults. It checks
nothing by itself: ``study.checks.prepare`` validates a config in one place, before
anything is written.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from hparams_lab.core.space import Discrete, HParam, RealInterval, Space

# The embedded default: the seeds' units / learning rate / optimizer / extra layer /
# dropout, small enough that its 32-point grid trains in under 3 minutes on 2 cores.
DEFAULT_SPACE = Space(
    (
        HParam("units", Discrete([32, 128]), "hidden units per layer"),
        HParam("learning_rate", RealInterval(1e-3, 1e-2, log=True, points=2), "optimizer step size"),
        HParam("optimizer", Discrete(["adam", "sgd"])),
        HParam("extra_layer", Discrete([False, True]), "one more hidden layer"),
        HParam("dropout", RealInterval(0.0, 0.2, points=2), "dropout after each hidden layer"),
    )
)
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class StudyConfig:
    """A study's settings; see ``run_study`` for what each means."""

    space: Space | str | os.PathLike | None = None  # None: the strategy's default space
    strategy: str = "random"
    trials: int | None = None
    seed: int = 0
    # A named data set, an .npz / .csv path, 'module:function', or (API) arrays, a mapping,
    # tf.data Datasets or a function returning them (training.data says which).
    data: Any = "digits"
    targets: tuple[str, ...] = ()  # a CSV's output columns
    task: str | None = None  # None: inferred from the labels (training.data)
    model: str | Callable[..., Any] = "mlp"
    loss: Any = None  # a Keras loss name or object; None: the task's
    metrics: str | tuple[Any, ...] | None = None  # Keras metric names ("auc,precision") or objects
    direction: str | None = None  # of --metric when its name does not say: "max" or "min"
    callbacks: str | Callable[..., Any] | None = None  # (hparams[, run_dir]) -> [keras callbacks]
    fit: str | Callable[..., Any] | None = None  # (hparams, model, data, callbacks) -> History
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    patience: int | None = None
    max_epochs: int | None = None
    repeats: int = 1
    cv: int | None = None
    workers: int = 1
    scheduler: str | None = None
    gpus: str | None = None  # "all" (None: all there are), "none", or indices "0,1,3" (execution.devices)
    per_gpu: int = 1  # trials sharing each GPU, each capped at about 1/K of its memory
    mixed_precision: bool = False  # Keras' mixed_float16 policy on GPUs
    # None: the default for the grouping (repeats, cv). Several ("best_val_accuracy", "params:min"):
    # objectives (core.objectives), the first ranks hyperband, the pruner, early stopping, --keep-best.
    metric: str | tuple[str, ...] | None = None
    constraints: tuple[str, ...] = ()  # "params<=50000": trials breaking one are infeasible (core.objectives)
    logdir: str | os.PathLike = "logs"
    experiment: str | None = None  # None: a timestamp and the process id
    overwrite: bool = False
    enqueue: str | os.PathLike | Sequence[Mapping[str, Any]] | None = None  # points of one's own, run first
    # Budgets and retries: not settings of the experiment (a resume may change them).
    timeout: str | float | None = None  # "30m", "2h", "90s" or seconds: no new trial starts after it
    timeout_kill: bool = False  # at the timeout, stop running trials too (FAILURE "timeout", rerun on resume)
    max_epochs_total: int | None = None  # epochs trained in all, after which no new trial starts
    retries: int = 0  # more attempts for a trial that raised (not NaN loss, not a user's error)
    max_failures: int | None = None  # stop after this many FAILUREs in a row
    keep_best: int = 1  # the K best trials' models kept as model.keras in their run dirs (0: none)
    # Strategy-specific options (search.registry says which strategy takes which).
    refine_from: str | os.PathLike | None = None
    from_metric: str | None = None  # the metric of --from's logs to learn from (default: the study's)
    top_k: int | None = None
    points: int | None = None
    widen: bool = False  # refine: widen the domains whose best trials sit at an edge first
    base_hparams: Mapping[str, Any] | str | None = None
    factor: int | None = None
    pruner: str | None = None
    command: str = ""  # the command line, recorded in experiment.json

    @classmethod
    def of(cls, **options: Any) -> "StudyConfig":
        """A config from keyword options; a misspelt one is a TypeError naming it, as for a function."""
        if "dataset" in options:  # the option's earlier name
            if "data" in options:
                raise TypeError("give data= or its old name dataset=, not both")
            options["data"] = options.pop("dataset")
        if isinstance(options.get("targets"), str):
            options["targets"] = (options["targets"],)
        elif options.get("targets") is not None:
            options["targets"] = tuple(options["targets"])
        if "constraint" in options:  # the CLI's flag name
            options.setdefault("constraints", options.pop("constraint"))
        if isinstance(options.get("constraints"), str):
            options["constraints"] = (options["constraints"],)
        elif options.get("constraints") is not None:
            options["constraints"] = tuple(options["constraints"])
        else:
            options.pop("constraints", None)
        if options.get("metric") is not None and not isinstance(options["metric"], str):
            metrics = tuple(options["metric"])  # --metric repeated, or a list: one is a plain --metric
            options["metric"] = metrics[0] if len(metrics) == 1 else metrics or None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown study option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**options)

    @property
    def strategy_options(self) -> dict[str, Any]:
        """The strategy-specific options, by search.registry's keywords."""
        return {"refine_from": self.refine_from, "from_metric": self.from_metric, "top_k": self.top_k,
                "points": self.points, "widen": self.widen or None,
                "base": self.base_hparams, "factor": self.factor, "pruner": self.pruner}

    @property
    def metric_texts(self) -> tuple[str, ...]:
        """--metric as given: () for the default, one or several NAME[:min|max]."""
        if self.metric is None:
            return ()
        return (self.metric,) if isinstance(self.metric, str) else tuple(self.metric)

    @property
    def sent_by(self) -> str | None:
        """The flag that sends trials to other processes, if any."""
        if self.scheduler is not None:
            return "--scheduler"
        return "--workers" if self.workers > 1 else None
