"""`review` survives any directory: FIFOs, symlinks out and in loops, sparse event files,
deep trees, huge or deeply nested JSON. Each case beside a valid session, run as the real
command in a subprocess with a timeout, so that a hang fails the test instead of the suite."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import review_samples as samples

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 20  # generous: each case takes well under a second; this only turns a hang into a failure


@pytest.fixture
def logdir(tmp_path):
    root = tmp_path / "logs"
    samples.write_session(root / "good", {"units": 8}, [("score", 0, 0.5)], end_status="SUCCESS")
    return root


def review(logdir):
    done = subprocess.run([sys.executable, "run.py", "review", str(logdir), "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    runs = [row["run"] for row in json.loads(done.stdout)]
    assert "good" in runs, runs
    return runs, [line for line in done.stderr.splitlines() if line.startswith("warning: ")]


def test_a_fifo_named_like_an_event_file_is_skipped_never_opened(logdir):
    fifo = logdir / "good" / "events.out.tfevents.1.fifo"
    os.mkfifo(fifo)
    _, warnings = review(logdir)
    assert warnings == [f"warning: {fifo}: skipped, not a regular file"]


def test_a_socket_named_like_an_event_file_is_skipped(logdir):
    import socket

    path = logdir / "s" / "events.out.tfevents.1.sock"
    path.parent.mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        try:
            server.bind(str(path))
        except OSError:  # the path is too long for a socket address here
            pytest.skip("socket path too long")
        _, warnings = review(logdir)
    assert warnings == [f"warning: {path}: skipped, not a regular file"]


def test_a_device_file_named_like_an_event_file_is_skipped_never_opened(logdir):
    import stat

    device = logdir / "good" / "events.out.tfevents.1.zero"
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # what /dev/zero is: endless zeros
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root here")
    _, warnings = review(logdir)
    assert warnings == [f"warning: {device}: skipped, not a regular file"]


def test_symlinks_out_of_the_tree_dangling_and_in_loops(logdir, tmp_path):
    outside = tmp_path / "outside"
    samples.write_session(outside / "stranger", {"units": 99}, [("score", 0, 0.9)], end_status="SUCCESS")
    (logdir / "out").symlink_to(outside, target_is_directory=True)
    event = next((outside / "stranger").glob("events*"))
    (logdir / "good" / "events.out.tfevents.2.link").symlink_to(event)
    (logdir / "good" / "events.out.tfevents.3.dangling").symlink_to(tmp_path / "nowhere")
    (logdir / "good" / "loop").symlink_to(logdir, target_is_directory=True)  # a loop back to the top
    (logdir / "good" / "self").symlink_to(logdir / "good", target_is_directory=True)
    (logdir / "latest").symlink_to(logdir / "good", target_is_directory=True)  # inside: adds nothing
    runs, warnings = review(logdir)
    assert runs == ["good"]  # once, under its real name; nothing from outside
    assert sorted(warnings) == sorted([
        f"warning: {logdir / 'good' / 'events.out.tfevents.2.link'}: skipped, a symlink leading out of the logdir",
        f"warning: {logdir / 'good' / 'events.out.tfevents.3.dangling'}: skipped, a broken symlink "
        "(No such file or directory)",
        f"warning: {logdir / 'out'}: skipped, a symlink leading out of the logdir",
    ])


def test_a_symlink_inside_the_tree_is_followed_once_if_its_directory_is_not_walked(logdir, tmp_path):
    # A symlinked file inside the tree is read like the file itself.
    other = logdir / "other"
    samples.write_session(other, {"units": 16}, [("score", 0, 0.25)], end_status="SUCCESS")
    linked = logdir / "linked"
    linked.mkdir()
    (linked / "events.out.tfevents.9.link").symlink_to(next(other.glob("events*")))
    runs, warnings = review(logdir)
    assert sorted(runs) == ["good", "linked", "other"] and warnings == []


def test_a_sparse_gigabyte_event_file_is_abandoned_at_its_first_bad_length(logdir):
    sparse = logdir / "good" / "events.out.tfevents.2.sparse"
    with open(sparse, "wb") as file:
        file.truncate(1 << 30)
    # A valid file followed by a gigabyte of zeros keeps its records.
    prefixed = logdir / "prefixed"
    samples.write_session(prefixed, {"units": 4}, [("score", 0, 0.125)], end_status="SUCCESS")
    event = next(prefixed.glob("events*"))
    good_size = event.stat().st_size
    with open(event, "r+b") as file:
        file.truncate(1 << 30)
    runs, warnings = review(logdir)
    assert sorted(runs) == ["good", "prefixed"]
    assert sorted(warnings) == sorted([
        f"warning: {event}: corrupted: bad length checksum at byte {good_size}; read the 4 record(s) before it",
        f"warning: {sparse}: corrupted: bad length checksum at byte 0; read the 0 record(s) before it",
    ])


def nest(top, depth):
    """top/d/d/.../d, depth directories, made without recursion (os.makedirs recurses)."""
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


def unnest(top):
    """Removes what nest() made, deepest first and without recursion: pytest's own clean-up
    of old temp dirs (shutil.rmtree, recursive on Python 3.11) would fail on it later."""
    subprocess.run(["rm", "-rf", str(Path(top) / "d")], check=True)


def test_a_tree_two_thousand_directories_deep(logdir):
    # 2000 levels of "d/" are 4000 characters: below PATH_MAX (4096) from a short tmp_path.
    depth = min(2000, (4090 - len(str(logdir))) // 2)
    assert depth > 1500
    nest(logdir, depth)
    try:
        samples.write_session(Path(os.path.join(logdir, *["d"] * 11)), {"units": 2}, [("score", 0, 0.0)])
        runs, warnings = review(logdir)
    finally:
        unnest(logdir)
    assert sorted(runs) == ["d/" + "/".join(["d"] * 10), "good"] and warnings == []


@pytest.mark.parametrize("name", ["experiment.json", "trial.json"])
def test_json_nested_a_hundred_thousand_deep_is_a_warning(logdir, name):
    path = logdir / "good" / name
    path.write_text("[" * 100_000)
    _, warnings = review(logdir)
    assert warnings == [f"warning: {path}: ignored, JSON nested too deep to read"]


@pytest.mark.parametrize("name", ["experiment.json", "trial.json"])
def test_json_over_the_size_limit_is_not_parsed(logdir, name):
    path = logdir / "good" / name
    with open(path, "w") as file:
        file.write('{"metric": "score", "pad": "')
        file.truncate(17 << 20)  # 17 MiB of NULs: would be invalid JSON, but is never read
    _, warnings = review(logdir)
    assert warnings == [f"warning: {path}: ignored, {17 << 20} bytes: over 16 MiB"]


def test_a_fifo_named_experiment_json_is_skipped(logdir):
    os.mkfifo(logdir / "experiment.json")
    _, warnings = review(logdir)
    assert warnings == [f"warning: {logdir / 'experiment.json'}: skipped, not a regular file"]
