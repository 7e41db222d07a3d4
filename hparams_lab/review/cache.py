"""review's cache: each event file's summary (review.events.FileSummary), kept between runs.

Where: the user's cache directory, `$XDG_CACHE_HOME/hparams_lab/review/` (else
`~/.cache/hparams_lab/review/`), never the logdir. One JSON file per logdir (named by a
hash of its real path) holds an entry per event file below it: the file's real path
relative to the logdir, its size, mtime_ns, inode and device, and its summary. An entry
is used only when all four still match; a file whose mtime is less than
`SETTLED_NS` old is not cached (it may still change within one timestamp tick).

A cache file is data, like the logs: it is parsed as JSON (never unpickled) from a
regular file of ours of at most MAX_FILE_BYTES, and an entry that is not exactly
what this module writes is a miss. A cache directory that cannot be created, read
or written means no cache, silently. At most MAX_FILES cache files are kept (the
least recently written go first), and none over MAX_FILE_BYTES is written.

Off with `review --no-cache` or HPARAMS_LAB_REVIEW_CACHE=off (or 0, no, false).
"""

import json
import os
import stat
import time

from hparams_lab.core.trial import TrialStatus
from hparams_lab.review.events import Config, FileSummary

ENV = "HPARAMS_LAB_REVIEW_CACHE"
OFF = ("0", "off", "no", "false")
FORMAT = "hparams_lab review cache"
VERSION = 1
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

    def __init__(self, where, name, root, entries):
        self.where, self.name, self.root = where, name, root
        self.old, self.new, self.changed = entries, {}, False

    def get(self, key, identity):
        """(FileSummary, warning) cached for the file at real path key (relative to the root)
        with identity (size, mtime_ns, ino, dev), or None."""
        entry = self.old.get(key)
        if entry is None or entry[:4] != list(identity):
            return None
        try:
            found = _decode(entry[4:])
        except (TypeError, ValueError, KeyError, IndexError, OverflowError):
            found = None
        if found is None:
            return None
        self.new[key] = entry
        return found

    def put(self, key, identity, summary, warning):
        if identity[1] > time.time_ns() - SETTLED_NS:
            return
        self.new[key] = [*identity, *_encode(summary, warning)]
        self.changed = True

    def save(self):
        """Write the entries met this run (and only those), if anything changed; never raises."""
        if not self.changed and self.new.keys() == self.old.keys():
            return
        try:
            text = json.dumps({"format": FORMAT, "version": VERSION, "root": self.root, "files": self.new},
                              separators=(",", ":"))
        except (TypeError, ValueError, OverflowError, RecursionError):  # pragma: no cover - ours to write
            return
        data = text.encode("ascii")  # json.dumps escapes everything else
        if len(data) > MAX_FILE_BYTES:
            return
        try:
            os.makedirs(self.where, mode=0o700, exist_ok=True)
            _write(os.path.join(self.where, self.name), data)
            _evict(self.where, keep=self.name)
        except OSError:
            pass


def _load(path, root):
    """The entries of a cache file, {} unless it is exactly what save writes."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except OSError:
        return {}
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size > MAX_FILE_BYTES:
            return {}
        chunks, size = [], 0
        while size <= info.st_size:
            want = info.st_size + 1 - size
            chunk = os.read(fd, want)
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < want:  # the end (a regular file reads short only there)
                break
        data = json.loads(b"".join(chunks))
    except (OSError, ValueError, RecursionError, MemoryError):  # UnicodeDecodeError is a ValueError
        return {}
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION \
            or data.get("root") != root or not isinstance(data.get("files"), dict):
        return {}
    return {key: entry for key, entry in data["files"].items()
            if type(entry) is list and len(entry) == 10 and all(type(n) is int for n in entry[:4])}


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


def _encode(summary, warning):
    experiment = summary.experiment
    return [warning, summary.hparams, None if summary.status is None else str(summary.status),
            None if experiment is None else [experiment.hparam_names, experiment.metrics],
            summary.undecodable, [[tag, *stats] for tag, stats in summary.series.items()]]


def _decode(fields):
    """(FileSummary, warning) from an entry's fields after its identity; None if they are not
    exactly what _encode writes."""
    warning, hparams, status, experiment, undecodable, series = fields
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
        names, metrics = experiment
        if not (type(names) is list and all(type(name) is str for name in names) and type(metrics) is list
                and all(type(metric) is list and len(metric) == 2 and type(metric[0]) is str
                        and type(metric[1]) is str for metric in metrics)):
            return None
        summary.experiment = Config(names, metrics)
    if type(series) is not list:
        return None
    scalars = summary.series
    for item in series:
        if type(item) is not list or len(item) != 10 or not _sound(item):
            return None
        scalars[item[0]] = tuple(item[1:])
    if len(scalars) != len(series):
        return None
    return summary, warning


def _sound(item):
    """A series entry: [tag, count, first step, first, last step, last, high step, high, low step,
    low], steps ints, numbers floats; high and low both absent (None) or both present."""
    tag, count, first_step, first, last_step, last, high_step, high, low_step, low = item
    if type(tag) is not str or type(count) is not int or count < 1 or type(first_step) is not int \
            or type(first) is not float or type(last_step) is not int or type(last) is not float:
        return False
    if high_step is None:
        return high is None and low_step is None and low is None
    return type(high_step) is int and type(high) is float and type(low_step) is int and type(low) is float
