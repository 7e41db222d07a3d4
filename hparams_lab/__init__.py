"""hparams_lab: hyperparameter studies for Keras, logged for TensorBoard's HParams dashboard."""

__version__ = "0.1.0"
