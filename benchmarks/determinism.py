"""What TensorFlow's op determinism costs: one default digits trial, with and without it.

Each side runs in its own fresh process (determinism is process-wide and cannot be
turned off again) and trains the default space's first random trial (seed 0) a few
times; the sides alternate so machine noise hits both.

    python benchmarks/determinism.py                  # 20 epochs, 3 fits per process, 4 rounds
    python benchmarks/determinism.py --rounds 2 --fits 2

Prints every fit's wall time and the final val_accuracy, then each side's best and
median. Run by hand; the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fits(deterministic: bool, n: int, epochs: int) -> None:
    """Child process: n fits of one trial, one line each: seconds and final val_accuracy."""
    sys.path.insert(0, str(ROOT))
    from hparams_lab.training import fit as training
    from hparams_lab.training.data import load_dataset
    from hparams_lab.training.models import resolve_model
    from hparams_lab.search.random import random_search
    from hparams_lab.study.run import DEFAULT_SPACE

    if not deterministic:
        training._enable_determinism = lambda: None  # the "before" side: import_keras skips it
    training.import_keras()
    data, mlp = load_dataset("digits", seed=0), resolve_model("mlp")
    trial = random_search(DEFAULT_SPACE, seed=0, trials=1)[0]
    for _ in range(n):
        started = time.perf_counter()
        outcome = training.train_trial(trial, data, mlp, training.TrainSettings(epochs=epochs))
        print(f"{time.perf_counter() - started:.3f} {outcome.history['val_accuracy'][-1]!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--fits", type=int, default=3, help="fits per process")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fits(args.child == "on", args.fits, args.epochs)
        return
    times: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(1, args.rounds + 1):
        for side in ("off", "on"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", side, "--fits", str(args.fits), "--epochs", str(args.epochs)],
                capture_output=True, text=True, check=True,
            ).stdout.split()
            seconds, accuracies = [float(s) for s in out[::2]], out[1::2]
            times[side] += seconds
            print(f"round {round_} determinism {side:>3}: {' '.join(f'{s:.2f}s' for s in seconds)}  "
                  f"final val_accuracy {' '.join(accuracies)}")
    for side, seconds in times.items():
        print(f"determinism {side:>3}: best {min(seconds):.2f}s, median {statistics.median(seconds):.2f}s")


if __name__ == "__main__":
    main()
