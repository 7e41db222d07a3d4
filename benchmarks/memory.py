"""Resident memory across many trials in one process (a study must not grow without bound).

Runs a random study in this process through ``run_study`` and reads VmRSS after
every trial:

    python benchmarks/memory.py                      # 50 trials x 1 epoch on digits
    python benchmarks/memory.py --trials 50 --epochs 2

Prints RSS after trials 1, 10 and the last, and the growth from trial 10 to the
last. Run by hand; the numbers go to BENCHMARKS.md. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hparams_lab.execution.events import SilentReporter  # noqa: E402
from hparams_lab.study.run import run_study  # noqa: E402
from hparams_lab.core.trial import TrialResult  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # reported in kB
    raise RuntimeError("no VmRSS in /proc/self/status")


class RssReporter(SilentReporter):
    """Records RSS after each trial."""

    def __init__(self) -> None:
        self.after: list[float] = []

    def trial_finished(self, result: TrialResult, position: int, total: int) -> None:
        self.after.append(rss_mib())
        print(f"trial {position:>3}/{total}  {result.status.value:<7}  RSS {self.after[-1]:7.1f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    reporter = RssReporter()
    with tempfile.TemporaryDirectory() as logdir:
        study = run_study(strategy="random", trials=args.trials, epochs=args.epochs, seed=args.seed,
                          logdir=logdir, experiment="memory", reporter=reporter)
    # The default space has 32 points: more trials than that need a bigger space.
    if len(study.results) < max(10, args.trials):
        raise SystemExit(f"only {len(study.results)} trials ran; need at least 10 and {args.trials}")
    after = reporter.after
    print(f"\nRSS after trial 1: {after[0]:.1f} MiB, 10: {after[9]:.1f} MiB, {len(after)}: {after[-1]:.1f} MiB")
    print(f"growth trial 10 -> {len(after)}: {after[-1] - after[9]:+.1f} MiB")


if __name__ == "__main__":
    main()
