"""hparams_lab: hyperparameter studies for Keras, logged for TensorBoard's HParams dashboard.

    from hparams_lab import Space, HParam, Discrete, RealInterval, run_study
"""

from hparams_lab.core.errors import UserError

__version__ = "0.1.0"
__all__ = ["Discrete", "HParam", "IntInterval", "RealInterval", "Space", "StudyConfig", "StudyResult", "UserError",
           "export", "run_study"]

_LAZY = {"run_study": "hparams_lab.study.run", "StudyResult": "hparams_lab.study.run",
         "StudyConfig": "hparams_lab.study.config", "export": "hparams_lab.study.export",
         **dict.fromkeys(("Discrete", "HParam", "IntInterval", "RealInterval", "Space"), "hparams_lab.core.space")}


def __getattr__(name: str):
    # The study machinery (numpy, scikit-learn) loads on first use, not on `import hparams_lab`;
    # so does the space vocabulary, which every submodule's import (`review` too) would pay for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hparams_lab' has no attribute {name!r}")
