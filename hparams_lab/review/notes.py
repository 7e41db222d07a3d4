"""What review and a study's leaderboard say about the space, one line each:

- an edge warning, when an interval hparam's best trials all sit at one edge of its
  domain (core.edges' rule), with the widened range `refine --widen` would use;
- a no-effect note, when an hparam's importance is not above its noise level
  (review.summary: what shuffled metric values reach).

The lines are plain text holding names from logs: whoever prints them escapes them
(review.output.visible; the HTML report html-escapes them too).

review knows a domain from an experiment's experiment.json (hparams_lab's: its
"space", with the log scale), else from an hparams_config record (any writer's
interval domains; TensorBoard's config records no scale, so those are taken as
linear, and ints where both bounds and every logged value are whole numbers). Logs
with neither (inferred hparams) get no edge warnings.
"""

import math

from hparams_lab.core.trial import TrialStatus
from hparams_lab.review.output import human

DIGITS = 4  # significant digits of the numbers in a note

# A review row counts as a successful trial when it ended so, or when its logs record no
# end at all (tf.summary's hp.hparams writes none) but it has the ranking metric.
_DONE = (TrialStatus.SUCCESS, TrialStatus.UNKNOWN)


def review_notes(rows, logs, ranking, summaries=None):
    """The edge warnings (per experiment) and no-effect notes for review's selected rows,
    as "warning: ..." and "note: ..." lines. ``summaries``: note_summaries of the same rows,
    when the caller has them."""
    if ranking is None or not rows:
        return []
    lines = []
    experiments = {}
    for row in rows:
        experiments.setdefault(row.experiment, []).append(row)
    intervals = config_intervals(logs.configs)
    for experiment, members in experiments.items():
        domains = declared_domains(logs, experiment, members, intervals)
        if not domains:
            continue
        done = [row.hparams for row in ranking.sort(members)
                if row.status in _DONE and ranking.value(row) is not None]
        from hparams_lab.core import (
            edges as edge_rule,  # only for logs that declare domains
        )

        found = edge_rule.find_edges({name: domain for name, (domain, _) in domains.items()},
                                     edge_rule.distinct(done))
        prefix = "warning: " + (f"experiment {experiment}: " if len(experiments) > 1 else "")
        lines += [prefix + edge_line(edge, "runs", refine=domains[edge.name][1]) for edge in found]
    if summaries is None:
        summaries = note_summaries(rows, logs, ranking)
    return lines + [f"note: {line}" for line in no_effect_lines(summaries, ranking.key)]


def note_summaries(rows, logs, ranking):
    """The rows' summary per hparam with its noise level, as the no-effect notes need it (the
    leaderboard's summary table shows the same, without the noise)."""
    from hparams_lab.review.summary import summarize

    return summarize(rows, logs.hparam_names, ranking, noise=True, kept=logs.noise_levels)


def config_intervals(configs):
    """{hparam: (min, max)} of the interval domains hparams_config records declare; the first wins."""
    found = {}
    for config in configs:  # review.events.Config: intervals as [name, min, max], declared order
        for name, low, high in config.intervals:
            found.setdefault(name, (low, high))
    return found


def declared_domains(logs, experiment, rows, intervals):
    """{hparam: (interval domain, whether from experiment.json)} for one experiment's rows:
    its experiment.json's where that declares the hparam, else the hparams_config's (intervals)."""
    found, declared = {}, set()
    space = logs.spaces.get(experiment)
    if space is not None:
        table = space.get("hparams") if isinstance(space.get("hparams"), dict) else space
        for name, spec in table.items():
            declared.add(name)
            domain = _domain_of(name, spec)
            if domain is not None:
                found[name] = (domain, True)
    for name in logs.hparam_names:
        if name in intervals and name not in declared:
            domain = _config_domain(*intervals[name], [row.hparams.get(name) for row in rows])
            if domain is not None:
                found[name] = (domain, False)
    return {name: found[name] for name in logs.hparam_names if name in found}


def _domain_of(name, spec):
    """An experiment.json entry as core.space reads it, if it is an interval; None otherwise or if invalid.
    Read alone, so a condition (when) on another hparam is left out: only the domain matters here."""
    from hparams_lab.core.space import IntInterval, RealInterval, Space

    if isinstance(spec, dict):
        spec = {key: value for key, value in spec.items() if key != "when"}
    try:
        domain = Space.from_dict({"hparams": {name: spec}}).hparams[0].domain
    except Exception:  # anything a hand-edited or foreign file holds: no warning about it, never a crash
        return None
    return domain if isinstance(domain, (IntInterval, RealInterval)) else None


def _config_domain(low, high, values):
    from hparams_lab.core.space import IntInterval, RealInterval

    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        return None
    whole = low.is_integer() and high.is_integer() and all(
        isinstance(v, int) and not isinstance(v, bool) for v in values if v is not None)
    return IntInterval(int(low), int(high)) if whole else RealInterval(low, high)


def edge_line(edge, noun, refine=True, command="refine --widen"):
    """One warning: the hparam, the edge, the winners' values, the domain and the widened range."""
    values = sorted(edge.values)
    span = _number(values[0]) if values[0] == values[-1] else f"{_number(values[0])}-{_number(values[-1])}"
    where = (f"{edge.name}: the {len(values)} best {noun} all sit at the {edge.side} edge of "
             f"{_range(edge.domain)} ({span})")
    if edge.widened is None:
        limit = "a log int domain starts at 1" if edge.domain.log else "a bound is not widened past 0"
        return f"{where}; --widen cannot widen it ({limit}): widen it by hand if that makes sense"
    scale = " on a log scale" if edge.widened.log else ""
    if refine:
        return f"{where}; try {command} ({_range(edge.widened)}{scale})"
    return f"{where}; try a wider range ({_range(edge.widened)}{scale})"


def no_effect_lines(summaries, metric):
    """One note per hparam whose importance is at or below its noise level."""
    return [f"{summary.name}: no effect on {metric} beyond noise (importance {_number(summary.importance)}; "
            f"shuffled metric values reach {_number(summary.noise)})"
            for summary in summaries if summary.below_noise]


def _range(domain):
    return f"{_number(domain.min)}..{_number(domain.max)}"


def _number(value):
    return human(float(value) if isinstance(value, float) else value, DIGITS)
