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
import struct
from dataclasses import dataclass, field

from hparams_lab.core.errors import UserError
from hparams_lab.core.metrics import DIRECTIONS, higher_is_better
from hparams_lab.core.trial import TrialStatus
from hparams_lab.review.tfrecord import read_record_files

# The constants of tensorboard.plugins.hparams.metadata, whose import costs
# 0.15 s; tests/test_review_model.py pins them to tensorboard's values.
HPARAMS_PREFIX = "_hparams_/"
EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"
EXPERIMENT_FILE = "experiment.json"
TRIAL_FILE = "trial.json"
MAX_JSON_BYTES = 16 * 1024 * 1024  # experiment.json and trial.json are a few KB; larger ones are not read

# Scalar tensors: dtype enum -> struct format of tensor_content and the repeated field to read.
_TENSOR_SCALARS = {1: ("<f", "float_val"), 2: ("<d", "double_val"), 3: ("<i", "int_val"),
                   9: ("<q", "int64_val"), 19: ("<e", "half_val")}
_NOT_SCALARS = {"hparams", "histograms", "images", "audio", "text", "pr_curves", "graph_keras_model"}


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

    def best(self, maximize):
        return (self.high, self.high_step) if maximize else (self.low, self.low_step)


@dataclass
class RunData:
    """What one run directory's event files say."""

    hparams: dict | None = None  # from session_start_info; None if not a session
    status: TrialStatus | None = None  # from session_end_info
    experiment: object = None  # tensorboard.hparams.Experiment, when the run holds a config
    scalars: dict = field(default_factory=dict)  # tag -> Series
    plugins: dict = field(default_factory=dict)  # tag -> plugin name, from its first metadata


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
    configs: list = field(default_factory=list)  # the hparams_config records (tensorboard Experiment protos)


def load(logdir):
    """Every session under logdir as a Row. UserError if there is nothing to review."""
    logdir = os.path.abspath(logdir)
    if not os.path.isdir(logdir):
        raise UserError(f"review: no such directory: {logdir}")
    tree = walk_logs(logdir)
    if not tree.event_files:
        if tree.warnings:
            raise UserError(f"review: no TensorBoard event files under {logdir} ({'; '.join(tree.warnings)})")
        raise UserError(f"review: no TensorBoard event files under {logdir}")
    runs, warnings = read_runs(tree.event_files)
    warnings[:0] = tree.warnings
    rows = build_rows(logdir, runs, tree, warnings)
    if not rows:
        raise UserError(f"review: no HParams sessions under {logdir} ({len(runs)} run(s) read, "
                        "none with a session_start record: log hparams with hp.hparams(...))")
    directories = sorted(tree.experiment_files)
    records = [_read_json(os.path.join(directory, EXPERIMENT_FILE), warnings) for directory in directories]
    return Logs(rows, warnings, *_columns(rows, runs), _declared_metric(records, rows), _directions(records),
                _classes(records), _spaces(logdir, directories, records),
                [run.experiment for _, run in sorted(runs.items()) if run.experiment is not None])


@dataclass(frozen=True)
class LogTree:
    event_files: dict  # run dir -> [event file paths in name order], dirs in sorted walk order
    experiment_files: set  # dirs holding an experiment.json
    trial_files: set  # dirs holding a trial.json
    warnings: list = field(default_factory=list)  # what the walk skipped and why


def walk_logs(logdir):
    """The event, experiment and trial files under logdir, in bounded time whatever it holds.

    Iterative (no limit on depth). Only regular files are taken: FIFOs, sockets and devices
    are never opened. Symlinks are followed only inside the tree: a file's if its real path
    is in it, a directory's if its real directory has not been walked yet (real directories
    come first, so a link to one in the tree adds nothing, and a loop ends at once).
    """
    root = os.path.realpath(logdir)
    tree = LogTree({}, set(), set())
    try:
        start = os.stat(logdir)
    except OSError as error:
        tree.warnings.append(f"{logdir}: not walked ({_reason(error)})")
        return tree
    seen = {(start.st_dev, start.st_ino)}
    stack, linked = [logdir], []
    while stack or linked:
        if not stack:  # every real directory walked: now the symlinked ones not met that way
            directory, key = linked.pop(0)
            if key in seen:
                continue
            seen.add(key)
        else:
            directory = stack.pop()
        subdirs, links = [], []
        for name, kind in _entries(directory, root, tree.warnings):
            path = os.path.join(directory, name)
            if isinstance(kind, tuple):  # a symlinked directory in the tree: (st_dev, st_ino)
                links.append((path, kind))
            elif kind == "dir":
                subdirs.append(path)
            elif kind == "file":
                if "tfevents" in name:
                    tree.event_files.setdefault(directory, []).append(path)
                elif name == EXPERIMENT_FILE:
                    tree.experiment_files.add(directory)
                elif name == TRIAL_FILE:
                    tree.trial_files.add(directory)
        fresh = []
        for path in subdirs:  # a bind mount can make a loop of real directories too
            try:
                info = os.stat(path)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                fresh.append(path)
        stack.extend(reversed(fresh))
        linked.extend(links)
    return tree


def _entries(directory, root, warnings):
    """(name, kind) of directory's entries in name order; kind is "dir", "file" (regular),
    (st_dev, st_ino) for a symlinked directory inside root, or None: skipped."""
    try:
        with os.scandir(directory) as entries:
            entries = sorted(entries, key=lambda entry: entry.name)
    except OSError as error:
        warnings.append(f"{directory}: not walked ({_reason(error)})")
        return
    for entry in entries:
        name, path = entry.name, entry.path
        wanted = "tfevents" in name or name in (EXPERIMENT_FILE, TRIAL_FILE)
        try:
            if not entry.is_symlink():
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    yield name, "dir"
                elif stat.S_ISREG(info.st_mode):
                    yield name, "file"
                elif wanted:
                    warnings.append(f"{path}: skipped, not a regular file")
                continue
            try:
                info = os.stat(path)
            except OSError as error:
                warnings.append(f"{path}: skipped, a broken symlink ({_reason(error)})")
                continue
            real = os.path.realpath(path)
            if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
                if wanted or stat.S_ISDIR(info.st_mode):
                    warnings.append(f"{path}: skipped, a symlink leading out of the logdir")
                continue
        except OSError as error:
            if wanted:
                warnings.append(f"{path}: skipped ({_reason(error)})")
            continue
        if stat.S_ISDIR(info.st_mode):
            yield name, (info.st_dev, info.st_ino)
        elif stat.S_ISREG(info.st_mode):
            yield name, "file"
        elif wanted:
            warnings.append(f"{path}: skipped, not a regular file")


def _reason(error):
    return error.strerror or error.__class__.__name__


def read_runs(event_files):
    """{run dir: RunData} and the warnings met (one per damaged file)."""
    paths = [path for paths in event_files.values() for path in paths]
    record_files = iter(read_record_files(paths))
    runs, warnings = {}, []
    for directory, paths in event_files.items():
        run = runs[directory] = RunData()
        for _ in paths:  # several files of one run merge, in file-name order
            record_file = next(record_files)
            if record_file.warning:
                warnings.append(record_file.warning)
            if _decode_events(record_file.records, run):
                warnings.append(f"{record_file.path}: skipped records that are not events")
    return runs, warnings


def _decode_events(records, run):
    """Fold records into run; return how many could not be decoded."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.event_pb2 import Event

    parse, undecodable, scalars, readers = Event.FromString, 0, run.scalars, {}
    for record in records:
        try:
            event = parse(record)
        except DecodeError:
            undecodable += 1
            continue
        for value in event.summary.value:
            tag = value.tag
            # How to read a tag is decided by its first value: TF2 writes a
            # tag's plugin metadata only once.
            reader = readers.get(tag) or readers.setdefault(tag, _reader_for(tag, value))
            number = reader(value, run)
            if number is None:
                continue
            series = scalars.get(tag)
            if series is None:
                scalars[tag] = Series(event.step, number)
            else:
                series.add(event.step, number)
    return undecodable


def _reader_for(tag, value):
    """A function (value, run) -> float or None for the values of this tag."""
    if tag.startswith(HPARAMS_PREFIX):
        return _read_hparams_record
    kind = value.WhichOneof("value")
    if kind == "simple_value":  # TF1, tensorboardX, PyTorch
        return _read_simple_value
    plugin = value.metadata.plugin_data.plugin_name
    layout = _TENSOR_SCALARS.get(value.tensor.dtype)
    if kind != "tensor" or plugin in _NOT_SCALARS or layout is None:
        return _ignore
    if any(dim.size != 1 for dim in value.tensor.tensor_shape.dim):
        return _ignore
    return _tensor_reader(*layout)


def _read_simple_value(value, run):
    return value.simple_value


def _ignore(value, run):
    return None


def _tensor_reader(form, repeated):
    unpack, size = struct.Struct(form).unpack, struct.calcsize(form)

    def read(value, run):
        tensor = value.tensor
        content = tensor.tensor_content
        if len(content) == size:
            return float(unpack(content)[0])
        values = getattr(tensor, repeated)
        if len(values) != 1 or content:
            return None
        if repeated == "half_val":  # float16 bits carried in an int32
            return float(struct.unpack("<e", struct.pack("<H", values[0]))[0])
        return float(values[0])

    return read


def _read_hparams_record(value, run):
    from google.protobuf.message import DecodeError
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    tag = value.tag
    try:
        data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
    except DecodeError:
        return
    if tag == SESSION_START_TAG and data.HasField("session_start_info"):
        run.hparams = {name: _hparam_value(v) for name, v in data.session_start_info.hparams.items()}
    elif tag == SESSION_END_TAG and data.HasField("session_end_info"):
        run.status = TrialStatus.from_tensorboard(data.session_end_info.status)
    elif tag == EXPERIMENT_TAG and data.HasField("experiment"):
        run.experiment = data.experiment
    return None  # not a scalar


def _hparam_value(value):
    """A google.protobuf.Value as the Python value it was logged as."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind is None or kind == "null_value":
        return None
    from google.protobuf.json_format import MessageToDict

    # Lists and structs (rare) become their JSON text: hparam values must stay hashable.
    return json.dumps(MessageToDict(value), sort_keys=True)


def build_rows(logdir, runs, tree, warnings):
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
        trial = _read_json(os.path.join(directory, TRIAL_FILE), warnings) if directory in tree.trial_files else {}
        rows.append(_row(logdir, directory, runs[directory], series_of[directory], experiment_dir, trial))
    return _restore_ints(rows)


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
    current = directory if include_self else (None if directory == logdir else os.path.dirname(directory))
    while current is not None:
        if current in candidates:
            return current
        current = None if current == logdir else os.path.dirname(current)
    return None


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
    with open(fd, "rb") as file:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                warnings.append(f"{path}: ignored, not a regular file")
                return {}
            if info.st_size > MAX_JSON_BYTES:
                warnings.append(f"{path}: ignored, {info.st_size} bytes: over {MAX_JSON_BYTES >> 20} MiB")
                return {}
            text = file.read(MAX_JSON_BYTES + 1)
        except OSError as error:
            warnings.append(f"{path}: ignored, not readable ({_reason(error)})")
            return {}
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
            declared_hparams += [info.name for info in run.experiment.hparam_infos]
            declared_metrics += [_metric_key(info.name.group, info.name.tag)
                                 for info in run.experiment.metric_infos]
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
