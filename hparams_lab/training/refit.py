"""A trial trained once more, for ``export --retrain``: on the training and validation data together.

Same model, hparams, compile and seed as the trial, for a given number of epochs (the
epoch at which its metric was best), with plain ``model.fit`` and no validation (there
is no held-out data left); the study's callbacks and a ``--fit`` of the user's are not
used. What is held out for a final check is the data set's test split, if it has one.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from hparams_lab.core.trial import Trial
from hparams_lab.training.data import Dataset
from hparams_lab.training.fit import TrainSettings, _held_stderr, _not_noise, compiled_model, import_keras
from hparams_lab.training.models import ModelSpec


def refit(trial: Trial, dataset: Dataset, model_spec: ModelSpec, settings: TrainSettings,
          epochs: int) -> tuple[Any, int, dict[str, float] | None]:
    """(the trained model, the training samples it saw, its test metrics or None)."""
    keras = import_keras()
    keras.backend.clear_session()
    keras.utils.set_random_seed(trial.seed)
    hparams = dict(trial.hparams)
    batch_size = int(hparams.get("batch_size", settings.batch_size))
    with _held_stderr(keep=_not_noise):
        model = compiled_model(hparams, dataset, model_spec, settings)
        if dataset.batched:
            both = dataset.x_train.concatenate(dataset.x_val)
            model.fit(both, epochs=epochs, shuffle=False, verbose=0)
            samples = -1  # a tf.data pipeline's size is not known without a pass over it
            test = (model.evaluate(dataset.x_test, verbose=0, return_dict=True)
                    if dataset.x_test is not None else None)
        else:
            x, y = _joined(dataset.x_train, dataset.x_val), _joined(dataset.y_train, dataset.y_val)
            model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
            samples = _length(x)
            test = (model.evaluate(dataset.x_test, dataset.y_test, batch_size=512, verbose=0, return_dict=True)
                    if dataset.x_test is not None else None)
    return model, samples, None if test is None else {name: float(v) for name, v in test.items()}


def _joined(first: Any, second: Any) -> Any:
    if isinstance(first, Mapping):
        return {name: np.concatenate([first[name], second[name]]) for name in first}
    return np.concatenate([first, second])


def _length(arrays: Any) -> int:
    if isinstance(arrays, Mapping):
        return len(next(iter(arrays.values())))
    return len(arrays)
