"""The train function's contract, between one attempt (execution.attempt) and whatever trains.

``train(trial, on_epoch, run_dir=)`` trains one trial and returns an object with
``history`` ({metric: [per-epoch values]}), ``test`` (metrics or None) and ``epochs``;
``run_dir`` is the attempt's run directory (a user's callback may want it); a
hyperband segment is also given ``start=``, ``stop=`` and ``checkpoint=``. The
Keras trainer (training.fit.trainer) is one; tests pass fakes.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

EpochCallback = Callable[[int, Mapping[str, float]], bool | None]  # True: stop training now


# Called after each epoch with its logs; True prunes the trial (bayes --pruner): training
# stops and the trial is PRUNED, keeping the metrics of the epochs it trained.
PruneCheck = Callable[[int, Mapping[str, float]], bool]


TrainFn = Callable[..., Any]  # train(trial, on_epoch, run_dir=), and for segments start=, stop=, checkpoint=
