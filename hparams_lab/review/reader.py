"""Read any TensorBoard HParams logs back into one row per session; never imports TensorFlow.

The model is TensorBoard's own: a *run* is a directory holding event files; a
*session* is a run with a `_hparams_/session_start_info` record; a session's
metrics are the scalars of its own run (group "") and of the runs below it
that are not sessions themselves (group = their relative path, e.g.
"validation"), just as the HParams dashboard joins them.

Everything read from logs is data: nothing is executed, and callers escape
the text when they print it (review.output, review.report).
"""

import json
import math
import os
import stat
from dataclasses import dataclass, field

from hparams_lab.core.errors import UserError
from hparams_lab.core.metrics import DIRECTIONS, higher_is_better
from hparams_lab.core.trial import TrialStatus

EXPERIMENT_FILE = "experiment.json"
TRIAL_FILE = "trial.json"
MAX_JSON_BYTES = 16 * 1024 * 1024  # experiment.json and trial.json are a few KB; larger ones are not read
NOT_EVENTS = "skipped records that are not events"


class Series:
    """One scalar tag of one run: its last point and its highest and lowest points."""

    __slots__ = ("last", "last_step", "high", "high_step", "low", "low_step", "count")

    def __init__(self, step, value):
        self.last = self.high = self.low = value
        self.last_step = self.high_step = self.low_step = step
        self.count = 1

    def add(self, step, value):
        self.last, self.last_step = value, step
        self.count += 1
        # Strict comparisons: the earliest epoch wins a tie; NaN never becomes best.
        if value > self.high:
            self.high, self.high_step = value, step
        if value < self.low:
            self.low, self.low_step = value, step

    @classmethod
    def start(cls, stats):
        """The Series of a run's first file's points of the tag (its events.Stats tuple): as if
        they were added one by one (a NaN first point stays the best, as add leaves it)."""
        series = cls.__new__(cls)
        series.count, first_step, first, series.last_step, series.last, high_step, high, low_step, low = stats
        if high_step is None or math.isnan(first):
            series.high = series.low = first
            series.high_step = series.low_step = first_step
        else:
            series.high, series.high_step, series.low, series.low_step = high, high_step, low, low_step
        return series

    def merge(self, stats):
        """Add the points of a later file (its events.Stats tuple), as add would one by one."""
        count, _, _, self.last_step, self.last, high_step, high, low_step, low = stats
        self.count += count
        if high_step is not None:
            if high > self.high:
                self.high, self.high_step = high, high_step
            if low < self.low:
                self.low, self.low_step = low, low_step

    def best(self, maximize):
        return (self.high, self.high_step) if maximize else (self.low, self.low_step)


class RunData:
    """What one run directory's event files say (a plain class: one is made per run)."""

    __slots__ = ("experiment", "hparams", "scalars", "status")

    def __init__(self):
        self.hparams = None  # from session_start_info; None if not a session
        self.status = None  # TrialStatus, from session_end_info
        self.experiment = None  # events.Config (an hparams_config's names, metrics, intervals), if it holds one
        self.scalars = {}  # tag -> Series


@dataclass(frozen=True)
class Row:
    """One session: the unit of the leaderboard."""

    experiment: str
    run: str
    trial_id: str | None
    status: TrialStatus
    hparams: dict
    series: dict  # metric key -> Series

    @property
    def metrics(self):
        return {key: series.last for key, series in self.series.items()}


@dataclass(frozen=True)
class Logs:
    rows: list
    warnings: list
    hparam_names: list  # declared order first, then the rest sorted
    metric_keys: list
    declared_metric: str | None  # the experiment's ranking metric, if it names one
    directions: dict = field(default_factory=dict)  # metric key -> higher is better, as experiment.json records
    classes: list | None = None  # the class names (labels 0..n-1) experiment.json records, if one set for all
    spaces: dict = field(default_factory=dict)  # experiment name -> experiment.json's "space", as read (review.notes)
    configs: list = field(default_factory=list)  # the hparams_config records (review.events.Config)
    # Several objectives (core.objectives) experiment.json records ("best_val_accuracy:max", ...) and
    # its constraints ("params<=50000"): the first experiment.json to have them; () when none does.
    objectives: tuple = ()
    constraints: tuple = ()
    noise_levels: object = None  # review.cache.NoiseLevels when the cache is on (review.notes)


def load(logdir, cache=False):
    """Every session under logdir as a Row. UserError if there is nothing to review.

    cache: keep and use a summary of each event file in the user's cache directory
    (review.cache; never in the logdir), as the review command does unless told not to.
    """
    logdir = os.path.abspath(logdir)
    if not os.path.isdir(logdir):
        raise UserError(f"review: no such directory: {logdir}")
    summaries = noise_levels = None
    if cache:
        from hparams_lab.review import cache as summary_cache

        noise_levels = summary_cache.noise_levels()
        summaries = summary_cache.open_cache(os.path.realpath(logdir))
    # Event files are stat'ed only for a cache that has entries to check; else their identity
    # comes from reading them.
    tree = walk_logs(logdir, stats=summaries is not None and bool(summaries.old), trial_stats=summaries is not None)
    if not tree.event_files:
        if tree.warnings:
            raise UserError(f"review: no TensorBoard event files under {logdir} ({'; '.join(tree.warnings)})")
        raise UserError(f"review: no TensorBoard event files under {logdir}")
    runs, warnings = read_runs(tree.event_files, summaries, tree.identities)
    warnings[:0] = tree.warnings
    rows = build_rows(logdir, runs, tree, warnings, summaries)
    if summaries is not None:
        summaries.save()
    if not rows:
        raise UserError(f"review: no HParams sessions under {logdir} ({len(runs)} run(s) read, "
                        "none with a session_start record: log hparams with hp.hparams(...))")
    directories = sorted(tree.experiment_files)
    records = [_read_json(os.path.join(directory, EXPERIMENT_FILE), warnings) for directory in directories]
    return Logs(rows, warnings, *_columns(rows, runs), _declared_metric(records, rows), _directions(records),
                _classes(records), _spaces(logdir, directories, records),
                [run.experiment for _, run in sorted(runs.items()) if run.experiment is not None],
                *_objectives(records), noise_levels=noise_levels)


def _objectives(records):
    """(objectives, constraints) as the first experiment.json naming several objectives records
    them: lists of strings, kept as text (review.query parses them against the logs)."""
    for record in records:
        objectives, constraints = record.get("objectives"), record.get("constraints") or []
        if isinstance(objectives, list) and objectives and all(isinstance(o, str) for o in objectives) \
                and isinstance(constraints, list) and all(isinstance(c, str) for c in constraints):
            return tuple(objectives), tuple(constraints)
    return (), ()


@dataclass(frozen=True)
class LogTree:
    event_files: dict  # run dir -> [event file paths in name order], dirs in sorted walk order
    experiment_files: set  # dirs holding an experiment.json
    trial_files: set  # dirs holding a trial.json
    warnings: list = field(default_factory=list)  # what the walk skipped and why
    root: str = ""  # the real path of the logdir
    # event file path -> (its real path below root, (size, mtime_ns, ino, dev) or None if not stat'ed)
    identities: dict = field(default_factory=dict)
    # dir -> (its trial.json's real path below root, (size, mtime_ns, ino, dev)), when stat'ed
    trial_identities: dict = field(default_factory=dict)


def walk_logs(logdir, stats=True, trial_stats=False):
    """The event, experiment and trial files under logdir, in bounded time whatever it holds.

    Iterative (no limit on depth). Only regular files are taken: FIFOs, sockets and devices
    are never opened. Symlinks are followed only inside the tree: a file's if its real path
    is in it, a directory's if its real directory has not been walked yet (real directories
    come first, so a link to one in the tree adds nothing, and a loop ends at once).
    stats: stat each event file (for its identity), else tell files by their directory entry;
    trial_stats: each trial.json file too.
    """
    root = os.path.realpath(logdir)
    tree = LogTree({}, set(), set(), root=root)
    try:
        start = os.stat(logdir)
    except OSError as error:
        tree.warnings.append(f"{logdir}: not walked ({_reason(error)})")
        return tree
    prefix = root.rstrip(os.sep) + os.sep
    seen = {(start.st_dev, start.st_ino)}
    stack, linked, warnings = [(logdir, root)], [], tree.warnings
    while stack or linked:
        if not stack:  # every real directory walked: now the symlinked ones not met that way
            directory, real, key = linked.pop(0)
            if key in seen:
                continue
            seen.add(key)
        else:
            directory, real = stack.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=_NAME)
        except OSError as error:
            warnings.append(f"{directory}: not walked ({_reason(error)})")
            continue
        fresh, below, real_below = [], _joining(directory), _joining(real)
        for entry in entries:  # the entry's type, where the file system gives it, costs no call
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):  # a bind mount can make a loop of real directories
                    info = entry.stat(follow_symlinks=False)
                    if (info.st_dev, info.st_ino) not in seen:
                        seen.add((info.st_dev, info.st_ino))
                        fresh.append((below + name, real_below + name))
                    continue
                link = entry.is_symlink()
                event = "tfevents" in name
                if not (link or event or name == EXPERIMENT_FILE or name == TRIAL_FILE):
                    continue
                path = below + name
                if link:
                    followed = _followed(path, name, root, warnings)
                    if followed is None:
                        continue
                    kind, info, target = followed
                    if kind == "link":
                        linked.append((path, target, (info.st_dev, info.st_ino)))
                        continue
                elif entry.is_file(follow_symlinks=False):
                    wanted = stats if event else trial_stats and name == TRIAL_FILE
                    info = entry.stat(follow_symlinks=False) if wanted else None
                    target = None
                else:
                    warnings.append(f"{path}: skipped, not a regular file")
                    continue
            except OSError as error:
                if "tfevents" in name or name in (EXPERIMENT_FILE, TRIAL_FILE):
                    warnings.append(f"{below + name}: skipped ({_reason(error)})")
                continue
            if event:
                tree.event_files.setdefault(directory, []).append(path)
                tree.identities[path] = ((target or real_below + name)[len(prefix):], info and (
                    info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev))
            elif name == EXPERIMENT_FILE:
                tree.experiment_files.add(directory)
            elif name == TRIAL_FILE:
                tree.trial_files.add(directory)
                if info is not None:
                    tree.trial_identities[directory] = ((target or real_below + name)[len(prefix):], (
                        info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev))
        stack.extend(reversed(fresh))
    return tree


def _NAME(entry):
    return entry.name


def _joining(directory):
    """What os.path.join(directory, name) puts before a name."""
    return directory if directory.endswith(os.sep) else directory + os.sep


def _followed(path, name, root, warnings):
    """A symlink in the walk: ("link", stat, real path) for a directory inside root, ("file",
    stat, real path) for a regular file inside root, else None (with a warning where due)."""
    wanted = "tfevents" in name or name in (EXPERIMENT_FILE, TRIAL_FILE)
    try:
        try:
            info = os.stat(path)
        except OSError as error:
            warnings.append(f"{path}: skipped, a broken symlink ({_reason(error)})")
            return None
        real = os.path.realpath(path)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            if wanted or stat.S_ISDIR(info.st_mode):
                warnings.append(f"{path}: skipped, a symlink leading out of the logdir")
            return None
    except OSError as error:
        if wanted:
            warnings.append(f"{path}: skipped ({_reason(error)})")
        return None
    if stat.S_ISDIR(info.st_mode):
        return "link", info, real
    if stat.S_ISREG(info.st_mode):
        return ("file", info, real) if wanted else None
    if wanted:
        warnings.append(f"{path}: skipped, not a regular file")
    return None


def _reason(error):
    return error.strerror or error.__class__.__name__


def read_runs(event_files, cache=None, identities=None):
    """{run dir: RunData} and the warnings met (one per damaged file).

    With a review.cache.Cache and the tree's identities, files whose summary it holds for
    their real path, size, mtime and inode are not read; those read are given to it.
    """
    paths = [path for paths in event_files.values() for path in paths]
    summaries, warnings = read_summaries(paths, cache, identities or {}), []
    runs, at = {}, 0
    for directory, paths in event_files.items():
        run = runs[directory] = RunData()
        for path in paths:  # several files of one run merge, in file-name order
            summary, warning = summaries[at]
            at += 1
            if warning:
                warnings.append(f"{path}: {warning}")
            if summary.undecodable:
                warnings.append(f"{path}: {NOT_EVENTS}")
            _merge(run, summary)
    return runs, warnings


def read_summaries(paths, cache=None, identities=None):
    """(events.FileSummary, warning about the file without its path, or None) for each path."""
    results = [None] * len(paths)
    missing = []
    for index, path in enumerate(paths):
        identity = identities.get(path) if cache is not None else None
        found = cache.get(*identity) if identity is not None and identity[1] is not None else None
        if found is None:
            missing.append(index)
        else:
            results[index] = found
    if missing:
        from hparams_lab.review.events import summarize
        from hparams_lab.review.tfrecord import read_batches

        at = iter(missing)
        for batch in read_batches([paths[index] for index in missing]):
            for file, summary in zip(batch.files, summarize(batch)):
                index = next(at)
                warning = file.warning[len(file.path) + 2:] if file.warning else None
                results[index] = (summary, warning)
                identity = identities.get(paths[index]) if cache is not None else None
                if identity is not None and file.stat is not None and identity[1] in (None, file.stat):
                    cache.put(identity[0], file.stat, summary, warning)
    return results


def _merge(run, summary):
    """Fold one file's summary into its run, after the run's earlier files."""
    if summary.hparams is not None:
        run.hparams = dict(summary.hparams)
    if summary.status is not None:
        run.status = summary.status
    if summary.experiment is not None:
        run.experiment = summary.experiment
    scalars = run.scalars
    for tag, stats in summary.series.items():
        series = scalars.get(tag)
        if series is None:
            scalars[tag] = Series.start(stats)
        else:
            series.merge(stats)


def build_rows(logdir, runs, tree, warnings, cache=None):
    """One Row per session run, with the scalars of the non-session runs below it."""
    sessions = {directory for directory, run in runs.items() if run.hparams is not None}
    series_of = {directory: {} for directory in sessions}
    for directory, run in runs.items():
        owner = _nearest(directory, sessions, logdir, include_self=True)
        if owner is None:
            continue  # scalars outside any session: TensorBoard ignores them too
        group = _relative(directory, owner)
        for tag, series in run.scalars.items():
            series_of[owner][f"{group}/{tag}" if group else tag] = series
    # An experiment is defined by an experiment.json or an hparams_config record.
    experiments = tree.experiment_files | {d for d, run in runs.items() if run.experiment is not None}
    rows = []
    for directory in sorted(sessions):
        experiment_dir = _nearest(directory, experiments, logdir, include_self=False) or logdir
        trial = _trial_record(directory, tree, warnings, cache) if directory in tree.trial_files else {}
        rows.append(_row(logdir, directory, runs[directory], series_of[directory], experiment_dir, trial))
    return _restore_ints(rows)


def _trial_record(directory, tree, warnings, cache):
    """All a row takes of a trial.json, its id and status as text (None where absent or, for
    the status, empty); from the cache (review.cache) while the file is unchanged."""
    key, identity = tree.trial_identities.get(directory, (None, None))
    if cache is not None and identity is not None:
        found = cache.get_trial(key, identity)
        if found is not None:
            return found
    said = len(warnings)
    data = _read_json(os.path.join(directory, TRIAL_FILE), warnings)
    trial_id, status = data.get("id"), data.get("status")
    record = {"id": None if trial_id is None else str(trial_id), "status": str(status) if status else None}
    if cache is not None and identity is not None and len(warnings) == said:
        cache.put_trial(key, identity, record)
    return record


def _row(logdir, directory, run, series, experiment_dir, trial):
    trial_id = trial.get("id")
    return Row(experiment=_experiment_name(logdir, experiment_dir), run=_relative(directory, logdir) or ".",
               trial_id=None if trial_id is None else str(trial_id),
               status=_row_status(run.status, trial.get("status")), hparams=run.hparams, series=series)


def _row_status(session_status, recorded):
    """The session's end status; trial.json's where the session has none, or PRUNED where
    TensorBoard was told SUCCESS (it has no PRUNED). UNKNOWN for text that is no status."""
    recorded = str(recorded or TrialStatus.UNKNOWN).upper()
    if recorded == TrialStatus.PRUNED and session_status in (None, TrialStatus.SUCCESS):
        return TrialStatus.PRUNED
    if session_status is not None:
        return session_status
    return TrialStatus(recorded) if recorded in tuple(TrialStatus) else TrialStatus.UNKNOWN


def _nearest(directory, candidates, logdir, include_self):
    """The closest of candidates among directory's ancestors up to logdir."""
    current = directory if include_self else (None if directory == logdir else _parent(directory))
    while current is not None:
        if current in candidates:
            return current
        current = None if current == logdir else _parent(current)
    return None


def _parent(path):
    """os.path.dirname of a path below the logdir, as the walk makes them (no trailing or
    doubled separators), without its generality."""
    cut = path.rfind(os.sep)
    return path[:cut] if cut > 0 else path[:cut + 1]


def _relative(directory, base):
    """directory relative to its ancestor base, '/'-separated; "" for base itself."""
    if directory == base:
        return ""
    return directory[len(base):].lstrip(os.sep).replace(os.sep, "/")


def _experiment_name(logdir, experiment_dir):
    return _relative(experiment_dir, logdir) or os.path.basename(logdir)


def _read_json(path, warnings):
    """A small JSON file written beside the logs, or {} if absent or unreadable.

    Bounded whatever the file holds: only a regular file is read (opened without blocking,
    so a FIFO put there since the walk cannot hang us), none over MAX_JSON_BYTES, and JSON
    nested too deep to parse is a warning, not a RecursionError.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        return {}
    except OSError as error:
        warnings.append(f"{path}: ignored, not readable ({_reason(error)})")
        return {}
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            warnings.append(f"{path}: ignored, not a regular file")
            return {}
        if info.st_size > MAX_JSON_BYTES:
            warnings.append(f"{path}: ignored, {info.st_size} bytes: over {MAX_JSON_BYTES >> 20} MiB")
            return {}
        chunks, size = [], 0
        while size <= MAX_JSON_BYTES:  # to the end, or past the limit if it grew
            want = min(MAX_JSON_BYTES + 1 - size, max(info.st_size + 1 - size, 1 << 12))
            chunk = os.read(fd, want)
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < want:  # the end (a regular file reads short only there)
                break
        text = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except OSError as error:
        warnings.append(f"{path}: ignored, not readable ({_reason(error)})")
        return {}
    finally:
        os.close(fd)
    if len(text) > MAX_JSON_BYTES:
        warnings.append(f"{path}: ignored, over {MAX_JSON_BYTES >> 20} MiB")
        return {}
    try:
        data = json.loads(text.decode("utf-8"))
    except RecursionError:
        warnings.append(f"{path}: ignored, JSON nested too deep to read")
        return {}
    except (ValueError, MemoryError) as error:  # UnicodeDecodeError is a ValueError
        warnings.append(f"{path}: ignored, not readable JSON ({error.__class__.__name__})")
        return {}
    return data if isinstance(data, dict) else {}


def _restore_ints(rows):
    """HParams stores every number as float64: give back ints where a column holds only whole numbers."""
    numbers = {}
    for row in rows:
        for name, value in row.hparams.items():
            if isinstance(value, float):
                numbers[name] = numbers.get(name, True) and math.isfinite(value) and value.is_integer()
            elif not (isinstance(value, int) and not isinstance(value, bool)):
                numbers[name] = False
    whole = {name for name, is_whole in numbers.items() if is_whole}
    for row in rows:
        for name in whole & row.hparams.keys():
            row.hparams[name] = int(row.hparams[name])
    return rows


def _columns(rows, runs):
    """Hparam names and metric keys: those an hparams_config declares first, in its order."""
    declared_hparams, declared_metrics = [], []
    for run in runs.values():
        if run.experiment is not None:
            declared_hparams += run.experiment.hparam_names
            declared_metrics += [_metric_key(group, tag) for group, tag in run.experiment.metrics]
    names = {name for row in rows for name in row.hparams}
    keys = {key for row in rows for key in row.series}
    return _ordered(declared_hparams, names), _ordered(declared_metrics, keys)


def _ordered(declared, present):
    first = [name for name in dict.fromkeys(declared) if name in present]
    return first + sorted(present - set(first))


def _metric_key(group, tag):
    # Groups are run paths relative to the session; "." and "" both mean the session's own run.
    group = group.strip("./")
    return f"{group}/{tag}" if group else tag


def _classes(records):
    """The class names hparams_lab records for string labels, when every experiment that has them agrees."""
    found = [record["classes"] for record in records if isinstance(record.get("classes"), list)]
    if not found or any(names != found[0] for names in found):
        return None
    return [str(name) for name in found[0]]


def _spaces(logdir, directories, records):
    """{experiment name: its experiment.json's "space"} where that is a table; review.notes reads them."""
    return {_experiment_name(logdir, directory): record["space"] for directory, record in zip(directories, records)
            if isinstance(record.get("space"), dict)}


def _declared_metric(records, rows):
    """The ranking metric an experiment.json names ("metric"), if any row has it."""
    keys = {key for row in rows for key in row.series}
    for record in records:
        metric = record.get("metric")
        if isinstance(metric, str) and metric in keys:
            return metric
    return None


def _directions(records):
    """{metric key: higher is better} from the "direction" of experiment.json's "metrics" entries.

    hparams_lab records one per metric; older files and other tools' have none (the name rule
    decides then). The first experiment.json to name a key wins, as for the ranking metric.
    """
    directions = {}
    for record in records:
        metrics = record.get("metrics")
        for metric in metrics if isinstance(metrics, list) else ():
            if not isinstance(metric, dict):
                continue
            tag, group, direction = metric.get("tag"), metric.get("group", ""), metric.get("direction")
            if isinstance(tag, str) and isinstance(group, str) and isinstance(direction, str) \
                    and direction in DIRECTIONS:
                directions.setdefault(_metric_key(group, tag), DIRECTIONS[direction])
    return directions


def maximizes(key, maximize=(), minimize=(), recorded=None):
    """Whether higher is better for a metric key: flags first, then the direction experiment.json
    records for it (recorded: Logs.directions), then the tag's name (core.metrics' rule)."""
    tag = key.rsplit("/", 1)[-1]
    if key in maximize or tag in maximize:
        return True
    if key in minimize or tag in minimize:
        return False
    if recorded and key in recorded:
        return recorded[key]
    return higher_is_better(tag)
