"""Choose, filter and order review's rows: --sort, --where, --status, --top, --maximize/--minimize."""

import math
import re
from dataclasses import dataclass

from hparams_lab.core.errors import UserError
from hparams_lab.core.trial import TrialStatus

# Longest first, so that '>=' is not read as '>' followed by '=...'.
_CONDITION = re.compile(r"^\s*(?P<name>[^<>=!]+?)\s*(?P<op><=|>=|!=|==|=|<|>)\s*(?P<text>.*?)\s*$", re.S)
_ORDERING = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
             ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_TRUE, _FALSE = {"true", "yes", "1"}, {"false", "no", "0"}


@dataclass(frozen=True)
class Ranking:
    """The metric rows are ranked by, and which way is better."""

    key: str
    maximize: bool
    chosen: str = ""  # how review picked it when none was declared or asked for ("the first validation metric")

    def value(self, row):
        series = row.series.get(self.key)
        return None if series is None or math.isnan(series.last) else series.last

    def sort(self, rows):
        """Best first; rows without the metric last; ties in run order."""
        def order(row):
            value = self.value(row)
            if value is None:
                return (1, 0.0, row.experiment, row.run)
            return (0, -value if self.maximize else value, row.experiment, row.run)
        return sorted(rows, key=order)


@dataclass(frozen=True)
class Condition:
    """One --where: an hparam or metric compared with a literal."""

    name: str
    operator: str
    text: str
    is_metric: bool

    def holds(self, row):
        value = row.series[self.name].last if self.is_metric and self.name in row.series \
            else row.hparams.get(self.name)
        if value is None:
            return False
        if self.operator in _ORDERING:
            return isinstance(value, (int, float)) and not isinstance(value, bool) \
                and _ORDERING[self.operator](value, float(self.text))
        return (_equals(value, self.text)) == (self.operator != "!=")


def _equals(value, text):
    if isinstance(value, bool):
        lowered = text.lower()
        return (lowered in _TRUE) if value else (lowered in _FALSE)
    if isinstance(value, (int, float)):
        try:
            return value == float(text)
        except ValueError:
            return False
    return str(value) == text


def parse_condition(expression, logs):
    """A --where expression such as 'optimizer=adam' or 'num_units>=32', checked against the logs."""
    match = _CONDITION.match(expression)
    if not match:
        raise UserError(f"--where {expression!r}: expected NAME OP VALUE with OP one of "
                        "= != < <= > >=, e.g. 'optimizer=adam' or 'num_units>=32'")
    name, operator, text = match["name"], match["op"], match["text"]
    is_metric = name not in logs.hparam_names
    if is_metric:
        name = resolve_metric(name, logs.metric_keys, f"--where {expression!r}", logs.hparam_names)
    if operator in _ORDERING and not _is_number(text):
        raise UserError(f"--where {expression!r}: {operator} needs a number, got {text!r}; "
                        "compare text with = or !=")
    return Condition(name, "=" if operator == "==" else operator, text, is_metric)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def resolve_metric(name, metric_keys, option, hparam_names=()):
    """A metric key from its full key or, if unambiguous, its bare tag."""
    if name in metric_keys:
        return name
    by_tag = [key for key in metric_keys if key.rsplit("/", 1)[-1] == name]
    if len(by_tag) == 1:
        return by_tag[0]
    hparams = f"; hparams: {', '.join(hparam_names)}" if hparam_names else ""
    reason = f"is ambiguous ({', '.join(by_tag)})" if by_tag else "is not logged"
    raise UserError(f"{option}: {name!r} {reason}; metrics: {', '.join(metric_keys)}{hparams}")


def ranking(logs, sort, maximizes):
    """--sort METRIC, else the experiment's declared ranking metric, else a validation metric
    (accuracy-like before loss-like), else the first metric.

    maximizes: metric key -> whether higher is better (reader.maximizes with the flags).
    None when the sessions logged no scalars at all (then rows stay in run order).
    """
    if not logs.metric_keys and not sort:
        return None
    if sort:
        key = resolve_metric(sort, logs.metric_keys, "--sort")
    elif logs.declared_metric:
        key = logs.declared_metric
    else:
        # Ranking an undeclared logdir by its first tag (train/epoch_accuracy, say) puts an
        # overfitting trial first: KerasTuner's, Keras callback, tensorboardX, tutorial logs.
        key = default_metric(logs.metric_keys, maximizes)
        how = "the first validation metric" if _VALIDATION.search(key) else "the first metric (none is a validation one)"
        return Ranking(key, maximizes(key), chosen=how)
    return Ranking(key, maximizes(key))


_VALIDATION = re.compile(r"(^|[/_.\-])(val|validation|eval|evaluation)([/_.\-]|$)", re.I)


def default_metric(metric_keys, maximizes):
    """The first validation metric where higher is better, else the first validation metric,
    else the first metric."""
    validation = [key for key in metric_keys if _VALIDATION.search(key)]
    better_up = [key for key in validation if maximizes(key)]
    return (better_up or validation or list(metric_keys))[0]


def select(logs, where=(), statuses=(), ranking_=None):
    """Rows passing every --where and --status, best first when ranked."""
    conditions = [parse_condition(expression, logs) for expression in where]
    wanted = _statuses(statuses)
    rows = [row for row in logs.rows
            if (not wanted or row.status in wanted) and all(c.holds(row) for c in conditions)]
    return ranking_.sort(rows) if ranking_ else rows


def _statuses(names):
    """--status names (any case) as TrialStatus members; UserError for a name that is none."""
    wanted = {name.upper() for name in names}
    unknown = wanted - {status.value for status in TrialStatus}
    if unknown:
        raise UserError(f"--status {', '.join(sorted(unknown))}: not a status; "
                        f"choose from {', '.join(status.lower() for status in TrialStatus)}")
    return {TrialStatus(name) for name in wanted}


@dataclass(frozen=True)
class Front:
    """Several objectives over review's rows (core.objectives decides): each as a metric key
    and its direction, the constraints on metric keys; ``place`` gives a row's
    (pareto rank, why it is infeasible)."""

    objectives: tuple  # core.objectives.Objective, named by metric key
    constraints: tuple  # core.objectives.Constraint, named by metric key

    @property
    def ranking(self):
        first = self.objectives[0]
        return Ranking(first.name, first.maximize)

    def order(self, rows):
        """(row, pareto rank, why infeasible), the front first (core.objectives.order)."""
        from hparams_lab.core.objectives import order

        points = [None if row.status is TrialStatus.FAILURE else row.metrics for row in rows]
        return [(rows[i], rank, why) for i, rank, why in order(points, self.objectives, self.constraints)]


def front(logs, metrics, constraints, maximizes, sort=None):
    """The objectives review ranks by: ``--metric`` given several times (or with a --constraint),
    else, without --sort, the ones the experiment.json records; None for one metric, as ever.

    Each --metric is NAME[:min|max], NAME a metric key or an unambiguous tag; without a
    direction, maximizes (flags, the recorded direction, the name rule) decides.
    """
    from hparams_lab.core.objectives import Constraint, Objective, check_names, parse_constraint, parse_objective

    if not metrics:
        if sort:  # --sort: one metric ranks, as ever
            return None
        metrics, constraints = logs.objectives, constraints or logs.constraints
        if not metrics and constraints and logs.declared_metric:  # --constraint alone: on the declared metric
            metrics = (logs.declared_metric,)
    if not metrics or (len(metrics) == 1 and not constraints):
        return None
    objectives = []
    for text in metrics:
        parsed = parse_objective(text)
        key = resolve_metric(parsed.name, logs.metric_keys, f"--metric {text!r}", logs.hparam_names)
        explicit = ":" in text
        objectives.append(Objective(key, parsed.maximize if explicit else maximizes(key)))
    limits = []
    for text in constraints:
        parsed = parse_constraint(text)
        key = resolve_metric(parsed.name, logs.metric_keys, f"--constraint {text!r}", logs.hparam_names)
        limits.append(Constraint(key, parsed.op, parsed.bound))
    check_names(objectives, limits, logs.metric_keys)
    return Front(tuple(objectives), tuple(limits))
