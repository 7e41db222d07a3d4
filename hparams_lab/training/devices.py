"""A worker's GPU, once TensorFlow is loaded: its memory cap (or memory growth) and mixed precision.

execution.devices chose the device (``CUDA_VISIBLE_DEVICES``, set before TensorFlow
started) and the cap; this applies them before the first op, as TensorFlow requires.
By default a process that touches a GPU takes all its memory, so two trials on one
GPU would fail: with a cap each gets its share, without one each grows as it needs.
"""

from __future__ import annotations

import os

MEMORY_ENV = "HPARAMS_LAB_GPU_MEMORY_MB"  # a worker's cap in MB, set by execution.devices
MIXED_ENV = "HPARAMS_LAB_MIXED_PRECISION"  # "1": Keras' mixed_float16 policy on a GPU


def configure_gpu() -> list[str]:
    """Applies the cap and the precision policy; returns the GPUs this process sees. Safe on
    a CPU-only machine (nothing to do) and when TensorFlow already initialised its GPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    cap = os.environ.get(MEMORY_ENV)
    for gpu in gpus:
        try:
            if cap:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(cap))])
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised (a notebook that used the GPU first): it keeps its setting
    if gpus and os.environ.get(MIXED_ENV) == "1":
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    return [gpu.name for gpu in gpus]
