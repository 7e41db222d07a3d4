"""`review --report FILE.html`: one self-contained page with the leaderboard and plotly charts.

plotly is an optional extra (`pip install -e '.[report]'`); plotly.js is inlined
once, so the page needs no network. Every logged string is HTML-escaped before
it reaches the page or plotly (whose labels accept a little HTML), so the data
holds no '<' that could close a <script> or open a tag.
"""

import html
import math

from hparams_lab.review.output import human
from hparams_lab.review.summary import summarize
from hparams_lab.review.views import leaderboard_table, summary_table

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; }
ul.notes { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.5em 0.5em 2em; }
div.board { max-height: 60vh; overflow: auto; display: inline-block; max-width: 100%; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
"""
_COLUMNS = 3  # scatter plots per row


def write_report(path, rows, shown, logs, ranking, maximizes, notes=(), front=None, places=None):
    with open(path, "w", encoding="utf-8") as file:
        file.write(build_report(rows, shown, logs, ranking, maximizes, notes, front, places))


def build_report(rows, shown, logs, ranking, maximizes, notes=(), front=None, places=None):
    """The page: rows are all runs that passed the filters (charts), shown the listed ones;
    notes (review.notes' lines) in a section of their own above the leaderboard. With several
    objectives (``front``: review.query.Front, ``places``: {id(row): (pareto rank, why
    infeasible)}) the leaderboard marks the front and a scatter of the first two objectives
    draws it, highlighted."""
    experiments = ", ".join(sorted({row.experiment for row in rows}))
    title = f"Review of {experiments}"
    parts = [f"<h1>{_text(title)}</h1>",
             f"<p>{len(rows)} run(s); ranked by <b>{_text(ranking.key if ranking else '(no metric)')}</b>"
             + (f" ({'higher' if ranking.maximize else 'lower'} is better)" if ranking else "") + "</p>",
             *_notes_html(notes),
             "<h2>Leaderboard</h2>",
             f"<div class=\"board\">{_html_table(leaderboard_table(shown, logs, ranking, maximizes, complete=False, front=front, places=places))}</div>"]
    charted = [row for row in rows if ranking and ranking.value(row) is not None]
    plotly_js = True  # inlined with the first chart only
    if front is not None and len(front.objectives) >= 2 and charted:
        parts += ["<h2>Pareto front</h2>", _figure_html(_front_scatter(rows, front, places), plotly_js)]
        plotly_js = False
    if charted and logs.hparam_names:
        parts += ["<h2>Hparams and metric</h2>", _figure_html(_parallel_coordinates(charted, logs, ranking), plotly_js),
                  "<h2>Metric against each hparam</h2>", _figure_html(_scatter_grid(charted, logs, ranking), False),
                  "<h2>By hparam value</h2>",
                  _html_table(summary_table(summarize(rows, logs.hparam_names, ranking), ranking))]
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{_text(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def _notes_html(notes):
    if not notes:
        return []
    items = "".join(f"<li>{_text(note)}</li>" for note in notes)
    return ["<h2>Notes on the space</h2>", f"<ul class=\"notes\">{items}</ul>"]


def _text(value):
    """A logged value as inert HTML text (also what plotly gets: it renders entities as characters)."""
    return html.escape(human(value), quote=False)  # plotly shows &quot; literally; quotes are inert here


def _html_table(table):
    head = "".join(f"<th>{_text(header)}</th>" for header in table.headers)
    body = "".join("<tr>" + "".join(_html_cell(cell) for cell in row) + "</tr>\n" for row in table.rows)
    caption = f"<caption>{_text(table.title)}</caption>" if table.title else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def _html_cell(cell):
    numeric = isinstance(cell, (int, float)) and not isinstance(cell, bool)
    return f"<td class=\"number\">{_text(cell)}</td>" if numeric else f"<td>{_text(cell)}</td>"


def _figure_html(figure, with_plotly_js):
    # plotly.js (about 4.6 MB) inlined once, with the first chart.
    return figure.to_html(full_html=False, include_plotlyjs=with_plotly_js, config={"displaylogo": False})


def _is_numeric_column(rows, name):
    values = [row.hparams.get(name) for row in rows]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _front_scatter(rows, front, places):
    """The first two objectives of every run with both, the front highlighted (and joined in
    order of the first), later fronts grey, infeasible runs as crosses."""
    import plotly.graph_objects as go

    x_objective, y_objective = front.objectives[:2]

    def value(row, key):
        series = row.series.get(key)
        return None if series is None or not math.isfinite(series.last) else series.last

    groups = {"front": [], "dominated": [], "infeasible": []}
    for row in rows:
        x, y = value(row, x_objective.name), value(row, y_objective.name)
        rank, why = places.get(id(row), (None, None))
        if x is None or y is None or (rank is None and why is None):
            continue
        kind = "infeasible" if why is not None else "front" if rank == 1 else "dominated"
        groups[kind].append((x, y, row, rank, why))
    groups["front"].sort(key=lambda point: point[0])
    styles = {"front": {"mode": "lines+markers", "marker": {"size": 11, "color": "#d62728"},
                        "line": {"color": "#d62728"}},
              "dominated": {"mode": "markers", "marker": {"size": 8, "color": "#9e9e9e", "opacity": 0.7}},
              "infeasible": {"mode": "markers", "marker": {"size": 9, "color": "#9e9e9e", "symbol": "x"}}}
    figure = go.Figure()
    for kind, points in groups.items():
        if not points:
            continue
        hover = [f"{_text(row.run)}<br>{_text(row.status)}<br>pareto rank {_text(rank)}"
                 + (f"<br>infeasible: {_text(why)}" if why else "") for _, _, row, rank, why in points]
        figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=kind, text=hover,
                                    hovertemplate="%{text}<br>%{x}, %{y}<extra></extra>", **styles[kind]))
    figure.update_xaxes(title_text=_text(f"{x_objective.name} ({x_objective.direction})"))
    figure.update_yaxes(title_text=_text(f"{y_objective.name} ({y_objective.direction})"))
    figure.update_layout(height=450, margin={"t": 30})
    return figure


def _parallel_coordinates(rows, logs, ranking):
    import plotly.graph_objects as go

    dimensions = [_dimension(rows, name) for name in logs.hparam_names]
    metric = [ranking.value(row) for row in rows]
    dimensions.append({"label": _text(ranking.key), "values": metric})
    line = {"color": metric, "colorscale": "Viridis", "reversescale": not ranking.maximize, "showscale": True}
    figure = go.Figure(go.Parcoords(dimensions=dimensions, line=line))
    figure.update_layout(height=450, margin={"l": 80, "r": 80, "t": 60, "b": 30})
    return figure


def _dimension(rows, name):
    """A parallel axis: numbers as they are, other values as evenly spaced labelled ticks."""
    if _is_numeric_column(rows, name):
        return {"label": _text(name), "values": [row.hparams[name] for row in rows]}
    labels = sorted({_text(row.hparams.get(name)) for row in rows})
    position = {label: index for index, label in enumerate(labels)}
    return {"label": _text(name), "values": [position[_text(row.hparams.get(name))] for row in rows],
            "tickvals": list(range(len(labels))), "ticktext": labels}


def _scatter_grid(rows, logs, ranking):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = logs.hparam_names
    grid_rows = math.ceil(len(names) / _COLUMNS)
    figure = make_subplots(rows=grid_rows, cols=min(_COLUMNS, len(names)),
                           subplot_titles=[_text(name) for name in names])
    hover = [f"{_text(row.run)}<br>{_text(row.status)}" for row in rows]
    metric = [ranking.value(row) for row in rows]
    for index, name in enumerate(names):
        numeric = _is_numeric_column(rows, name)
        x = [row.hparams[name] if numeric else _text(row.hparams.get(name)) for row in rows]
        figure.add_trace(go.Scatter(x=x, y=metric, mode="markers", text=hover, showlegend=False,
                                    hovertemplate="%{text}<br>%{x}: %{y}<extra></extra>",
                                    marker={"size": 7, "opacity": 0.7}),
                         row=index // _COLUMNS + 1, col=index % _COLUMNS + 1)
        if not numeric:
            figure.update_xaxes(type="category", categoryorder="category ascending",
                                row=index // _COLUMNS + 1, col=index % _COLUMNS + 1)
    figure.update_yaxes(title_text=_text(ranking.key), col=1)
    figure.update_layout(height=320 * grid_rows, margin={"t": 50})
    return figure
