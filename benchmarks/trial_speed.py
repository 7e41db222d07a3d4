"""Trial speed (issue 14): hparams_lab's trials against a pure in-graph loop, and against main.

    python benchmarks/trial_speed.py trials [--model mlp|cnn] [--seeds 5] [--rounds 2] [--base DIR]
    python benchmarks/trial_speed.py study [--strategy random|grid] [--rounds 2] [--base DIR]
    python benchmarks/trial_speed.py profile [--model mlp] [--base DIR]

``trials``: the same model (hparams_lab's own builder, the default MLP 2 x 128 with
dropout and Adam, or the ``cnn``) on digits, 20 epochs of batch 64, one trial per seed,
every seed in one fresh process per side. Sides: ``graph``, a hand-written training
loop in this file (one tf.function per epoch gathering the batches from constant tensors,
the loss and Adam written out, validation accuracy in graph), timed from the model's
build to its last epoch, trace included; ``lab``, this checkout's run_study, each trial's
``wall_time_s`` from its trial.json; ``base``, the same study run by the checkout in
``--base`` (main before issue 14: ``git worktree add /tmp/main-base f476b4c``). Sides
alternate, round after round, so machine noise hits them all. Prints per-trial times
(median, first), the ratio to ``graph`` and the mean final val_accuracy over the seeds.

``study``: ``python run.py --strategy S`` whole (TensorFlow import included), this
checkout against ``--base``, alternating; wall time, trials, best val_accuracy.

``profile``: cProfile of one study of 3 trials (``--strategy random``) for each checkout;
the top functions by cumulative time.

Run by hand; the numbers go to BENCHMARKS.md. Tests never assert timings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, BATCH = 20, 64
HPARAMS = {
    "mlp": {"units": 128, "extra_layer": True, "dropout": 0.2, "optimizer": "adam", "learning_rate": 0.001},
    "cnn": {"units": 64, "filters": 16, "dropout": 0.2, "optimizer": "adam", "learning_rate": 0.001},
}


def graph_trials(model_name: str, seeds: list[int]) -> list[dict]:
    """The pure in-graph loop, one trial per seed: [{wall_s, val_accuracy}]."""
    import numpy as np

    from hparams_lab.training.fit import import_keras
    from hparams_lab.training.data import load_data
    from hparams_lab.training.models import build_model, resolve_model

    keras = import_keras()  # op determinism on, as hparams_lab has it
    import tensorflow as tf

    data = load_data("digits", seed=0)
    spec, hparams = resolve_model(model_name), HPARAMS[model_name]
    x, y = tf.constant(data.x_train), tf.constant(data.y_train)
    x_val, y_val = tf.constant(data.x_val), tf.constant(data.y_val)
    n, steps = len(data.x_train), math.ceil(len(data.x_train) / BATCH)
    out = []
    for seed in seeds:
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        started = time.perf_counter()
        model = build_model(spec, hparams, data.input_shape, data.n_outputs, data.task)
        weights = model.trainable_variables
        moments = [(tf.Variable(tf.zeros_like(w)), tf.Variable(tf.zeros_like(w))) for w in weights]
        t = tf.Variable(0.0)
        lr, b1, b2, eps = hparams["learning_rate"], 0.9, 0.999, 1e-7

        @tf.function
        def epoch(order):
            def body(i):
                index = order[i * BATCH:(i + 1) * BATCH]
                xb, yb = tf.gather(x, index), tf.gather(y, index)
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(yb, model(xb, training=True)))
                grads = tape.gradient(loss, weights)
                t.assign_add(1.0)
                alpha = lr * tf.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                for w, g, (m, v) in zip(weights, grads, moments):
                    m.assign_add((g - m) * (1 - b1))
                    v.assign_add((g * g - v) * (1 - b2))
                    w.assign_sub(alpha * m / (tf.sqrt(v) + eps))
                return (i + 1,)

            tf.while_loop(lambda i: i < steps, body, (tf.constant(0),))
            predicted = tf.argmax(model(x_val, training=False), axis=-1)
            return tf.reduce_mean(tf.cast(tf.equal(predicted, y_val), tf.float32))

        for e in range(EPOCHS):
            accuracy = epoch(tf.constant(np.random.default_rng([seed, e]).permutation(n).astype(np.int32)))
        accuracy = float(accuracy)
        out.append({"wall_s": time.perf_counter() - started, "val_accuracy": accuracy})
    return out


def lab_trials(model_name: str, seeds: list[int], logdir: str) -> list[dict]:
    """hparams_lab's study of the one point, a trial per seed (repeats): [{wall_s, val_accuracy}]."""
    from hparams_lab import Discrete, HParam, Space, run_study

    space = Space([HParam(name, Discrete([value])) for name, value in HPARAMS[model_name].items()])
    out = []
    for seed in seeds:  # one study per seed, in this process: each trial after the first is warm
        run_study(space, strategy="grid", model=model_name, epochs=EPOCHS, seed=seed, logdir=logdir,
                  experiment=f"s{seed}")
        (record,) = [json.loads(p.read_text()) for p in Path(logdir, f"s{seed}").glob("*/trial.json")]
        out.append({"wall_s": record["wall_time_s"], "val_accuracy": record["metrics"]["final_val_accuracy"]})
    return out


def child(side: str, model_name: str, seeds: list[int], base: str | None) -> list[dict]:
    """One side in a fresh process; its per-trial records."""
    path = base if side == "base" else str(ROOT)
    with tempfile.TemporaryDirectory() as logdir:
        done = subprocess.run(
            [sys.executable, __file__, "child", "--side", "graph" if side == "graph" else "lab", "--model",
             model_name, "--seeds", str(len(seeds)), "--logdir", logdir],
            cwd=path, env={**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_trials(args: argparse.Namespace) -> None:
    sides = ["graph", "lab"] + (["base"] if args.base else [])
    seeds = list(range(args.seeds))
    runs: dict[str, list[list[dict]]] = {side: [] for side in sides}
    for round_ in range(1, args.rounds + 1):
        for side in sides:
            runs[side].append(child(side, args.model, seeds, args.base))
            walls = [r["wall_s"] for r in runs[side][-1]]
            print(f"round {round_} {side:5}: per trial {' '.join(f'{w:.2f}' for w in walls)} s", flush=True)
    print(f"\n{args.model}, {len(seeds)} seeds x {args.rounds} rounds, {EPOCHS} epochs of batch {BATCH}:\n")
    print("| side | per trial, median | first trial of a process | / graph (median) | final val_accuracy, mean |")
    print("| --- | --- | --- | --- | --- |")
    graph = statistics.median(r["wall_s"] for run in runs["graph"] for r in run)
    for side in sides:
        walls = [r["wall_s"] for run in runs[side] for r in run]
        first = statistics.median(run[0]["wall_s"] for run in runs[side])
        accuracy = statistics.mean(r["val_accuracy"] for r in runs[side][0])
        print(f"| {side} | {statistics.median(walls):.2f} s | {first:.2f} s | "
              f"{statistics.median(walls) / graph:.2f} | {accuracy:.4f} |")


def study_once(path: str, strategy: str) -> dict:
    with tempfile.TemporaryDirectory() as logdir:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "run.py", "--strategy", strategy, "--logdir", logdir,
                               "--experiment", "e"], cwd=path, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"})
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"failed in {path}:\n{done.stderr[-3000:]}")
        records = [json.loads(p.read_text()) for p in Path(logdir, "e").glob("*/trial.json")]
    metrics = sorted(round(r["metrics"]["best_val_accuracy"], 4) for r in records)
    return {"wall_s": wall, "trials": len(records), "best": metrics[-1], "mean": statistics.mean(metrics),
            "per_trial": statistics.median(r["wall_time_s"] for r in records)}


def compare_studies(args: argparse.Namespace) -> None:
    sides = {"lab": str(ROOT), "base": args.base}
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for round_ in range(1, args.rounds + 1):
        for side, path in sides.items():
            runs[side].append(study_once(path, args.strategy))
            run = runs[side][-1]
            print(f"round {round_} {side}: {run['wall_s']:.1f} s, {run['trials']} trials, best {run['best']:.4f}, "
                  f"mean best_val_accuracy {run['mean']:.4f}, per trial {run['per_trial']:.2f} s", flush=True)
    best = {side: min(run["wall_s"] for run in side_runs) for side, side_runs in runs.items()}
    print(f"\nbest of {args.rounds}: base {best['base']:.1f} s, this checkout {best['lab']:.1f} s: "
          f"{best['base'] / best['lab']:.2f}x faster")


def profile(args: argparse.Namespace) -> None:
    for side, path in {"base": args.base, "lab": str(ROOT)}.items():
        if path is None:
            continue
        with tempfile.TemporaryDirectory() as logdir:
            code = (f"import cProfile, pstats; from hparams_lab.study.run import run_study; "
                    f"cProfile.run(\"run_study(strategy='random', trials=3, model={args.model!r}, logdir={logdir!r}, "
                    f"experiment='p')\", {logdir!r} + '/prof'); "
                    f"pstats.Stats({logdir!r} + '/prof').sort_stats('cumulative').print_stats(40)")
            done = subprocess.run([sys.executable, "-c", code], cwd=path, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"})
        print(f"===== {side} ({path})\n{done.stdout[-12000:]}{done.stderr[-2000:] if done.returncode else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["trials", "study", "profile", "child"])
    parser.add_argument("--model", choices=sorted(HPARAMS), default="mlp")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--base", help="a checkout of main to compare with")
    parser.add_argument("--side", choices=["graph", "lab"])
    parser.add_argument("--logdir")
    args = parser.parse_args()
    if args.part == "child":
        sys.path.insert(0, os.getcwd())
        seeds = list(range(args.seeds))
        records = graph_trials(args.model, seeds) if args.side == "graph" else lab_trials(args.model, seeds, args.logdir)
        print(json.dumps(records))
    elif args.part == "trials":
        compare_trials(args)
    elif args.part == "study":
        if not args.base:
            parser.error("study needs --base")
        compare_studies(args)
    else:
        profile(args)


if __name__ == "__main__":
    main()
