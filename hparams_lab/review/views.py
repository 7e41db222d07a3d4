"""What review shows: the leaderboard, the per-hparam summary and the side-by-side comparison,
as Tables (review.output renders them) or as JSON-ready data."""

from collections import Counter

from hparams_lab.review.output import Table, human


def per_epoch_keys(rows, metric_keys):
    """Metric keys logged more than once in some run: those get a best value and its step."""
    return [key for key in metric_keys if any(key in row.series and row.series[key].count > 1 for row in rows)]


def _identity_columns(rows):
    """experiment (only when rows span several), run, trial_id (only when some row has one), status."""
    columns = []
    if len({row.experiment for row in rows}) > 1:
        columns.append(("experiment", lambda row: row.experiment))
    columns.append(("run", lambda row: row.run))
    if any(row.trial_id for row in rows):
        columns.append(("trial_id", lambda row: row.trial_id))
    columns.append(("status", lambda row: row.status))
    return columns


def leaderboard_table(rows, logs, ranking, maximizes, complete, front=None, places=None):
    """complete (CSV): every metric with its best and best step, in declared order.

    Otherwise (screen, markdown): the ranking metric and its best first, so that
    it survives when columns are cut to fit a terminal, then hparams, then the
    other metrics' last values. With several objectives (``front``: review.query.Front,
    ``places``: {id(row): (pareto rank, why infeasible)}), a "pareto" column after the
    status marks the front, and the other objectives follow the ranking metric.
    """
    columns = _identity_columns(rows)
    others = []
    if front is not None:
        columns.append(("pareto", lambda row: _pareto_cell(places.get(id(row)))))
        others = [o.name for o in front.objectives if o.name != ranking.key]
    taken = {name for name, _ in columns} | set(logs.metric_keys)
    # An hparam named like a metric or a fixed column gets a prefix, so no two headers are equal.
    hparams = [(f"hparam:{name}" if name in taken else name, _hparam(name)) for name in logs.hparam_names]
    epoch_keys = per_epoch_keys(logs.rows, logs.metric_keys)
    if complete or ranking is None:
        columns += hparams + [(key, _last(key)) for key in logs.metric_keys]
        if complete:
            for key in epoch_keys:
                columns += [(f"{key}:best", _best(key, maximizes(key), 0)),
                            (f"{key}:best_step", _best(key, maximizes(key), 1))]
    else:
        columns.append((ranking.key, _last(ranking.key)))
        if ranking.key in epoch_keys:
            columns.append((f"{ranking.key} best@step", _best_at(ranking.key, ranking.maximize)))
        columns += [(key, _last(key)) for key in others]
        columns += hparams + [(key, _last(key)) for key in logs.metric_keys if key != ranking.key and key not in others]
    title = ""
    if ranking is not None and ranking.chosen and not complete:
        title = (f"ranked by {ranking.key} ({'higher' if ranking.maximize else 'lower'} is better): "
                 f"no ranking metric declared, so {ranking.chosen}; --sort picks another")
    if front is not None and not complete:
        said = ", ".join(f"{o.name}:{o.direction}" for o in front.objectives)
        kept = "; ".join(str(c) for c in front.constraints)
        title = (f"Pareto front first by {said}" + (f" (infeasible unless {kept})" if kept else "")
                 + f"; each part by {ranking.key}. pareto: front, a later front's rank, infeasible")
    return Table([name for name, _ in columns], [[cell(row) for _, cell in columns] for row in rows], title=title)


def _pareto_cell(place):
    if place is None:
        return None
    rank, why = place
    if why is not None:
        return "infeasible"
    return None if rank is None else "front" if rank == 1 else rank


def _hparam(name):
    return lambda row: row.hparams.get(name)


def _last(key):
    return lambda row: row.series[key].last if key in row.series else None


def _best(key, maximize, part):
    return lambda row: row.series[key].best(maximize)[part] if key in row.series else None


def _best_at(key, maximize):
    def cell(row):
        if key not in row.series:
            return None
        value, step = row.series[key].best(maximize)
        return f"{human(value)} @{step}"
    return cell


def leaderboard_json(rows, logs, maximizes, places=None):
    """The documented JSON: hparams as logged, last metric values, best of per-epoch metrics;
    with several objectives (``places``) also each run's "pareto_rank" and "infeasible" (or null)."""
    epoch_keys = set(per_epoch_keys(logs.rows, logs.metric_keys))
    out = [{"experiment": row.experiment, "run": row.run, "trial_id": row.trial_id, "status": row.status,
            "hparams": {name: row.hparams[name] for name in logs.hparam_names if name in row.hparams},
            "metrics": {key: series.last for key, series in row.series.items()},
            "best": {key: dict(zip(("value", "step"), series.best(maximizes(key))))
                     for key, series in row.series.items() if key in epoch_keys}}
           for row in rows]
    if places is not None:
        for entry, row in zip(out, rows):
            entry["pareto_rank"], entry["infeasible"] = places.get(id(row), (None, None))
    return out


def summary_table(summaries, ranking):
    """One line per hparam value (or range): importance, runs, mean and best of the ranking metric."""
    better = "higher" if ranking.maximize else "lower"
    rows = []
    for summary in summaries:
        for index, bucket in enumerate(summary.buckets):
            rows.append([summary.name if index == 0 else "", round(summary.importance, 3) if index == 0 else None,
                         bucket.label, bucket.count, bucket.mean, bucket.best])
    return Table(["hparam", "importance", "value", "runs", "mean", "best"], rows,
                 title=f"{ranking.key} by hparam ({better} is better; importance: see README)")


def compare_table(sides, ranking):
    """sides: [(name, logs, ranked rows)]. Rows of facts, a column per experiment, '*' where they differ."""
    bests = [rows[0] if rows else None for _, _, rows in sides]
    names = sorted({name for _, logs, _ in sides for name in logs.hparam_names})
    facts = [("runs", [len(logs.rows) for _, logs, _ in sides]),
             ("status", [_status_counts(logs.rows) for _, logs, _ in sides]),
             ("best run", [best.run if best else None for best in bests]),
             (f"best {ranking.key}", [ranking.value(best) if best else None for best in bests])]
    facts += [(f"best: {name}", [best.hparams.get(name) if best else None for best in bests]) for name in names]
    facts += [(f"tried: {name}", [_tried(logs.rows, name) for _, logs, _ in sides]) for name in names]
    rows = [[label] + values + ["*" if len({repr(v) for v in values}) > 1 else ""] for label, values in facts]
    return Table([""] + [name for name, _, _ in sides] + ["differs"], rows,
                 title=f"best by {ranking.key} ({'higher' if ranking.maximize else 'lower'} is better)")


def compare_json(sides, ranking, maximizes):
    experiments = []
    for name, logs, rows in sides:
        best = leaderboard_json(rows[:1], logs, maximizes)
        experiments.append({"name": name, "runs": len(logs.rows), "status": dict(Counter(r.status for r in logs.rows)),
                            "hparams_tried": {h: _tried_values(logs.rows, h) for h in logs.hparam_names},
                            "best": best[0] if best else None})
    bests = [side["best"]["hparams"] if side["best"] else {} for side in experiments]
    names = sorted({name for best in bests for name in best})
    differs = [name for name in names if len({repr(best.get(name)) for best in bests}) > 1]
    return {"sort": ranking.key, "maximize": ranking.maximize, "experiments": experiments,
            "best_hparams_differ": differs}


def _status_counts(rows):
    return ", ".join(f"{count} {status}" for status, count in sorted(Counter(r.status for r in rows).items()))


def _tried_values(rows, name):
    values = {row.hparams[name] for row in rows if name in row.hparams}
    return sorted(values, key=lambda v: (type(v).__name__, v))


def _tried(rows, name):
    return " ".join(human(value) for value in _tried_values(rows, name))
