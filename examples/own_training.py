"""Your own data pipeline, callbacks and fit, as hparams_lab calls them (README: "tf.data, a
callback, a fit of your own"). From the checkout's root:

    python run.py --data examples.own_training:data --callbacks examples.own_training:callbacks \
        --fit examples.own_training:fit --experiment own-training
"""

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_breast_cancer


def data():
    """--data: called once per process (once per worker), returns (train, validation) Datasets."""
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype("float32")
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order].astype("float32")
    train = tf.data.Dataset.from_tensor_slices((x[:455], y[:455])).shuffle(455, seed=0).batch(32)
    validation = tf.data.Dataset.from_tensor_slices((x[455:], y[455:])).batch(256)
    return train, validation.cache()


def callbacks(hparams, run_dir):
    """--callbacks: beside hparams_lab's own; run_dir is the trial's run directory."""
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2),
            keras.callbacks.CSVLogger(str(run_dir / "epochs.csv"))]


def fit(hparams, model, data, callbacks):
    """--fit: trains the compiled model; the callbacks it gets must go on to model.fit."""
    malignant = 1.0 / 0.37  # weigh the rarer class (37% of the samples) up
    return model.fit(data.x_train, validation_data=data.x_val, epochs=hparams.get("epochs", 20),
                     class_weight={0: malignant, 1: 1.0}, callbacks=callbacks, verbose=0)
