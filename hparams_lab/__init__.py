"""hparams_lab: hyperparameter studies for Keras, logged for TensorBoard's HParams dashboard.

    from hparams_lab import Space, HParam, Discrete, RealInterval, run_study
"""

from hparams_lab.core.errors import UserError
from hparams_lab.core.space import Discrete, HParam, IntInterval, RealInterval, Space

__version__ = "0.1.0"
__all__ = ["Discrete", "HParam", "IntInterval", "RealInterval", "Space", "StudyConfig", "StudyResult", "UserError",
           "run_study"]

_LAZY = {"run_study": "hparams_lab.study.run", "StudyResult": "hparams_lab.study.run",
         "StudyConfig": "hparams_lab.study.config"}


def __getattr__(name: str):
    # The study machinery (numpy, scikit-learn) loads on first use, not on `import hparams_lab`.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hparams_lab' has no attribute {name!r}")
