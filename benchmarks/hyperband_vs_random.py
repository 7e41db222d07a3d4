"""Hyperband against random search: best accuracy and epochs trained, over several seeds.

    python benchmarks/hyperband_vs_random.py                          # R = 27, factor 3, seeds 0 1 2
    python benchmarks/hyperband_vs_random.py --max-epochs 9 --seeds 0 --sides hyperband

Each side is `python run.py` in a fresh process on the default space and digits:
hyperband with R = --max-epochs, and random search over as many configurations as
hyperband's brackets start, each trained R epochs (what hyperband saves is the
training of the configurations it stops early). Also hyperband with `--workers 2`
(asynchronous promotions) and successive halving (the first bracket alone). Prints a
markdown table per seed and the goal checks: within 0.5 point of random's best with
at most 1/3 of its epochs (issue 6), and the wall time per epoch trained within 1.3x of
random's (issue 14: what each segment pays to build, restore and trace). Run by hand;
the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vs_kerastuner import Run, accuracy, run_lab  # noqa: E402

from hparams_lab.search.hyperband import brackets  # noqa: E402


def rows(max_epochs: int, factor: int) -> dict[str, str]:
    flags = f"--max-epochs {max_epochs} --factor {factor}"
    return {
        "random": "--strategy random --workers 1",
        "hyperband": f"--strategy hyperband {flags} --workers 1",
        "hyperband-w2": f"--strategy hyperband {flags} --workers 2",
        "successive-halving": f"--strategy successive-halving {flags} --workers 1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-epochs", type=int, default=27)
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sides", nargs="+", default=None, help="some of the sides only (random always runs)")
    args = parser.parse_args()

    configurations = sum(b.sizes[0] for b in brackets(args.max_epochs, args.factor))
    print(f"R = {args.max_epochs}, factor {args.factor}: hyperband starts {configurations} configurations; "
          f"random trains {configurations} x {args.max_epochs} epochs\n")
    results: dict[str, list[Run]] = {}
    for seed in args.seeds:
        for label, row in rows(args.max_epochs, args.factor).items():
            if args.sides and label != "random" and label not in args.sides:
                continue
            run = run_lab(row, configurations, args.max_epochs, seed)
            results.setdefault(label, []).append(run)
            print(f"seed {seed} {label}: {run.wall_s:.1f} s, {run.trials} trials, {run.epochs} epochs, "
                  f"best {accuracy(run.best)}", flush=True)

    random = results["random"]

    def per_epoch(runs: list[Run], field: str = "wall_s") -> float:
        return sum(getattr(r, field) for r in runs) / sum(r.epochs for r in runs)

    # Whole process (the goal), and the trials' own time (trial.json): the latter leaves out
    # the start-up both sides pay once (imports, data, the first model's evaluation).
    print("\n| side | seeds | wall time (mean) | epochs (mean) | epochs / random | wall per epoch "
          "| per epoch / random's | trials' time per epoch (/ random's) | best (each seed) "
          "| best - random (points, worst seed) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, runs in results.items():
        epochs = statistics.mean(r.epochs for r in runs)
        gaps = [100 * (r.best - base.best) for r, base in zip(runs, random)]
        own = per_epoch(runs, "trial_s")
        print(f"| {label} | {len(runs)} | {statistics.mean(r.wall_s for r in runs):.1f} s | {epochs:.0f} | "
              f"{epochs / statistics.mean(r.epochs for r in random):.2f} | {1000 * per_epoch(runs):.0f} ms | "
              f"{per_epoch(runs) / per_epoch(random):.2f} | {1000 * own:.0f} ms "
              f"({own / per_epoch(random, 'trial_s'):.2f}) | "
              f"{', '.join(accuracy(r.best) for r in runs)} | {min(gaps):+.2f} |")

if __name__ == "__main__":
    main()
