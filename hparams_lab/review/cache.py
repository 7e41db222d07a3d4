"""review's cache: each event file's summary (review.events.FileSummary), and each trial.json's
id and status, kept between runs.

Where: the user's cache directory, `$XDG_CACHE_HOME/hparams_lab/review/` (else
`~/.cache/hparams_lab/review/`), never the logdir. One JSON file per logdir (named by a
hash of its real path) holds an entry per event file below it: the file's real path
relative to the logdir, its size, mtime_ns, inode and device, and its summary (and one
per trial.json, its id and status, in the same way: reading 1000 of them was ~25 ms of a
warm review). An entry
is used only when all four still match; a file whose mtime is less than
`SETTLED_NS` old is not cached (it may still change within one timestamp tick).

A cache file is data, like the logs: it is parsed as JSON (never unpickled) from a
regular file of ours of at most MAX_FILE_BYTES, its numbers packed in two base64
arrays (int64 and float64, little-endian: JSON's number parsing was most of a warm
review's cache time), and an entry that is not exactly what this module writes is a
miss. A cache directory that cannot be created, read
or written means no cache, silently. At most MAX_FILES cache files are kept (the
least recently written go first), and none over MAX_FILE_BYTES is written.

Off with `review --no-cache` or HPARAMS_LAB_REVIEW_CACHE=off (or 0, no, false).
"""

import json
import os
import stat
import sys
import time

from hparams_lab.core.trial import TrialStatus
from hparams_lab.review.events import Config, FileSummary

ENV = "HPARAMS_LAB_REVIEW_CACHE"
OFF = ("0", "off", "no", "false")
FORMAT = "hparams_lab review cache"
VERSION = 4
MAX_FILES = 32
MAX_FILE_BYTES = 64 * 1024 * 1024
SETTLED_NS = 2_000_000_000
_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
_STATUSES = {str(status): status for status in TrialStatus}


def directory():
    """The cache directory, whether or not it exists; None when the cache is off."""
    if os.environ.get(ENV, "").strip().lower() in OFF:
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG rule: a relative path is to be ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hparams_lab", "review")


def open_cache(root):
    """The Cache of the logdir whose real path is root; None when the cache is off."""
    where = directory()
    if where is None:
        return None
    import hashlib

    name = hashlib.sha256(os.fsencode(root)).hexdigest()[:32] + ".json"
    return Cache(where, name, root, _load(os.path.join(where, name), root))


class Cache:
    """The entries of one logdir: get them, put new ones, save what this run met."""

    def __init__(self, where, name, root, loaded):
        self.where, self.name, self.root = where, name, root
        self.old, self.slots, self.old_trials = loaded
        self.new, self.new_trials, self.changed = {}, {}, False

    def get(self, key, identity):
        """(FileSummary, warning) cached for the file at real path key (relative to the root)
        with identity (size, mtime_ns, ino, dev), or None."""
        entry = self.old.get(key)
        if entry is None or entry[:4] != list(identity):
            return None
        try:
            found = _decode(entry[4:], self.slots)
        except (TypeError, ValueError, KeyError, IndexError, OverflowError):
            found = None
        if found is None:
            return None
        self.new[key] = (identity, *found)
        return found

    def put(self, key, identity, summary, warning):
        if _unsettled(identity):
            return
        self.new[key] = (identity, summary, warning)
        self.changed = True

    def get_trial(self, key, identity):
        """{"id", "status"} cached for the trial.json at real path key with identity, or None."""
        entry = self.old_trials.get(key)
        if entry is None or entry[:4] != list(identity):
            return None
        self.new_trials[key] = entry
        return {"id": entry[4], "status": entry[5]}

    def put_trial(self, key, identity, record):
        if _unsettled(identity):
            return
        self.new_trials[key] = [*identity, record["id"], record["status"]]
        self.changed = True

    def save(self):
        """Write the entries met this run (and only those), if anything changed; never raises."""
        if not self.changed and self.new.keys() == self.old.keys() and self.new_trials.keys() == self.old_trials.keys():
            return
        try:
            data = _encode(self.root, self.new, self.new_trials)
        except (TypeError, ValueError, OverflowError, RecursionError):  # pragma: no cover - ours to write
            return
        if len(data) > MAX_FILE_BYTES:
            return
        try:
            os.makedirs(self.where, mode=0o700, exist_ok=True)
            _write(os.path.join(self.where, self.name), data)
            _evict(self.where, keep=self.name)
        except OSError:
            pass


def _unsettled(identity):
    """Whether a file of this (size, mtime_ns, ...) changed too recently to be cached."""
    return identity[1] > time.time_ns() - SETTLED_NS


def _load(path, root):
    """(entries, series slots) of a cache file; nothing unless it is what save writes."""
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION \
            or data.get("root") != root or not isinstance(data.get("files"), dict) \
            or not isinstance(data.get("trials"), dict):
        return {}, [], {}
    try:
        ints, floats = _numbers(data.get("ints"), "q"), _numbers(data.get("floats"), "d")
    except (TypeError, ValueError):  # binascii.Error is a ValueError
        return {}, [], {}
    if len(ints) != _INTS * (len(floats) // _FLOATS) or len(floats) % _FLOATS:
        return {}, [], {}
    return {key: entry for key, entry in data["files"].items()
            if type(entry) is list and len(entry) == 11 and all(type(n) is int for n in entry[:4])}, \
        _slots(ints, floats), \
        {key: entry for key, entry in data["trials"].items()
         if type(entry) is list and len(entry) == 6 and all(type(n) is int for n in entry[:4])
         and all(text is None or type(text) is str for text in entry[4:])}


def _read_json(path):
    """The JSON value of a regular file of ours of at most MAX_FILE_BYTES, or None."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size > MAX_FILE_BYTES:
            return None
        chunks, size = [], 0
        while size <= info.st_size:
            want = info.st_size + 1 - size
            chunk = os.read(fd, want)
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < want:  # the end (a regular file reads short only there)
                break
        return json.loads(b"".join(chunks))
    except (OSError, ValueError, RecursionError, MemoryError):  # UnicodeDecodeError is a ValueError
        return None
    finally:
        os.close(fd)


# review's noise levels (review.summary), by a hash of what they are computed from: a warm
# review reads every summary from the cache, and the noise levels' shuffles are then the
# only use of numpy (~70 ms to import on a 2-core VM, more than the rest of its reading).
NOISE_FILE = "noise-levels.memo"  # not .json: the logdirs' cache files are evicted by count
NOISE_ENTRIES = 64


class NoiseLevels:
    """The noise levels computed before, read once; a new one is added and the file rewritten."""

    def __init__(self, where):
        self.where, self.entries = where, None

    def get(self, key, count, compute):
        """The ``count`` levels (floats or None) kept for key, else compute()'s, kept."""
        if self.entries is None:
            data = _read_json(os.path.join(self.where, NOISE_FILE))
            ok = isinstance(data, dict) and data.get("format") == FORMAT and data.get("version") == VERSION \
                and isinstance(data.get("noise"), dict)
            self.entries = data["noise"] if ok else {}
        found = self.entries.get(key)
        if type(found) is list and len(found) == count and all(v is None or type(v) is float for v in found):
            return found
        levels = compute()
        self.entries.pop(key, None)
        self.entries[key] = levels
        for old in list(self.entries)[:-NOISE_ENTRIES]:
            del self.entries[old]
        try:
            os.makedirs(self.where, mode=0o700, exist_ok=True)
            _write(os.path.join(self.where, NOISE_FILE),
                   json.dumps({"format": FORMAT, "version": VERSION, "noise": self.entries}).encode())
        except (OSError, ValueError):
            pass
        return levels


def noise_levels():
    """The kept noise levels, or None when the cache is off."""
    where = directory()
    return None if where is None else NoiseLevels(where)


def _write(path, data):
    """Replace path by a file holding data, atomically (a temporary file beside it, renamed)."""
    temporary = f"{path}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(temporary, flags, 0o600)
    except FileExistsError:  # left by a process of this pid that died writing
        os.unlink(temporary)
        fd = os.open(temporary, flags, 0o600)
    try:
        with open(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _evict(where, keep):
    """Delete the least recently written cache files beyond MAX_FILES (never keep)."""
    found = []
    with os.scandir(where) as entries:
        for entry in entries:
            if entry.name.endswith(".json") and entry.name != keep and entry.is_file(follow_symlinks=False):
                found.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.path))
    found.sort(reverse=True)
    for _, path in found[MAX_FILES - 1:]:
        try:
            os.unlink(path)
        except OSError:
            pass


# Each series' numbers: these ints (its high and low steps 0 where it has none) and floats.
_INTS = 6  # count, first step, last step, high step, low step, has high and low (0 or 1)
_FLOATS = 4  # first, last, high, low


def _numbers(text, typecode):
    import array
    import base64

    numbers = array.array(typecode, base64.b64decode(text.encode("ascii"), validate=True))
    if sys.byteorder != "little":
        numbers.byteswap()
    return numbers.tolist()


def _slots(ints, floats):
    """Each series slot's Stats tuple, or None where its numbers are not what _encode writes."""
    counts, first_steps, last_steps, high_steps, low_steps, somes = (ints[k::_INTS] for k in range(_INTS))
    firsts, lasts, highs, lows = (floats[k::_FLOATS] for k in range(_FLOATS))
    slots = list(zip(counts, first_steps, firsts, last_steps, lasts, high_steps, highs, low_steps, lows))
    for index, (count, some) in enumerate(zip(counts, somes)):
        if some != 1 or count < 1:
            slots[index] = (*slots[index][:5], None, None, None, None) if some == 0 and count >= 1 else None
    return slots


def _packed(numbers, typecode):
    import array
    import base64

    numbers = array.array(typecode, numbers)
    if sys.byteorder != "little":
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii")


def _encode(root, entries, trials):
    """The bytes of a cache file of entries {key: (identity, FileSummary, warning)} and trial
    entries {key: [*identity, id, status]}."""
    files, ints, floats = {}, [], []
    for key, (identity, summary, warning) in entries.items():
        experiment = summary.experiment
        files[key] = [*identity, warning, summary.hparams, None if summary.status is None else str(summary.status),
                      None if experiment is None else [experiment.hparam_names, experiment.metrics,
                                                       experiment.intervals],
                      summary.undecodable, list(summary.series), len(ints) // _INTS]
        for count, first_step, first, last_step, last, high_step, high, low_step, low in summary.series.values():
            some = high_step is not None
            ints += (count, first_step, last_step, high_step if some else 0, low_step if some else 0, int(some))
            floats += (first, last, high if some else 0.0, low if some else 0.0)
    text = json.dumps({"format": FORMAT, "version": VERSION, "root": root, "files": files, "trials": trials,
                       "ints": _packed(ints, "q"), "floats": _packed(floats, "d")}, separators=(",", ":"))
    return text.encode("ascii")  # json.dumps escapes everything else


def _decode(fields, slots):
    """(FileSummary, warning) from an entry's fields after its identity and the cache file's
    series slots; None if they are not exactly what _encode writes."""
    warning, hparams, status, experiment, undecodable, tags, at = fields
    summary = FileSummary()
    if not (warning is None or type(warning) is str) or type(undecodable) is not int or undecodable < 0:
        return None
    summary.undecodable = undecodable
    if hparams is not None:
        if type(hparams) is not dict or not all(
                type(value) in (float, str, bool) or value is None for value in hparams.values()):
            return None
        summary.hparams = hparams
    if status is not None:
        summary.status = _STATUSES[status]
    if experiment is not None:
        names, metrics, intervals = experiment
        if not (type(names) is list and all(type(name) is str for name in names) and type(metrics) is list
                and all(type(metric) is list and len(metric) == 2 and type(metric[0]) is str
                        and type(metric[1]) is str for metric in metrics) and type(intervals) is list
                and all(type(interval) is list and len(interval) == 3 and type(interval[0]) is str
                        and type(interval[1]) is float and type(interval[2]) is float for interval in intervals)):
            return None
        summary.experiment = Config(names, metrics, intervals)
    if type(tags) is not list or type(at) is not int or at < 0 or at + len(tags) > len(slots):
        return None
    series = summary.series = dict(zip(tags, slots[at:at + len(tags)]))
    if len(series) != len(tags) or None in series.values() or not all(type(tag) is str for tag in tags):
        return None
    return summary, warning
