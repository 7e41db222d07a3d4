"""`--workers N` against `--workers 1`: trials per hour, start-up included, and where the time goes.

    python benchmarks/workers.py                        # 20 trials x 20 epochs, workers 1 and 2, 1 round
    python benchmarks/workers.py --workers 1,2,4 --rounds 3
    python benchmarks/workers.py --profile              # one --workers 1 and one --workers 2 run, broken down

Default: each `python run.py --strategy random --workers N` is a fresh process timed
whole; within a round the worker counts run one after the other. Prints a markdown
table of each count's fastest round: wall time, trials per hour, speed-up over the first.

--profile runs the same study in a child process that patches (in itself and, through
the spawned workers' import of this file as __mp_main__, in every worker)
``training.import_keras`` and ``data.load_dataset`` to log when each process started,
imported TensorFlow and loaded the data; each trial's start and end come from its
trial.json (written at the end; ``wall_time_s`` measured by the runner). It prints
each process's timeline from the launch, then: parent start-up until the first trial
starts, worker spawn + TensorFlow import, per-trial time in a worker against in one
process. The patches only time, they change nothing; a worker that is not a spawned
multiprocessing child of the study shows no timeline (the trial timings still hold).
Run by hand; the numbers go to BENCHMARKS.md. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_kerastuner import ROOT, accuracy, lab_command, run_lab, timed, trial_records  # noqa: E402

PROFILE_LOG = "HPARAMS_LAB_BENCH_PROFILE"  # env: the file where profiled processes append events


# --- in the profiled processes (the study's parent and its workers) ---------------------------


def _log(event: str, t: float | None = None) -> None:
    with open(os.environ[PROFILE_LOG], "a") as f:  # one short O_APPEND write per line
        f.write(json.dumps({"t": time.time() if t is None else t, "pid": os.getpid(), "event": event}) + "\n")


def _process_started() -> float:
    """When this process was created (fork), from /proc, to the clock tick (10 ms)."""
    ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def _instrument() -> None:
    """Logs this process's start and each call of import_keras / load_dataset (start, end)."""
    sys.path.insert(0, str(ROOT))
    from hparams_lab.training import data, fit as training

    _log("process", _process_started())
    for module, name in ((training, "import_keras"), (data, "load_dataset")):
        def timed_call(*args, _original=getattr(module, name), _name=name, **kwargs):
            _log(f"{_name} start")
            try:
                return _original(*args, **kwargs)
            finally:
                _log(f"{_name} end")

        setattr(module, name, timed_call)


if os.environ.get(PROFILE_LOG):  # the profiled study's parent (__main__) and workers (__mp_main__)
    _instrument()


# --- the benchmark -------------------------------------------------------------------------------


def trials_per_hour(counts: list[int], trials: int, epochs: int, seed: int, rounds: int) -> None:
    rows = {n: f"--strategy random --workers {n}" for n in counts}
    for row in rows.values():
        print(f"python {shlex.join(lab_command(row, trials, epochs, seed, '<tmp>'))}")
    runs: dict[int, list] = {n: [] for n in counts}
    for round_ in range(1, rounds + 1):
        for n, row in rows.items():
            runs[n].append(run_lab(row, trials, epochs, seed))
        print(f"round {round_}: " + "  ".join(f"workers {n} {r[-1].wall_s:.2f}s (best {accuracy(r[-1].best)})"
                                              for n, r in runs.items()), flush=True)
    best = {n: min(r, key=lambda run: run.wall_s) for n, r in runs.items()}
    base = best[counts[0]]
    print(f"\n{trials} trials x {epochs} epochs, seed {seed}, best of {rounds} round(s):\n")
    print(f"| workers | wall time (whole command) | trials | trials per hour | vs {counts[0]} | best val_accuracy |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for n, run in best.items():
        print(f"| {n} | {run.wall_s:.1f} s | {run.trials} | {run.trials * 3600 / run.wall_s:.0f} | "
              f"{base.wall_s / run.wall_s * run.trials / base.trials:.2f}x | {accuracy(run.best)} |")


@dataclass(frozen=True)
class Profile:
    """One instrumented study; times are seconds from its launch."""

    workers: int
    wall: float
    trials: list[tuple[float, float]]  # (start, end) of each trial, by start
    parent: dict[str, float]  # event -> time of its first occurrence
    pool: list[dict[str, float]]  # the same for each worker process

    @property
    def per_trial(self) -> list[float]:
        return [end - start for start, end in self.trials]


def profiled_run(workers: int, trials: int, epochs: int, seed: int) -> Profile:
    with tempfile.TemporaryDirectory() as tmp:
        log, experiment = Path(tmp, "events.jsonl"), Path(tmp, "logs", "bench")
        command = lab_command(f"--strategy random --workers {workers}", trials, epochs, seed, str(experiment.parent))
        launch = time.time()
        wall, _ = timed([sys.executable, __file__, "--child", *command[1:]], **{PROFILE_LOG: str(log)})
        events = [json.loads(line) for line in log.read_text().splitlines()]
        # trial.json is written last: its mtime is the trial's end, minus wall_time_s its start.
        ends = [path.stat().st_mtime - launch for path in sorted(experiment.glob("*/trial.json"))]
        spans = sorted((end - r["wall_time_s"], end) for end, r in zip(ends, trial_records(experiment)))
    processes: dict[int, dict[str, float]] = {}
    for e in events:
        processes.setdefault(e["pid"], {}).setdefault(e["event"], e["t"] - launch)
    parent = min(processes, key=lambda pid: processes[pid]["process"])  # the first one up
    return Profile(workers, wall, spans, processes.pop(parent), list(processes.values()))


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{round(value, 2) or 0.0:.2f} s"  # no "-0.00": /proc ticks are 10 ms


def show_timeline(run: Profile) -> None:
    print(f"\n--workers {run.workers} (seconds from the launch; whole command {run.wall:.2f} s)")
    for name, p in [("parent", run.parent), *((f"worker {i}", w) for i, w in enumerate(run.pool, 1))]:
        took = p.get("import_keras end", 0) - p.get("import_keras start", 0)
        print(f"  {name:<9} process up {seconds(p.get('process'))}, TensorFlow imported "
              f"{seconds(p.get('import_keras end'))} (import {took:.2f} s), "
              f"data loaded {seconds(p.get('load_dataset end'))}")
    print(f"  trials    {len(run.trials)}: first started {run.trials[0][0]:.2f} s, "
          f"last ended {max(end for _, end in run.trials):.2f} s")


def profile(workers: int, trials: int, epochs: int, seed: int) -> None:
    one, many = (profiled_run(n, trials, epochs, seed) for n in (1, workers))
    for run in (one, many):
        show_timeline(run)

    def per_trial(run: Profile) -> str:
        t = run.per_trial
        return f"{statistics.mean(t):.2f} s (median {statistics.median(t):.2f}, {min(t):.2f}-{max(t):.2f})"

    def worker_ready(run: Profile) -> str:  # from the process's creation to its data loaded
        ready = [(w["process"], w.get("load_dataset end", w.get("import_keras end"))) for w in run.pool]
        return ", ".join(seconds(end - up) for up, end in ready if end is not None) or "-"

    def steady(run: Profile) -> str:
        return f"{run.workers * 3600 / statistics.mean(run.per_trial):.0f}"

    def after_last(run: Profile) -> str:
        return seconds(run.wall - max(end for _, end in run.trials))

    def per_hour(run: Profile) -> str:
        return f"{len(run.trials) * 3600 / run.wall:.0f}"

    rows = [
        ("parent start-up until the first trial starts", seconds(one.trials[0][0]), seconds(many.trials[0][0])),
        ("of which: launch until the first worker process is up", "-",
         seconds(min((w["process"] for w in many.pool), default=None))),
        ("worker spawn + TensorFlow import + data, per worker", "-", worker_ready(many)),
        ("per trial (trial.json wall_time_s)", per_trial(one), per_trial(many)),
        ("trials per hour, steady state (workers x 3600 / per trial)", steady(one), steady(many)),
        ("last trial's end until the command exits", after_last(one), after_last(many)),
        ("trials per hour, whole command", per_hour(one), per_hour(many)),
    ]
    print(f"\n{trials} trials x {epochs} epochs, seed {seed}:\n")
    print(f"| phase | --workers 1 | --workers {workers} |\n| --- | --- | --- |")
    for row in rows:
        print(f"| {' | '.join(row)} |")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:  # the profiled study: run.py's command line, in this process
        from hparams_lab.cli.app import main as run_py

        run_py(sys.argv[2:], prog_name="run.py")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, the first is the base")
    parser.add_argument("--rounds", type=int, default=1, help="report each count's fastest round")
    parser.add_argument("--profile", action="store_true", help="break a --workers run down (the largest count)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    if args.profile:
        profile(max(counts), args.trials, args.epochs, args.seed)
    else:
        trials_per_hour(counts, args.trials, args.epochs, args.seed, args.rounds)


if __name__ == "__main__":
    main()
