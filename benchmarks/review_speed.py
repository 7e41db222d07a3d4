"""Benchmark `review` (cold and warm) against tbparse on 1000 runs x 20 epochs x 4 scalars plus hparams.

Run by hand from the repository root:

    python benchmarks/review_speed.py [--runs 1000] [--keep DIR] [--repeats 7] [--baseline CHECKOUT]

The logs are written in the runner's layout (tests/runner_style_logs.py) with
tensorboard's pure-Python EventFileWriter. Every reader runs as a fresh process, so
interpreter start and imports are counted, as a user would see them, and the readers
take turns (one run of each, then the next round), so that a machine shared with
other work slows them alike:

- review cold: `python run.py review LOGDIR --top 10 --no-cache`;
- review warm: the same with review's cache (a cache directory of this benchmark's,
  filled by one run first);
- baseline (with --baseline): another checkout's `run.py review` (e.g. main's), cold;
- tbparse, if installed: SummaryReader(...).tensors and .hparams.

Every review's output must be the same bytes, or the benchmark stops. Python writes
bytecode caches for the project's modules as it does for a user (into a directory of
this benchmark's, even where PYTHONDONTWRITEBYTECODE is set); --no-bytecode-cache
compiles them in every process instead.
"""

import argparse
import os
import platform
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


def review_command(checkout, logdir, *extra):
    """`python run.py review` of a checkout; its module entry where run.py has no review."""
    run_py = Path(checkout) / "run.py"
    if run_py.exists():
        return [sys.executable, str(run_py), "review", str(logdir), "--top", "10", *extra]
    return [sys.executable, "-m", "hparams_lab.cli.review", str(logdir), "--top", "10", *extra]


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
    # Archived logs: old enough for review's cache (it skips files changed in the last seconds).
    then = time.time() - 60
    for path in Path(logdir).rglob("*"):
        os.utime(path, (then, then))


def run_once(reader):
    started = time.perf_counter()
    done = subprocess.run(reader["command"], cwd=reader["cwd"], env=reader["env"], capture_output=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{reader['command']} failed:\n{done.stderr.decode(errors='replace')}")
    return seconds, done.stdout


def machine():
    model = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="write the logs here and keep them")
    parser.add_argument("--baseline", type=Path, help="another checkout whose review to time too, e.g. main's")
    parser.add_argument("--skip-tbparse", action="store_true")
    parser.add_argument("--no-bytecode-cache", action="store_true")
    args = parser.parse_args()

    logdir = args.keep or Path(tempfile.mkdtemp(prefix="review-bench-"))
    if not any(logdir.glob("**/events*")):
        start = time.perf_counter()
        generate(logdir, args.runs, args.epochs)
        print(f"generated {args.runs} runs in {time.perf_counter() - start:.1f} s: {logdir}")
    scratch = Path(tempfile.mkdtemp(prefix="review-bench-caches-"))
    env = dict(os.environ, XDG_CACHE_HOME=str(scratch / "cache"), COLUMNS="200")
    env.pop("HPARAMS_LAB_REVIEW_CACHE", None)
    if args.no_bytecode_cache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    readers = {"review cold": {"command": review_command(ROOT, logdir, "--no-cache"), "cwd": ROOT, "env": env},
               "review warm": {"command": review_command(ROOT, logdir), "cwd": ROOT, "env": env}}
    if args.baseline:
        readers["baseline cold"] = {"command": review_command(args.baseline, logdir), "cwd": args.baseline,
                                    "env": dict(env, HPARAMS_LAB_REVIEW_CACHE="off")}
    tbparse = not args.skip_tbparse and subprocess.run(
        [sys.executable, "-c", "import tbparse"], capture_output=True).returncode == 0
    if tbparse:
        readers["tbparse"] = {"command": [sys.executable, "-c", TBPARSE, str(logdir)], "cwd": ROOT, "env": env}
    elif not args.skip_tbparse:
        print("tbparse is not installed (pip install tbparse, or the 'bench' extra): skipped")
    try:
        outputs = {name: run_once(reader)[1] for name, reader in readers.items()}  # warm-ups: caches filled
        first = outputs["review cold"]
        print(first.decode().splitlines()[0] if first else "")
        seconds = {name: [] for name in readers}
        load_before = os.getloadavg()
        for round_ in range(args.repeats):
            for name, reader in readers.items():
                if name == "tbparse" and round_ >= max(1, args.repeats // 2):
                    continue  # 15 s a run: half as many
                took, out = run_once(reader)
                seconds[name].append(took)
                if name != "tbparse" and out != first:
                    raise SystemExit(f"{name}: output differs from review cold's")
        load_after = os.getloadavg()
        if tbparse:
            print(outputs["tbparse"].decode().strip())
        print(f"machine: {machine()}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
              f"bytecode caches {'off' if args.no_bytecode_cache else 'on'}")
        print("every review's output: the same bytes")
        for name, times in seconds.items():
            print(f"{name}: median {statistics.median(times):.3f} s, min {min(times):.3f} s, "
                  f"runs {', '.join(f'{s:.3f}' for s in times)}")
        if tbparse:
            for name in readers:
                if name != "tbparse":
                    print(f"tbparse / {name} (medians): "
                          f"{statistics.median(seconds['tbparse']) / statistics.median(seconds[name]):.1f}x")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(logdir)


if __name__ == "__main__":
    main()
