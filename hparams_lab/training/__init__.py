"""The only room that runs Keras and TensorFlow: data sets, models, fitting one trial.

Keras is imported inside functions, so validating a data set name or a model's
hparams from here stays cheap; TensorFlow loads only when a trial really trains.
"""
