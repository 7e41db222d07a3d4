"""Bayes (TPE) against random search at equal trial count: best accuracy, and how soon.

    python benchmarks/bayes_vs_random.py                       # 30 trials x 20 epochs, seeds 0 1 2
    python benchmarks/bayes_vs_random.py --trials 10 --epochs 2 --seeds 0    # a quick look

Each side is `python run.py` in a fresh process on the default space and digits, with
the same --trials, --epochs and --seed: random search, bayes (its first half, at most
10, random; then TPE) and bayes with --pruner median. For each seed it reports the best
val_accuracy of a finished trial, and the trials needed to reach 99% of a final best, in
the order the trials started: 99% of the side's own best, and 99% of the best any side
found for that seed (the common bar; "-" when never reached). A pruned trial counts as
a trial spent, never as a best; epochs trained show what pruning saves. Then a markdown
table over the seeds. Needs optuna (the `optuna` extra). Run by hand on a quiet
machine; the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_kerastuner import lab_command, timed, trial_records  # noqa: E402

ROWS = {
    "random": "--strategy random",
    "bayes": "--strategy bayes",
    "bayes-median": "--strategy bayes --pruner median",
}
METRIC = "best_val_accuracy"
SHARE = 0.99


@dataclass(frozen=True)
class Side:
    wall_s: float
    bests: list[float | None]  # per trial in start order: its metric if it finished, else None
    epochs: int  # epochs trained, all trials
    pruned: int

    @property
    def best(self) -> float:
        return max((b for b in self.bests if b is not None), default=float("nan"))

    def trials_to(self, bar: float) -> int | None:
        """How many trials (in start order) until one reaches ``bar``; None if none does."""
        return next((i + 1 for i, b in enumerate(self.bests) if b is not None and b >= bar), None)


def run_side(row: str, trials: int, epochs: int, seed: int) -> Side:
    with tempfile.TemporaryDirectory() as logdir:
        wall, _ = timed([sys.executable, *lab_command(row, trials, epochs, seed, logdir)])
        records = trial_records(Path(logdir, "bench"))
    records.sort(key=lambda r: r["index"])
    bests = [r["metrics"].get(METRIC) if r["status"] == "SUCCESS" else None for r in records]
    return Side(wall, bests, sum(r["epochs"] for r in records), sum(r["status"] == "PRUNED" for r in records))


def shown(n: int | None) -> str:
    return "-" if n is None else str(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    print(f"{args.trials} trials x {args.epochs} epochs, default space, digits\n")
    sides: dict[str, list[Side]] = {label: [] for label in ROWS}
    bars: list[float] = []
    for seed in args.seeds:
        for label, row in ROWS.items():
            sides[label].append(run_side(row, args.trials, args.epochs, seed))
        bars.append(SHARE * max(runs[-1].best for runs in sides.values()))
        for label, runs in sides.items():
            side = runs[-1]
            print(f"seed {seed} {label}: {side.wall_s:.1f} s, best {side.best:.4f}, "
                  f"to {SHARE:.0%} of own best {shown(side.trials_to(SHARE * side.best))}, "
                  f"of the seed's best {shown(side.trials_to(bars[-1]))}, {side.epochs} epochs, "
                  f"{side.pruned} pruned", flush=True)

    print(f"\n| side | seeds | best (each seed) | best (mean) | trials to {SHARE:.0%} of own best (each) "
          f"| trials to {SHARE:.0%} of the seed's best (each) | epochs (mean) | pruned (mean) | wall time (mean) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, runs in sides.items():
        print(f"| {label} | {len(runs)} | {', '.join(f'{r.best:.4f}' for r in runs)} | "
              f"{statistics.mean(r.best for r in runs):.4f} | "
              f"{', '.join(shown(r.trials_to(SHARE * r.best)) for r in runs)} | "
              f"{', '.join(shown(r.trials_to(bar)) for r, bar in zip(runs, bars))} | "
              f"{statistics.mean(r.epochs for r in runs):.0f} | {statistics.mean(r.pruned for r in runs):.1f} | "
              f"{statistics.mean(r.wall_s for r in runs):.1f} s |")


if __name__ == "__main__":
    main()
