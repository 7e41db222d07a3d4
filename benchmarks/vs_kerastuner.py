"""hparams_lab against KerasTuner's RandomSearch: same space, data, model, epochs and seed.

KerasTuner runs ``keras_tuner.RandomSearch`` (objective val_accuracy, one execution
per trial) on hparams_lab's default space, building and compiling every model with
hparams_lab's own mlp builder and optimizer, on hparams_lab's digits split, with the
same epochs, batch size (64), per-trial seed and TensorFlow set-up (``import_keras``:
op determinism on). hparams_lab runs ``python run.py`` once per row of LAB_ROWS.
Every side is a fresh process timed whole (TensorFlow import included); within a
round the sides run one after the other, so machine noise hits them all.

    python benchmarks/vs_kerastuner.py                    # 20 trials x 20 epochs, 1 round
    python benchmarks/vs_kerastuner.py --rounds 3
    python benchmarks/vs_kerastuner.py --lab "hyperband=--strategy hyperband"   # one more row

--lab LABEL=ARGS adds a row (or replaces the row of that label). Prints each round,
then a markdown table of the fastest round of each side: wall time, successful trials,
epochs trained (all trials), best val_accuracy, and ratios against KerasTuner.

Still different, by each tool's design: KerasTuner draws its own random points
(oracle seed = --seed, or 1 for seed 0, which KerasTuner reads as "unseeded"), so the
best val_accuracy compares samplers' luck as much as anything; it saves the best
epoch's weights of every trial (checkpoint.weights.h5) where hparams_lab writes
TensorBoard scalars; its trial callback has (empty) per-batch hooks, so Keras fetches
every step's logs on the training thread instead of asynchronously (the per-batch cost
BENCHMARKS.md saw with TerminateOnNaN); it builds one extra model up front to learn
the space and calls gc.collect() before every trial.
Run by hand; the numbers go to BENCHMARKS.md. Needs keras-tuner (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 64  # hparams_lab's default --batch-size

# hparams_lab rows: label -> run.py arguments. They come after the common --trials,
# --epochs, --seed, --logdir and --experiment, so a row may override those too.
LAB_ROWS = {
    "random-w1": "--strategy random --workers 1",
    "random-w2": "--strategy random --workers 2",
}
KT = "kerastuner"


@dataclass(frozen=True)
class Run:
    wall_s: float
    trials: int  # successful trials
    epochs: int  # epochs trained, summed over every trial
    best: float | None  # best val_accuracy of any trial
    trial_s: float = 0.0  # hparams_lab: the trials' own wall time (trial.json, every segment), summed


def timed(command: list[str], **env: str) -> tuple[float, str]:
    """Wall time and stdout of a command run from the repository root; exits on failure."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {shlex.join(command)}\n{done.stderr[-3000:]}")
    return wall, done.stdout


def lab_command(row: str, trials: int, epochs: int, seed: int, logdir: str) -> list[str]:
    return ["run.py", "--trials", str(trials), "--epochs", str(epochs), "--seed", str(seed),
            "--logdir", logdir, "--experiment", "bench", *shlex.split(row)]


def trial_records(experiment_dir: Path) -> list[dict]:
    """Every attempt's trial.json (one run directory per attempt)."""
    return [json.loads(path.read_text()) for path in sorted(experiment_dir.glob("*/trial.json"))]


def run_lab(row: str, trials: int, epochs: int, seed: int) -> Run:
    with tempfile.TemporaryDirectory() as logdir:
        wall, _ = timed([sys.executable, *lab_command(row, trials, epochs, seed, logdir)])
        records = trial_records(Path(logdir, "bench"))
    ok = [r for r in records if r["status"] == "SUCCESS"]
    best = max((r["metrics"]["best_val_accuracy"] for r in ok), default=None)
    return Run(wall, len(ok), sum(r["epochs"] for r in records), best, sum(r["wall_time_s"] for r in records))


def run_kerastuner(trials: int, epochs: int, seed: int) -> Run:
    with tempfile.TemporaryDirectory() as directory:
        wall, out = timed([sys.executable, __file__, "--child", directory, "--trials", str(trials),
                           "--epochs", str(epochs), "--seed", str(seed)])
    return Run(wall, **json.loads(out.splitlines()[-1]))


def kt_hparams(hp, space) -> dict:
    """hparams_lab's space as KerasTuner hyperparameters (Choice / Boolean / Int / Float)."""
    from hparams_lab.core.space import Discrete, IntInterval, RealInterval

    values = {}
    for h in space:
        d, sampling = h.domain, "log" if getattr(h.domain, "log", False) else "linear"
        if isinstance(d, Discrete):
            is_bool = set(d.values) == {False, True}
            values[h.name] = hp.Boolean(h.name) if is_bool else hp.Choice(h.name, list(d.values))
        elif isinstance(d, IntInterval):
            values[h.name] = hp.Int(h.name, d.min, d.max, step=d.step, sampling=sampling)
        elif isinstance(d, RealInterval):
            values[h.name] = hp.Float(h.name, d.min, d.max, step=d.step, sampling=sampling)
        else:
            raise TypeError(f"no KerasTuner equivalent for {h.name}: {d!r}")
    return values


def kerastuner_child(directory: str, trials: int, epochs: int, seed: int) -> None:
    """KerasTuner's random search; prints one JSON line: trials, epochs, best."""
    sys.path.insert(0, str(ROOT))
    import keras_tuner as kt

    from hparams_lab.training.data import load_data
    from hparams_lab.training.models import build_model, build_optimizer, resolve_model
    from hparams_lab.study.run import DEFAULT_SPACE
    from hparams_lab.training.fit import import_keras

    keras = import_keras()  # hparams_lab's TensorFlow set-up: quiet start-up, op determinism
    data, mlp = load_data("digits", seed=seed), resolve_model("mlp")
    epochs_trained = []

    class MLP(kt.HyperModel):
        def build(self, hp):
            hparams = kt_hparams(hp, DEFAULT_SPACE)
            keras.utils.set_random_seed(seed)  # as hparams_lab seeds each trial (after clear_session)
            model = build_model(mlp, hparams, data.input_shape, data.n_outputs, data.task)
            model.compile(optimizer=build_optimizer(hparams), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            return model

        def fit(self, hp, model, *args, **kwargs):
            history = model.fit(*args, **kwargs)
            epochs_trained.append(len(history.epoch))
            return history

    # KerasTuner takes seed 0 for "no seed" (Oracle: `seed or random.randint(1, 10000)`).
    tuner = kt.RandomSearch(MLP(), objective="val_accuracy", max_trials=trials, executions_per_trial=1,
                            seed=seed or 1, overwrite=True, directory=directory, project_name="bench")
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=epochs,
                 batch_size=BATCH_SIZE, verbose=0)
    done = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    # A trial's score is its best epoch's val_accuracy, like hparams_lab's best_val_accuracy.
    best = max((t.score for t in done), default=None)
    print(json.dumps({"trials": len(done), "epochs": sum(epochs_trained), "best": best}))


def accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(best: dict[str, Run]) -> str:
    kt_run = best[KT]
    rows = ["| side | wall time | trials | epochs trained | best val_accuracy | wall / KT | s per epoch / KT |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, run in best.items():
        per_epoch = (run.wall_s / run.epochs) / (kt_run.wall_s / kt_run.epochs) if run.epochs else float("nan")
        rows.append(f"| {label} | {run.wall_s:.1f} s | {run.trials} | {run.epochs} | {accuracy(run.best)} | "
                    f"{run.wall_s / kt_run.wall_s:.2f} | {per_epoch:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1, help="report each side's fastest round")
    parser.add_argument("--lab", action="append", default=[], metavar="LABEL=ARGS",
                        help="one more hparams_lab row (run.py arguments); repeatable")
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kerastuner_child(args.child, args.trials, args.epochs, args.seed)
        return

    rows = dict(LAB_ROWS)
    for spec in args.lab:
        label, sep, row = spec.partition("=")
        if not sep or not label.strip():
            parser.error(f"--lab {spec!r}: expected LABEL=ARGS")
        rows[label.strip()] = row
    print(f"{KT}: keras_tuner.RandomSearch (in a child process of {Path(__file__).name})")
    for label, row in rows.items():
        print(f"{label}: python {shlex.join(lab_command(row, args.trials, args.epochs, args.seed, '<tmp>'))}")

    runs: dict[str, list[Run]] = {label: [] for label in (KT, *rows)}
    for round_ in range(1, args.rounds + 1):
        runs[KT].append(run_kerastuner(args.trials, args.epochs, args.seed))
        for label, row in rows.items():
            runs[label].append(run_lab(row, args.trials, args.epochs, args.seed))
        print(f"round {round_}: " + "  ".join(
            f"{label} {r[-1].wall_s:.2f}s (best {accuracy(r[-1].best)})" for label, r in runs.items()),
            flush=True)
    print(f"\n{args.trials} trials x {args.epochs} epochs, seed {args.seed}, best of {args.rounds} round(s):\n")
    print(table({label: min(r, key=lambda run: run.wall_s) for label, r in runs.items()}))


if __name__ == "__main__":
    main()
