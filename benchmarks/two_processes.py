"""Is it the machine? One plain Keras training process alone, then two side by side.

    python benchmarks/two_processes.py            # 5 trials per process

No hparams_lab study code: each process trains the default MLP (units 128, adam,
extra layer) on digits for 20 epochs, 5 times, with one TensorFlow thread, as a
`--workers 2` worker does, and prints its per-trial times. If two processes side by
side are each slower than one alone, the machine's second core does not double the
throughput, whatever the study runner does. Run by hand; numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(trials: int) -> None:
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = "1"
    sys.path.insert(0, str(ROOT))
    from hparams_lab.training.data import load_dataset
    from hparams_lab.training.models import build_model, build_optimizer, resolve_model
    from hparams_lab.training.fit import import_keras

    keras = import_keras()
    data, spec = load_dataset("digits", seed=0), resolve_model("mlp")
    hparams = {"units": 128, "optimizer": "adam", "learning_rate": 0.003, "extra_layer": True, "dropout": 0.1}
    times = []
    for _ in range(trials):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        started = time.perf_counter()
        model = build_model(spec, hparams, data.input_shape, data.n_classes)
        model.compile(optimizer=build_optimizer(hparams), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], steps_per_execution=32)
        model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=20,
                  batch_size=64, verbose=0)
        times.append(time.perf_counter() - started)
    print(" ".join(f"{t:.2f}" for t in times))


def main(trials: int = 5) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, __file__, "--child", str(trials)]
    alone = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()
    print(f"alone:        {alone} s per trial")
    pair = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for i, process in enumerate(pair, start=1):
        print(f"side by side: {process.communicate()[0].strip()} s per trial (process {i})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]))
    else:
        main()
