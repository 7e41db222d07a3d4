"""hparams_lab's overhead against a bare, hand-written loop in the tutorials' style.

Both sides train the same trials (same hparams, seeds, data split and model
builder) sequentially; each side runs in its own fresh process so both pay the
TensorFlow import, and the sides alternate so machine noise hits both.

    python benchmarks/overhead.py                 # 8 random trials x 10 epochs, 3 rounds
    python benchmarks/overhead.py --trials 4 --epochs 5 --rounds 2

Prints each round's wall times, the best of each side and the ratio lab / bare.
Run by hand; the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bare_loop(trials: int, epochs: int, seed: int, logdir: str) -> None:
    """The seeds' loop: for each trial, hp.hparams, fit, tf.summary.scalar."""
    import keras
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    from hparams_lab.training.data import load_dataset
    from hparams_lab.training.models import build_model, build_optimizer, resolve_model
    from hparams_lab.search.random import random_search
    from hparams_lab.study.run import DEFAULT_SPACE

    data = load_dataset("digits", seed=seed)
    mlp = resolve_model("mlp")
    for i, trial in enumerate(random_search(DEFAULT_SPACE, seed=seed, trials=trials)):
        keras.backend.clear_session()
        keras.utils.set_random_seed(trial.seed)
        with tf.summary.create_file_writer(f"{logdir}/run-{i}").as_default():
            hp.hparams(trial.hparams)
            model = build_model(mlp, trial.hparams, data.input_shape, data.n_classes)
            model.compile(
                optimizer=build_optimizer(trial.hparams), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
            )
            history = model.fit(
                data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                epochs=epochs, batch_size=64, verbose=0,
            )
            tf.summary.scalar("accuracy", max(history.history["val_accuracy"]), step=1)


def lab(trials: int, epochs: int, seed: int, logdir: str) -> None:
    from hparams_lab.study.run import run_study

    run_study(strategy="random", trials=trials, epochs=epochs, seed=seed, logdir=logdir, experiment="bench")


def timed_child(mode: str, trials: int, epochs: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as logdir:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--child", mode, "--trials", str(trials), "--epochs", str(epochs),
             "--seed", str(seed), "--logdir", logdir],
            cwd=ROOT, check=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["bare", "lab"])
    parser.add_argument("--logdir")
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        (bare_loop if args.child == "bare" else lab)(args.trials, args.epochs, args.seed, args.logdir)
        return

    times: dict[str, list[float]] = {"bare": [], "lab": []}
    for round_ in range(1, args.rounds + 1):
        for mode in ("bare", "lab"):
            times[mode].append(timed_child(mode, args.trials, args.epochs, args.seed))
        print(f"round {round_}: bare {times['bare'][-1]:.2f}s  hparams_lab {times['lab'][-1]:.2f}s", flush=True)
    bare, lab_ = min(times["bare"]), min(times["lab"])
    print(f"best of {args.rounds}: bare {bare:.2f}s  hparams_lab {lab_:.2f}s  ratio {lab_ / bare:.3f}")


if __name__ == "__main__":
    main()
