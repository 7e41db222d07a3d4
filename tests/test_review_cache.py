"""review's cache of event-file summaries: hits, misses, invalidation, damaged or hostile
cache files, a cache directory that cannot be written, the opt-out, and output identical
to a review without it."""

import array
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import review_samples as samples
import runner_style_logs as logs
from hparams_lab.review import cache, reader, tfrecord

ROOT = Path(__file__).resolve().parents[1]


def settle(root, seconds=60):
    """Date every file under root back: files changed within cache.SETTLED_NS are not cached."""
    date_back([root, *root.rglob("*")], seconds)


def date_back(paths, seconds=30):
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then), follow_symlinks=False)


@pytest.fixture
def study(tmp_path):
    root = samples.write_small_study(tmp_path / "logs")
    settle(root)
    return root


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv(cache.ENV, raising=False)
    return home / "hparams_lab" / "review"


@pytest.fixture
def reads(monkeypatch):
    """The event files review reads (not answered by the cache), in order."""
    seen = []
    original = tfrecord._read_file

    def counting(path, base):
        seen.append(str(path))
        return original(path, base)

    monkeypatch.setattr(tfrecord, "_read_file", counting)
    return seen


def event_files(root):
    return sorted(str(path) for path in root.rglob("*tfevents*"))


def snapshot(loaded):
    """Everything review's output is made of, comparable with ==."""
    rows = [(row.experiment, row.run, row.trial_id, row.status, row.hparams,
             {key: (s.last, s.last_step, s.high, s.high_step, s.low, s.low_step, s.count)
              for key, s in row.series.items()}) for row in loaded.rows]
    return rows, loaded.warnings, loaded.hparam_names, loaded.metric_keys, loaded.declared_metric, loaded.directions


def test_a_second_review_reads_no_event_file_and_gives_the_same_rows(study, cache_home, reads):
    first = snapshot(reader.load(study, cache=True))
    assert sorted(reads) == event_files(study)
    (written,) = list(cache_home.iterdir())
    assert written.suffix == ".json" and oct(written.stat().st_mode & 0o777) == "0o600"
    reads.clear()
    assert snapshot(reader.load(study, cache=True)) == first
    assert reads == []
    assert snapshot(reader.load(study)) == first  # and without the cache
    assert not [path for path in study.rglob("*") if "cache" in path.name]  # nothing written in the logdir


def test_a_file_that_grew_or_changed_is_read_again_alone(study, cache_home, reads):
    reader.load(study, cache=True)
    before = set(event_files(study))
    grown = next((study / "alpha" / "t1" / "validation").glob("*tfevents*"))
    logs.write_events(study / "beta" / "u1", [logs.summary_event([logs.scalar_value("late", 0.5)], step=9)])
    (new,) = set(event_files(study)) - before  # another file in a run: its first review
    with open(grown, "ab") as file:  # and a record appended to this one: its size changes
        file.write(tfrecord_record(logs.summary_event([logs.scalar_value("epoch_accuracy", 0.99)], step=3)))
    date_back([grown, new])
    reads.clear()
    loaded = reader.load(study, cache=True)
    assert sorted(reads) == sorted([str(grown), new])
    rows = {row.run: row for row in loaded.rows}
    assert rows["alpha/t1"].series["validation/epoch_accuracy"].last == pytest.approx(0.99)
    assert rows["beta/u1"].series["late"].last == 0.5
    assert snapshot(loaded) == snapshot(reader.load(study))

    same_size = next((study / "alpha" / "t2").glob("*tfevents*"))
    same_size.write_bytes(same_size.read_bytes())  # the same size, a new mtime
    date_back([same_size], seconds=20)
    reads.clear()
    reader.load(study, cache=True)
    assert reads == [str(same_size)]

    replaced = next((study / "alpha" / "t3").glob("*tfevents*"))  # same size and mtime, another inode
    info = replaced.stat()
    copy = replaced.with_name("copy")
    copy.write_bytes(replaced.read_bytes())
    os.utime(copy, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(copy, replaced)
    reads.clear()
    reader.load(study, cache=True)
    assert reads == [str(replaced)]


def tfrecord_record(event):
    data = event.SerializeToString()
    length = len(data).to_bytes(8, "little")
    return (length + tfrecord.masked_crc32c(length).to_bytes(4, "little") + data
            + tfrecord.masked_crc32c(data).to_bytes(4, "little"))


def test_a_file_changed_within_the_last_seconds_is_not_cached(tmp_path, cache_home, reads):
    root = tmp_path / "fresh"
    samples.write_session(root / "run", {"x": 1}, [("score", 0, 0.5)], end_status="SUCCESS")
    reader.load(root, cache=True)
    reader.load(root, cache=True)
    assert reads == event_files(root) * 2


# An entry: [size, mtime_ns, ino, dev, warning, hparams, status, config, undecodable, tags, first series' slot]
ENTRY_DAMAGE = {"hparam a list": (5, {"units": [1, 2]}), "no status": (6, "MAYBE"), "tag not text": (9, [3]),
                "numbers elsewhere": (10, 10**9)}


@pytest.mark.parametrize("damage", ["not json", "truncated", "hparam a list", "no status", "tag not text",
                                    "numbers elsewhere", "numbers not base64", "numbers cut", "other root", "deep",
                                    "huge", "symlink", "empty"])
def test_a_damaged_or_hostile_cache_file_is_a_miss(study, cache_home, reads, damage, tmp_path):
    expected = snapshot(reader.load(study, cache=True))
    (path,) = list(cache_home.iterdir())
    text = path.read_text()
    if damage == "not json":
        path.write_text("{not json")
    elif damage == "truncated":
        path.write_text(text[:len(text) // 2])
    elif damage in ENTRY_DAMAGE:
        data = json.loads(text)
        field, value = ENTRY_DAMAGE[damage]
        for entry in data["files"].values():
            entry[field] = value
        path.write_text(json.dumps(data))
    elif damage in ("numbers not base64", "numbers cut"):
        data = json.loads(text)
        data["ints"] = "not base64!" if damage == "numbers not base64" else data["ints"][:-12]
        path.write_text(json.dumps(data))
    elif damage == "other root":
        data = json.loads(text)
        data["root"] = "/elsewhere"
        path.write_text(json.dumps(data))
    elif damage == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "huge":
        os.truncate(path, cache.MAX_FILE_BYTES + 1)
    elif damage == "symlink":
        target = tmp_path / "planted.json"
        target.write_text(text)
        path.unlink()
        path.symlink_to(target)
    elif damage == "empty":
        path.write_text("")
    reads.clear()
    assert snapshot(reader.load(study, cache=True)) == expected
    assert sorted(reads) == event_files(study)  # every entry a miss, read afresh
    reads.clear()
    reader.load(study, cache=True)
    assert reads == []  # written anew
    if damage == "symlink":  # replaced, never followed
        assert not path.is_symlink() and (tmp_path / "planted.json").read_text() == text


def test_a_hostile_entry_in_a_sound_file_is_a_miss_alone(study, cache_home, reads):
    reader.load(study, cache=True)
    (path,) = list(cache_home.iterdir())
    data = json.loads(path.read_text())
    key = next(key for key, entry in sorted(data["files"].items()) if entry[9])  # a file with scalars
    ints = array.array("q", base64.b64decode(data["ints"]))
    ints[6 * data["files"][key][10]] = 0  # its first series counts no point
    data["ints"] = base64.b64encode(ints.tobytes()).decode()
    path.write_text(json.dumps(data))
    reads.clear()
    reader.load(study, cache=True)
    assert [os.path.relpath(p, os.path.realpath(study)) for p in reads] == [key]


def test_a_cache_directory_that_cannot_be_written_means_no_cache_and_no_noise(study, tmp_path, monkeypatch, reads):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    expected = snapshot(reader.load(study))
    assert snapshot(reader.load(study, cache=True)) == expected
    assert snapshot(reader.load(study, cache=True)) == expected
    assert len(reads) == 3 * len(event_files(study))
    done = subprocess.run([sys.executable, "run.py", "review", str(study)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "XDG_CACHE_HOME": str(blocker)})
    assert done.returncode == 0 and done.stderr == ""


def test_no_cache_flag_and_environment_variable(study, cache_home, reads, monkeypatch):
    from click.testing import CliRunner

    from hparams_lab.cli.review import review

    assert CliRunner().invoke(review, [str(study), "--no-cache"]).exit_code == 0
    assert not cache_home.exists()
    monkeypatch.setenv(cache.ENV, "off")
    assert CliRunner().invoke(review, [str(study)]).exit_code == 0
    assert not cache_home.exists()
    monkeypatch.delenv(cache.ENV)
    assert CliRunner().invoke(review, [str(study)]).exit_code == 0
    assert cache_home.exists()
    reads.clear()
    assert CliRunner().invoke(review, [str(study), "--no-cache"]).exit_code == 0
    assert sorted(reads) == event_files(study)  # the cache there is not used either


def test_old_cache_files_are_evicted(tmp_path, cache_home, monkeypatch):
    monkeypatch.setattr(cache, "MAX_FILES", 3)
    for index in range(5):
        root = tmp_path / f"logs{index}"
        samples.write_session(root / "run", {"x": index}, [("score", 0, 0.5)], end_status="SUCCESS")
        settle(root, seconds=60 - index)
        reader.load(root, cache=True)
        time.sleep(0.01)  # distinct mtimes
    assert len(list(cache_home.iterdir())) == 3


def test_the_cache_follows_the_xdg_rule(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.directory() == str(tmp_path / "hparams_lab" / "review")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the spec says
    assert cache.directory() == os.path.join(os.path.expanduser("~"), ".cache", "hparams_lab", "review")
    for off in ("0", "off", "no", "false", "OFF"):
        monkeypatch.setenv(cache.ENV, off)
        assert cache.directory() is None


@pytest.mark.parametrize("options", [[], ["--format", "json"], ["--format", "csv"], ["--format", "markdown"]])
def test_cached_and_uncached_output_are_the_same_bytes(tmp_path, options):
    root = tmp_path / "logs"
    samples.write_small_study(root / "study")
    samples.write_hostile_logs(root / "hostile")
    samples.write_session(root / "odd" / "run", {"x": 1.5, "units": 8}, [  # numbers JSON has no words for
        ("score", 0, float("nan")), ("score", 1, -0.0), ("score", 2**40, float("inf")), ("score", 3, 0.0),
        ("loss", -5, float("-inf"))], end_status="SUCCESS")
    broken = next((root / "study" / "alpha" / "t2" / "train").glob("*tfevents*"))
    data = bytearray(broken.read_bytes())
    data[60] ^= 0xFF  # a damaged record: its warning must come back from the cache too
    broken.write_bytes(bytes(data))
    settle(root)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "250"}

    def review(*extra):
        done = subprocess.run([sys.executable, "run.py", "review", str(root), *options, *extra], cwd=ROOT,
                              capture_output=True, env=env)
        return done.returncode, done.stdout, done.stderr

    cold = review("--no-cache")
    assert cold[0] == 0 and b"warning: " in cold[2]
    assert review() == cold  # filling the cache
    assert review() == cold  # from the cache
    assert len(list((tmp_path / "cache" / "hparams_lab" / "review").glob("*.json"))) == 1


def test_an_hparams_config_comes_back_from_the_cache_whole(tmp_path, cache_home, reads):
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp

    root = tmp_path / "logs"
    config = hp.hparams_config_pb([hp.HParam("lr", hp.RealInterval(0.001, 0.1)), hp.HParam("units", hp.IntInterval(8, 64)),
                                   hp.HParam("opt", hp.Discrete(["adam", "sgd"]))], [hp.Metric("score", group="val")])
    logs.write_events(root, [event_pb2.Event(summary=config)])
    samples.write_session(root / "run", {"lr": 0.01, "units": 8, "opt": "adam"}, [("score", 0, 0.5)])
    settle(root)

    def config_of_root():
        tree = reader.walk_logs(str(root))
        found = cache.open_cache(tree.root)
        runs, _ = reader.read_runs(tree.event_files, found, tree.identities)
        found.save()
        experiment = runs[str(root)].experiment
        return experiment.hparam_names, experiment.metrics, experiment.intervals

    read = config_of_root()
    assert read == (["lr", "units", "opt"], [["val", "score"]], [["lr", 0.001, 0.1], ["units", 8.0, 64.0]])
    reads.clear()
    assert config_of_root() == read and reads == []


NUMPY_LOADED = ("import sys\nfrom hparams_lab.cli.app import main\ntry:\n    main(sys.argv[1:])\n"
                "except SystemExit:\n    pass\nprint('numpy' in sys.modules, file=sys.stderr)\n")


def test_a_warm_review_reads_the_noise_levels_back_and_never_loads_numpy(tmp_path):
    """The notes' noise levels (numpy's shuffles) are kept beside the summaries: a warm review
    gives the same notes without numpy; a damaged file of them is a miss."""
    root = tmp_path / "logs"
    for index in range(12):  # enough runs for noise levels (review.summary.MIN_NOISE_RUNS)
        samples.write_session(root / f"run{index}", {"x": index % 2, "units": 8 * (1 + index % 3)},
                              [("score", 0, 0.5 + 0.01 * index)], end_status="SUCCESS")
    settle(root)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def review(*extra):
        done = subprocess.run([sys.executable, "-c", NUMPY_LOADED, "review", str(root), *extra], cwd=ROOT,
                              capture_output=True, text=True, env=env)
        *notes, loaded = done.stderr.splitlines()
        return done.stdout, notes, loaded

    cold = review("--no-cache")
    assert any("beyond noise" in line for line in cold[1]), cold
    assert review() == cold  # reads the logs (numpy decodes them), keeps summaries and noise levels
    memo = tmp_path / "cache" / "hparams_lab" / "review" / cache.NOISE_FILE
    assert memo.is_file()
    assert review() == (*cold[:2], "False")  # all from the cache: numpy never loaded
    kept = json.loads(memo.read_text())
    for key in kept["noise"]:
        kept["noise"][key] = ["not a level"]
    memo.write_text(json.dumps(kept))
    assert review()[:2] == cold[:2]  # a damaged entry: computed again
    memo.write_text("{not json")
    assert review()[:2] == cold[:2]


@pytest.fixture
def trial_reads(monkeypatch):
    """The trial.json files review reads (not answered by the cache)."""
    seen = []
    original = reader._read_json

    def counting(path, warnings):
        if path.endswith(reader.TRIAL_FILE):
            seen.append(path)
        return original(path, warnings)

    monkeypatch.setattr(reader, "_read_json", counting)
    return seen


def test_trial_files_come_from_the_cache_until_they_change(study, cache_home, trial_reads):
    for run, status in (("alpha/t1", "PRUNED"), ("alpha/t2", "FAILURE")):
        (study / run / "trial.json").write_text(json.dumps({"id": run.replace("/", "-"), "status": status}))
    (study / "alpha" / "t3" / "trial.json").write_text('{"id": 7, "status": ""}')  # text of a number; no status
    settle(study)
    first = snapshot(reader.load(study, cache=True))
    assert sorted(trial_reads) == sorted(str(path) for path in study.rglob("trial.json"))  # the sample's own too
    trial_reads.clear()
    assert snapshot(reader.load(study, cache=True)) == first
    assert trial_reads == []
    assert snapshot(reader.load(study)) == first  # read again without the cache: the same
    rows = {row.run: row for row in reader.load(study, cache=True).rows}
    assert (rows["alpha/t1"].trial_id, rows["alpha/t1"].status) == ("alpha-t1", "PRUNED")
    assert rows["alpha/t3"].trial_id == "7"

    changed = study / "alpha" / "t2" / "trial.json"
    changed.write_text(json.dumps({"id": "alpha-t2", "status": "PRUNED"}))
    date_back([changed])
    trial_reads.clear()
    rows = {row.run: row for row in reader.load(study, cache=True).rows}
    assert trial_reads == [str(changed)]
    assert rows["alpha/t2"].status == "PRUNED"

    (path,) = list(cache_home.iterdir())  # a hostile entry: not what the cache writes, a miss
    data = json.loads(path.read_text())
    key = next(key for key in data["trials"] if key.startswith("alpha/t1"))
    data["trials"][key][4] = {"not": "text"}
    path.write_text(json.dumps(data))
    trial_reads.clear()
    reader.load(study, cache=True)
    assert trial_reads == [str(study / "alpha" / "t1" / "trial.json")]
