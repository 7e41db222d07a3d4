"""Where `review`'s time goes, phase by phase, for one logdir; run by hand.

    python benchmarks/review_profile.py LOGDIR [--source DIR] [--repeats 7] [--warm]

Each repeat is a fresh process (`--child`) that imports what `python run.py review`
imports, timing each group, then runs the review command in that process with a timer
around each phase's function, so numbers add up to the process, less interpreter
start (measured apart, as `python -c pass`). --source: the repository whose
hparams_lab to profile (another checkout, e.g. the main branch's, for a before/after
table from one sitting); phases that a checkout does not have are left out. --warm:
review's cache on (a first, unmeasured run fills it), else off (cold).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (module, attribute, phase). Phases do not nest, except where noted in the table.
PHASES = [
    ("hparams_lab.review.reader", "walk_logs", "walk the tree (3000+ stat calls)"),
    ("hparams_lab.review.cache", "open_cache", "cache: load the JSON file"),
    ("hparams_lab.review.cache", "Cache.get", "cache: check and decode entries"),
    ("hparams_lab.review.tfrecord", "_read_framed", "read and frame files (length CRCs)"),
    ("hparams_lab.review.tfrecord", "_read_file", "read files"),
    ("hparams_lab.review.tfrecord", "_frame_files", "frame records (length CRCs, numpy)"),
    ("hparams_lab.review.tfrecord", "_checks_pass", "data CRCs (numpy)"),
    ("hparams_lab.review.reader", "_decode_events", "decode events (protobuf) and fold"),
    ("hparams_lab.review.events", "_find_layouts", "find layouts"),
    ("hparams_lab.review.events", "_fold_layouts", "decode and fold layout records (numpy)"),
    ("hparams_lab.review.events", "_decode_hparams_only", "decode other records (protobuf)"),
    ("hparams_lab.review.events", "decode_records", "decode whole files (protobuf)"),
    ("hparams_lab.review.reader", "_merge", "merge files into runs"),
    ("hparams_lab.review.reader", "build_rows", "rows, trial.json"),
    ("hparams_lab.review.cache", "Cache.save", "cache: save"),
    ("hparams_lab.cli.review", "_leaderboard", "table and summary"),
]


def child(source, logdir, warm):
    marks = [("start", time.perf_counter())]
    sys.path.insert(0, source)
    import importlib

    import click  # noqa: F401

    marks.append(("import click", time.perf_counter()))
    # What the checkout's `python run.py review` imports: the app, or the review command alone.
    entry = Path(source, "run.py").read_text()
    if "OPENBLAS_NUM_THREADS" in entry:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    command = "hparams_lab.cli.review" if "cli.review import review" in entry else "hparams_lab.cli.app"
    importlib.import_module(command)
    marks.append((f"import the command ({command})", time.perf_counter()))

    for name in ("reader", "query", "views", "output", "summary", "events", "cache", "tfrecord"):
        try:
            importlib.import_module(f"hparams_lab.review.{name}")
        except ImportError:
            pass
    marks.append(("import review's modules", time.perf_counter()))
    if not warm:  # imported inside functions as needed; here, to time them apart
        import numpy  # noqa: F401

        marks.append(("import numpy", time.perf_counter()))
        from tensorboard.compat.proto import event_pb2  # noqa: F401
        from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: F401

        marks.append(("import protobuf and tensorboard's protos", time.perf_counter()))
    spent = {}
    for module_name, attribute, phase in PHASES:
        try:
            holder = importlib.import_module(module_name)
        except ImportError:
            continue
        *owners, attribute = attribute.split(".")
        for owner in owners:
            holder = getattr(holder, owner, None)
        if not hasattr(holder, attribute):
            continue
        spent[phase] = 0.0

        def timed(*args, _function=getattr(holder, attribute), _phase=phase, **kwargs):
            started = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                spent[_phase] += time.perf_counter() - started

        setattr(holder, attribute, timed)
    import contextlib
    import io

    from hparams_lab.cli.review import review

    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        review.main([logdir, "--top", "10"] + ([] if warm else ["--no-cache"] if _has_no_cache(review) else []),
                    prog_name="review", standalone_mode=False)
    total = time.perf_counter() - started
    imports = {label: at - marks[i][1] for i, (label, at) in enumerate(marks[1:])}
    late = sorted(name for name in ("numpy", "google.protobuf") if name in sys.modules) if warm else []
    return {"imports": imports, "phases": spent, "command": total, "late_imports": late,
            "output_bytes": len(out.getvalue())}


def _has_no_cache(command):
    return any(param.name == "no_cache" for param in command.params)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir")
    parser.add_argument("--source", default=str(ROOT))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    env = dict(os.environ, HPARAMS_LAB_REVIEW_CACHE="on" if args.warm else "off")
    env.pop("OPENBLAS_NUM_THREADS", None)  # as run.py leaves it
    if args.child:
        print(json.dumps(child(os.path.abspath(args.source), args.logdir, args.warm)))
        return
    command = [sys.executable, __file__, args.logdir, "--source", args.source, "--child"] + \
        (["--warm"] if args.warm else [])
    if args.warm:
        subprocess.run(command, env=env, check=True, capture_output=True)
    runs, starts = [], []
    for _ in range(args.repeats):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        starts.append(time.perf_counter() - began)
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        runs.append(json.loads(done.stdout))
    print(f"source {args.source}, {'warm' if args.warm else 'cold'}, medians of {args.repeats} processes "
          f"(load average {os.getloadavg()[0]:.2f})")
    print("| phase | ms |\n|---|---|")
    print(f"| interpreter start (`python -c pass`) | {1000 * statistics.median(starts):.0f} |")
    for label in runs[0]["imports"]:
        print(f"| {label} | {1000 * statistics.median(run['imports'][label] for run in runs):.0f} |")
    accounted = 0.0
    for phase in runs[0]["phases"]:
        value = statistics.median(run["phases"][phase] for run in runs)
        if value >= 0.0005:
            print(f"| {phase} | {1000 * value:.0f} |")
        accounted += value
    command_time = statistics.median(run["command"] for run in runs)
    print(f"| everything else in the command | {1000 * (command_time - accounted):.0f} |")
    total = statistics.median(starts) + statistics.median(sum(run["imports"].values()) for run in runs) + command_time
    print(f"| **sum** | **{1000 * total:.0f}** |")
    if runs[0]["late_imports"]:
        print(f"imported while running: {', '.join(runs[0]['late_imports'])}")


if __name__ == "__main__":
    main()
