"""Where may the hparams_config live? Run by hand, not by pytest:

    TF_CPP_MIN_LOG_LEVEL=2 python -m tests.layout_experiment [--restarts 4] [--live]

For each layout of tests/layouts.py, each view (--logdir logs, --logdir
logs/expA) and each --load_fast (auto, false), starts a real TensorBoard
`--restarts` times and prints which hparams and root metrics the HParams
experiment shows, whether every session has every metric of its experiment,
and how long the start took. With --live, each TensorBoard is started on expA
alone and expB is added while it runs (the union config replaced as hparams_lab
replaces it): does the new experiment's column appear within 20 s?

Measured 2026-12-02 (TensorBoard 2.21, 2-core AMD EPYC VM), both loaders alike:
  per_experiment  whole logdir: one experiment's hparams and metrics only (which one
                  varies across restarts); single experiment: complete
  union_run       complete in both views; live: expB's columns within 0.2-0.6 s
  root_union      complete in both views; live: never (TensorBoard keeps the
                  first config it read for a run, here the logdir's own run ".")
  none            complete in both views, live too; but domains are only the
                  values seen (no declared choices, no descriptions)
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

from tests import layouts
from tests.tbserver import (
    TensorBoardServer,
    hparam_names,
    metric_names,
    session_metric_values,
)


def observe(logdir: Path, load_fast: str, n_groups: int, exps: tuple[str, ...]):
    with TensorBoardServer(logdir, load_fast=load_fast) as tb:
        # Loaded = every session has the metrics both experiments write.
        experiment, groups = tb.wait_for_sessions(n_groups, metrics=lambda _s: layouts.COMMON_METRICS)
        complete = all(
            layouts.METRICS[s["name"].split("/")[0] if len(exps) > 1 else exps[0]]
            <= set(session_metric_values(s))
            for g in groups["sessionGroups"] for s in g["sessions"]
        )
        shown = (tuple(sorted(hparam_names(experiment))),
                 tuple(sorted(t for g, t in metric_names(experiment) if g == "")))
        return shown, complete, tb.start_seconds


def observe_live(logs: Path, layout: str, load_fast: str) -> str:
    layouts.write_layout(logs, layout, ("expA",), config_number=0)
    wanted = layouts.hparam_names_of("expA") | layouts.hparam_names_of("expB")
    with TensorBoardServer(logs, load_fast=load_fast) as tb:
        tb.wait_for_sessions(2, metrics=lambda _s: layouts.COMMON_METRICS)
        began = time.monotonic()
        layouts.write_layout(logs, layout, ("expA", "expB"), config_number=1)
        while time.monotonic() - began < 20:
            experiment = tb.experiment()
            if hparam_names(experiment) == wanted and layouts.METRICS["expB"] <= metric_names(experiment):
                return f"expB's columns shown after {time.monotonic() - began:.1f} s"
            time.sleep(0.1)
    return f"expB's columns not shown after 20 s: hparams {sorted(hparam_names(experiment))}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--live", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for layout in layouts.LAYOUTS:
            if args.live:
                for load_fast in ("auto", "false"):
                    logs = Path(tmp) / f"live-{layout}-{load_fast}" / "logs"
                    print(f"{layout:15} live       load_fast={load_fast:5} {observe_live(logs, layout, load_fast)}")
                continue
            logs = layouts.write_layout(Path(tmp) / layout / "logs", layout)
            for view, n_groups, exps in (("logs", 4, ("expA", "expB")), ("logs/expA", 2, ("expA",))):
                for load_fast in ("auto", "false"):
                    seen, starts = collections.Counter(), []
                    for _ in range(args.restarts):
                        shown, complete, start = observe(logs.parent / view, load_fast, n_groups, exps)
                        seen[shown + (complete,)] += 1
                        starts.append(start)
                    print(f"{layout:15} {view:10} load_fast={load_fast:5} "
                          f"start {min(starts):.1f}-{max(starts):.1f}s")
                    for (hps, root_metrics, complete), n in seen.items():
                        print(f"    {n}x hparams={list(hps)} root metrics={list(root_metrics)} "
                              f"every session complete={complete}")


if __name__ == "__main__":
    main()
