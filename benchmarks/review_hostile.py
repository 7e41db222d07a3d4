"""Time and peak memory of `review` on hostile logdirs (issue 13 §2), beside a clean one.

Run by hand from the repository root:

    python benchmarks/review_hostile.py [--repeats 3]

Each case is one valid session plus the hostile thing, reviewed as a fresh process
(`python run.py review DIR --format json`); wall time and the child's peak RSS
(ru_maxrss) are measured by a small parent, so interpreter start and imports count.
Goal: every case in under 1 s and under 200 MB above the clean logdir.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import review_samples as samples  # noqa: E402


def clean(top: Path) -> None:
    samples.write_session(top / "good", {"units": 8}, [("score", 0, 0.5)], end_status="SUCCESS")


def fifo(top):
    os.mkfifo(top / "good" / "events.out.tfevents.1.fifo")
    os.mkfifo(top / "experiment.json")


def unix_socket(top):
    path = top / "s" / "events.out.tfevents.1.sock"
    path.parent.mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return server


def symlinks(top):
    outside = top.parent / "outside"
    samples.write_session(outside / "stranger", {"units": 99}, [("score", 0, 0.9)], end_status="SUCCESS")
    (top / "out").symlink_to(outside, target_is_directory=True)
    (top / "good" / "events.out.tfevents.3.dangling").symlink_to(top / "nowhere")
    (top / "good" / "loop").symlink_to(top, target_is_directory=True)
    (top / "good" / "self").symlink_to(top / "good", target_is_directory=True)


def sparse_gigabyte(top):
    with open(top / "good" / "events.out.tfevents.2.sparse", "wb") as file:
        file.truncate(1 << 30)


def zeros_64mb(top):
    with open(top / "good" / "events.out.tfevents.2.zeros", "wb") as file:
        file.write(bytes(64 << 20))


def deep_tree(top):
    depth = (4090 - len(str(top))) // 2
    fd = os.open(top, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)


def deep_json(top):
    (top / "good" / "trial.json").write_text("[" * 100_000)
    (top / "experiment.json").write_text("{\"a\":" * 100_000)


def huge_json(top):
    with open(top / "good" / "trial.json", "w") as file:
        file.write('{"pad": "')
        file.truncate(17 << 20)


CASES = {"clean": None, "fifo": fifo, "socket": unix_socket, "symlinks": symlinks,
         "sparse 1 GiB event file": sparse_gigabyte, "64 MB of zeros as an event file": zeros_64mb,
         "tree ~2000 deep": deep_tree, "JSON 100k deep": deep_json, "JSON of 17 MiB": huge_json}

MEASURE = """
import resource, subprocess, sys, time
began = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
print(time.perf_counter() - began, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)
"""


def measure(logdir: Path) -> tuple[float, float, int]:
    command = [sys.executable, "run.py", "review", str(logdir), "--format", "json"]
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], cwd=ROOT, capture_output=True,
                         text=True, timeout=60).stdout.split()
    return float(out[0]), int(out[1]) / 1024, int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'case':34} {'median s':>9} {'max s':>7} {'peak MB':>8} {'+MB':>6}  exit")
    baseline = None
    for name, build in CASES.items():
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            top = Path(tmp) / "logs"
            clean(top)
            kept = build(top) if build else None
            runs = [measure(top) for _ in range(args.repeats)]
            if kept is not None:
                kept.close()
            if name == "tree ~2000 deep":
                subprocess.run(["rm", "-rf", str(top / "d")], check=True)
        times, peaks, codes = zip(*runs)
        peak = max(peaks)
        baseline = peak if baseline is None else baseline
        print(f"{name:34} {statistics.median(times):9.2f} {max(times):7.2f} {peak:8.0f} "
              f"{peak - baseline:6.0f}  {sorted(set(codes))}")


if __name__ == "__main__":
    main()
