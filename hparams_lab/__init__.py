"""hparams_lab: hyperparameter studies for Keras, logged for TensorBoard's HParams dashboard.

    from hparams_lab import Space, HParam, Discrete, RealInterval, run_study
"""

from hparams_lab.core.space import Discrete, HParam, IntInterval, RealInterval, Space

__version__ = "0.1.0"
__all__ = ["Discrete", "HParam", "IntInterval", "RealInterval", "Space", "run_study", "StudyResult"]


def __getattr__(name: str):
    # The study machinery (numpy, scikit-learn) loads on first use, not on `import hparams_lab`.
    if name in ("run_study", "StudyResult"):
        from hparams_lab.study import run as study

        return getattr(study, name)
    raise AttributeError(f"module 'hparams_lab' has no attribute {name!r}")
