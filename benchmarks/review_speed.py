"""Benchmark `review` against tbparse on 1000 runs x 20 epochs x 4 scalars plus hparams.

Run by hand from the repository root:

    ~/.cache/hparams_lab/venv/bin/python benchmarks/review_speed.py [--runs 1000] [--keep DIR]

The logs are written in the runner's layout (tests/runner_style_logs.py) with
tensorboard's pure-Python EventFileWriter. Both readers run as fresh processes,
so interpreter start and imports are counted, as a user would see them.
"""

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import runner_style_logs as logs  # noqa: E402

SPACE = {"num_units": [16, 32, 64, 128], "dropout": [0.0, 0.1, 0.2, 0.5],
         "optimizer": ["adam", "sgd", "rmsprop"], "learning_rate": [0.1, 0.01, 0.001],
         "batch_norm": [True, False]}


def review_command(logdir):
    """`python run.py review` once the lead's run.py exists; the module entry until then."""
    if (ROOT / "run.py").exists():
        return [sys.executable, str(ROOT / "run.py"), "review", str(logdir), "--top", "10"]
    return [sys.executable, "-m", "hparams_lab.cli.review", str(logdir), "--top", "10"]


# tbparse reads the same runs into DataFrames: every scalar point with its run dir, and the
# hparams. TF2 scalars are tensor summaries, which tbparse lists under .tensors (its .scalars
# holds TF1 simple values, none here). Building a leaderboard from these would take more pandas.
TBPARSE = """
import sys
from tbparse import SummaryReader
reader = SummaryReader(sys.argv[1], extra_columns={"dir_name"})
scalars, hparams = reader.tensors, reader.hparams
print(f"tbparse: {len(scalars)} scalar rows, {len(hparams)} hparam rows")
"""


def generate(logdir, runs, epochs, seed=0):
    rng = random.Random(seed)
    logs.write_union_config(logdir, SPACE)
    experiment = Path(logdir) / "bench"
    logs.write_experiment_json(experiment, SPACE)
    for index in range(runs):
        hparams = {name: rng.choice(values) for name, values in SPACE.items()}
        history = {group: {"accuracy": [rng.random() for _ in range(epochs)],
                           "loss": [rng.random() * 2 for _ in range(epochs)]}
                   for group in ("train", "validation")}
        logs.write_trial(experiment, f"trial-{index:04d}", hparams, history)


def time_process(command, repeats):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{command} failed:\n{done.stderr}")
    return seconds, done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the logs here and keep them")
    parser.add_argument("--skip-tbparse", action="store_true")
    args = parser.parse_args()

    logdir = args.keep or Path(tempfile.mkdtemp(prefix="review-bench-"))
    if not any(logdir.glob("**/events*")):
        start = time.perf_counter()
        generate(logdir, args.runs, args.epochs)
        print(f"generated {args.runs} runs in {time.perf_counter() - start:.1f} s: {logdir}")
    try:
        review, out = time_process(review_command(logdir), args.repeats)
        print(out.splitlines()[0] if out else "")
        report("review", review)
        if not args.skip_tbparse:
            tbparse, out = time_process([sys.executable, "-c", TBPARSE, str(logdir)], max(1, args.repeats // 2))
            print(out.strip())
            report("tbparse", tbparse)
            print(f"tbparse / review (medians): {statistics.median(tbparse) / statistics.median(review):.1f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(logdir)


def report(name, seconds):
    print(f"{name}: median {statistics.median(seconds):.3f} s, min {min(seconds):.3f} s, "
          f"runs {', '.join(f'{s:.3f}' for s in seconds)}")


if __name__ == "__main__":
    main()
