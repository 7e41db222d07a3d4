"""What a study prints: live progress on a terminal, plain lines when piped, a leaderboard.

Numbers go through review's formatter (review.output.human) and the leaderboard through
its text renderer, so a study and `review` print numbers and tables alike.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from hparams_lab.core.groups import by_group
from hparams_lab.core.metrics import higher_is_better, monitored, run_metric, std_of
from hparams_lab.core.objectives import Objective, Placed
from hparams_lab.core.space import Space
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.review.output import Table, human, to_text, visible
from hparams_lab.search.one_at_a_time import Effect

# Significant digits of the study's numbers: random search rounds real hparams to 4, so they show whole.
DIGITS = 4


def format_value(value: Any) -> str:
    return human(value, DIGITS)


def format_hparams(hparams: Mapping[str, Any]) -> str:
    return " ".join(f"{name}={format_value(value)}" for name, value in hparams.items())


class ConsoleReporter:
    """One line per finished trial; on a terminal, also a live line per epoch."""

    def __init__(self, stream: TextIO, *, metric: str | None, epochs: int, live: bool) -> None:
        self.stream = stream
        self.metric = metric  # None: the study's, when it starts
        self.epochs = epochs
        self.live = live
        self._started = 0.0
        self._position, self._total = 0, 0

    def study_started(self, metric: str) -> None:
        if self.metric is None:
            self.metric = run_metric(metric)

    def note(self, message: str) -> None:
        print(visible(message), file=self.stream, flush=True)

    def trial_started(self, trial: Trial, position: int, total: int) -> None:
        self._started, self._position, self._total = time.monotonic(), position, total
        if self.live:
            self._status(f"{self._prefix(trial)} {format_hparams(trial.hparams)} starting")

    def epoch_ended(self, trial: Trial, epoch: int, logs: Mapping[str, float]) -> None:
        if not self.live:
            return
        epochs = trial.hparams.get("epochs", self.epochs)
        watched = monitored(self.metric)
        value = logs.get(watched)
        shown = f" {watched}={format_value(float(value))}" if value is not None else ""
        elapsed = time.monotonic() - self._started
        self._status(f"{self._prefix(trial)} epoch {epoch + 1}/{epochs}{shown} {elapsed:.1f}s")

    def trial_finished(self, result: TrialResult, position: int, total: int) -> None:
        self._position, self._total = position, total  # parallel runs report only here
        value = result.metrics.get(self.metric)
        if result.status is TrialStatus.FAILURE or value is None:
            outcome = f"FAILED: {result.error}"
        else:
            # RUNNING: a hyperband configuration between rungs, waiting to be sent on or stopped.
            outcome = f"{self.metric}={format_value(value)}" + (
                " so far" if result.status is TrialStatus.RUNNING else
                " pruned" if result.status is TrialStatus.PRUNED else "")
        line = (
            f"{self._prefix(result.trial)} {outcome} "
            f"({result.epochs} epochs, {result.wall_time_s:.1f}s)  {format_hparams(result.trial.hparams)}"
        )
        if self.live:
            self._status("")
        print(visible(line), file=self.stream, flush=True)

    def _prefix(self, trial: Trial) -> str:
        width = len(str(self._total))
        member = f" fold {trial.fold}" if trial.fold is not None else f" repeat {trial.repeat}" if trial.repeat else ""
        return f"[{self._position:>{width}}/{self._total}] {trial.id}{member}"

    def _status(self, text: str) -> None:
        columns = shutil.get_terminal_size((100, 20)).columns
        text = visible(text)
        self.stream.write("\r" + text[: columns - 1].ljust(columns - 1) + ("\r" if not text else ""))
        self.stream.flush()


def leaderboard(results: Sequence[TrialResult], metric: str, top: int = 10,
                names: Sequence[str] = (), placed: Sequence[Placed] = (),
                objectives: Sequence[Objective] = ()) -> str:
    """An aligned table of the best trials (failures last, never ranked best).

    Repeats and CV folds collapse into one row per hparams set, showing mean ± std.
    Hparam columns come in the order of ``names`` (the space's), then any others; a
    conditional hparam's cell is empty where it was inactive. With several objectives
    (``placed``: core.objectives.ranked's order, ``objectives``), a "pareto" column
    marks the front ("front"), later fronts by rank, and "infeasible" trials (last
    before failures), and every further objective gets a column after ``metric``.
    """
    if placed:
        results = [p.result for p in placed]
    if not results:
        return "(no trials)"
    place = {p.result.trial.id: p for p in placed}
    others = [o.name for o in objectives if o.name != metric] if placed else []
    rows = _group_rows(results) if any(r.trial.fold is not None or r.trial.repeat for r in results) else [
        (r, r.trial.id, r.status, r.epochs, r.wall_time_s) for r in results
    ]
    present = {name for r in results for name in r.trial.hparams}
    names = [n for n in names if n in present] + [
        n for n in dict.fromkeys(name for r in results for name in r.trial.hparams) if n not in names]
    std = std_of(metric)
    tries = [_attempts(row[0]) for row in rows]
    retried = any(n > 1 for n in tries)  # --retries: how many attempts a trial took
    on_devices = any(row[0].device for row in rows)  # --gpus: which device each trial ran on
    headers = ["rank", "trial", "status"] + (["pareto"] if placed else []) + \
        [metric + (" ± std" if std else "")] + others + ["epochs", "time"] + \
        (["attempts"] if retried else []) + (["device"] if on_devices else []) + names
    cells = []
    for rank, (result, label, status, epochs, seconds) in enumerate(rows[:top], start=1):
        value = result.metrics.get(metric)
        if std and value is not None:
            value = f"{format_value(value)} ± {format_value(result.metrics.get(std, float('nan')))}"
        front = [_pareto_cell(place.get(result.trial.id))] if placed else []
        cells.append([str(rank) if status is TrialStatus.SUCCESS else "-", label, status] + front + [value]
                     + [_whole(result.metrics.get(name)) for name in others] + [epochs, f"{seconds:.1f}s"]
                     + ([tries[rank - 1]] if retried else [])
                     + ([result.device] if on_devices else []) + [result.trial.hparams.get(name) for name in names])
    # Every column and every cell whole (the study's record of what ran, often piped to a log),
    # and no rule under the headers, as the study has always printed it.
    text = to_text(Table(headers, cells), digits=DIGITS, max_cell=None, rule=False).rstrip("\n")
    if len(rows) > top:
        text += f"\n... and {len(rows) - top} more"
    return text


def _whole(value: Any) -> Any:
    """A count (params) whole, not 2.612e+04."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 1e15 else value


def _pareto_cell(place: Placed | None) -> str:
    if place is None or place.result.status is not TrialStatus.SUCCESS:
        return ""
    if place.infeasible is not None:
        return "infeasible"
    return "" if place.rank is None else "front" if place.on_front else str(place.rank)


def infeasible_lines(placed: Sequence[Placed], top: int = 10) -> list[str]:
    """Why the leaderboard's infeasible trials are infeasible, one line each."""
    return [f"infeasible {p.result.trial.id}: {p.infeasible}" for p in placed[:top] if p.infeasible is not None]


def _attempts(result: TrialResult) -> int:
    """Which attempt this result came from: 1 for <id>, N for <id>.N."""
    from hparams_lab.store.rundirs import attempt_number

    return (attempt_number(result.run_dir) or 1) if result.run_dir is not None else 1


def _group_rows(results: Sequence[TrialResult]) -> list[tuple]:
    """One row per session group, in the given (ranked) order: (first member, label, status, epochs, time)."""
    rows = []
    for members in by_group(results).values():
        ok = all(r.status is TrialStatus.SUCCESS for r in members)
        rows.append((
            members[0],
            f"{members[0].trial.id} (+{len(members) - 1})",
            TrialStatus.SUCCESS if ok else TrialStatus.FAILURE,
            sum(r.epochs for r in members),
            sum(r.wall_time_s for r in members),
        ))
    return sorted(rows, key=lambda row: row[2] is not TrialStatus.SUCCESS)


def space_notes(results: Sequence[TrialResult], space: Space, metric: str,
                directions: Mapping[str, str] | None = None, experiment: str | None = None) -> list[str]:
    """What a study's leaderboard is followed by: "warning: ..." where an interval hparam's best
    trials sit at an edge of its domain, "note: ..." where an hparam shows no effect beyond
    noise (review.notes words both; core.edges and review.summary decide)."""
    from hparams_lab.core import edges
    from hparams_lab.review.notes import edge_line, no_effect_lines
    from hparams_lab.review.summary import summarize_points

    best = edges.winners(results, metric, directions)
    command = "--strategy refine" + (f" --from {experiment}" if experiment else "") + " --widen"
    found = edges.find_edges(edges.interval_domains(space), [r.trial.hparams for r in best])
    lines = [f"warning: {edge_line(edge, 'trials', command=command)}" for edge in found]
    summaries = summarize_points([(r.trial.hparams, r.metrics[metric]) for r in best], space.names,
                                 higher_is_better(metric, directions), noise=True)
    return lines + [f"note: {line}" for line in no_effect_lines(summaries, metric)]


def format_effects(found: Sequence[Effect], base: Mapping[str, Any], metric: str) -> str:
    """Lines like ``learning_rate  effect 0.41  0.0001: 0.52  0.001*: 0.93`` (* = the base value)."""
    if not found:
        return f"No hparam was varied with a {metric} to compare."
    width = max(len(e.name) for e in found)
    lines = [f"Effect of each hparam on {metric} (max - min over its values; * = base value):"]
    for e in found:
        spread = "-" if e.spread is None else format_value(e.spread)
        cells = [
            f"{format_value(v)}{'*' if v == base[e.name] else ''}: {'failed' if m is None else format_value(m)}"
            for v, m in e.values
        ]
        lines.append(f"  {e.name.ljust(width)}  effect {spread:<8}  " + "  ".join(cells))
    return "\n".join(lines)
