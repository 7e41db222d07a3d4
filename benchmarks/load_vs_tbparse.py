"""hparams_lab.review.load(...).to_pandas() beside tbparse on the same logs: same values, and time.

Run by hand from the repository root (needs pandas and tbparse: pip install -e '.[dev,bench]'):

    python benchmarks/load_vs_tbparse.py [--runs 200]

Logs: review_speed.py's generator (the runner's layout, train/ and validation/ epoch
scalars). Each reader runs in a fresh process and builds one DataFrame row per run with
its hparams and validation/epoch_accuracy's last value; the two frames are compared.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from review_speed import generate  # noqa: E402

OURS = """
import sys
from hparams_lab import review
frame = review.load(sys.argv[1]).to_pandas()
frame = frame[["run", "num_units", "optimizer", "validation/epoch_accuracy"]].sort_values("run")
frame.to_json(sys.argv[2], orient="records")
"""

# tbparse: scalars (TF2 tensor summaries) and hparams in long form, pivoted to one row per run.
TBPARSE = """
import sys
from tbparse import SummaryReader
reader = SummaryReader(sys.argv[1], extra_columns={"dir_name"})
scalars, hparams = reader.tensors, reader.hparams
last = scalars[scalars.tag == "epoch_accuracy"].sort_values("step").groupby("dir_name").last()
last = last[last.index.str.endswith("/validation")]
last.index = last.index.str.removesuffix("/validation")
wide = hparams.pivot_table(index="dir_name", columns="tag", values="value", aggfunc="first")
frame = wide.join(last["value"].rename("validation/epoch_accuracy"), how="inner").reset_index()
frame = frame.rename(columns={"dir_name": "run"})[["run", "num_units", "optimizer", "validation/epoch_accuracy"]]
frame.sort_values("run").to_json(sys.argv[2], orient="records")
"""


def timed(code, logdir, out):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(logdir), str(out)], cwd=ROOT, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main():
    import pandas

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    logdir = Path(tempfile.mkdtemp(prefix="load-bench-"))
    try:
        generate(logdir, args.runs, 20)
        ours, theirs = logdir.parent / f"{logdir.name}-ours.json", logdir.parent / f"{logdir.name}-tbparse.json"
        t_ours, t_theirs = timed(OURS, logdir, ours), timed(TBPARSE, logdir, theirs)
        a, b = pandas.read_json(ours), pandas.read_json(theirs)
        a["run"] = a["run"].str.removeprefix("bench/")
        b["run"] = b["run"].str.removeprefix("bench/")
        a, b = a.sort_values("run").reset_index(drop=True), b.sort_values("run").reset_index(drop=True)
        same = (a["run"].equals(b["run"]) and (a["num_units"] == b["num_units"]).all()
                and (a["optimizer"] == b["optimizer"]).all()
                and ((a["validation/epoch_accuracy"] - b["validation/epoch_accuracy"]).abs() < 1e-6).all())
        print(f"{args.runs} runs: review.load().to_pandas() {t_ours:.2f} s, tbparse {t_theirs:.2f} s "
              f"({t_theirs / t_ours:.1f}x); same runs, hparams and values: {same}")
    finally:
        shutil.rmtree(logdir)


if __name__ == "__main__":
    main()
