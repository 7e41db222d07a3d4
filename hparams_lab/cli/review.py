"""`review`: rank, filter, export and report archived TensorBoard HParams logs.

Only click and the status enum (stdlib only) are imported at module level, so that
the main CLI's --help stays quick; the readers are imported when the command runs.
Never imports TensorFlow.
"""

import click

from hparams_lab.cli.errors import Command
from hparams_lab.core.trial import TrialStatus

FORMATS = ("table", "csv", "json", "markdown")
STATUS_CHOICES = tuple(status.lower() for status in TrialStatus)  # pruned: bayes --pruner


@click.command("review", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("logdirs", nargs=-1, required=True, metavar="LOGDIR [LOGDIR_B]",
                type=click.Path(exists=True, file_okay=False))
@click.option("--sort", "sort_by", metavar="METRIC",
              help="Rank by this metric (key such as validation/epoch_accuracy, or a unique tag). "
                   "Default: the experiment's declared ranking metric, else the first metric.")
@click.option("--top", type=click.IntRange(min=1), metavar="K", help="Show only the best K runs.")
@click.option("--where", multiple=True, metavar="EXPR",
              help="Keep runs where an hparam or metric compares true, e.g. 'optimizer=adam', "
                   "'num_units>=32'. Repeat to require several.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUS_CHOICES, case_sensitive=False),
              help="Keep runs with this status (repeatable).")
@click.option("--maximize", multiple=True, metavar="TAG", help="Higher is better for this metric.")
@click.option("--minimize", multiple=True, metavar="TAG",
              help="Lower is better for this metric. Default: the direction experiment.json records, "
                   "else lower for tags naming a loss or error.")
@click.option("--metric", "metrics", multiple=True, metavar="NAME[:min|max]",
              help="Rank by several objectives: repeat it (--metric best_val_accuracy --metric params:min) for "
                   "the Pareto front first, marked. Default: the objectives experiment.json records. Once: as --sort.")
@click.option("--constraint", "constraints", multiple=True, metavar="NAME<=V",
              help="Runs whose metric breaks it are infeasible: never on the front, listed after it "
                   "(also <, >=, >). Default: the constraints experiment.json records.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), metavar="FILE", help="Write there instead of stdout.")
@click.option("--summary/--no-summary", default=True, show_default=True,
              help="After a table or markdown leaderboard: the ranking metric per hparam value, and importance.")
@click.option("--report", type=click.Path(dir_okay=False), metavar="FILE.html",
              help="Also write a self-contained HTML report (needs the 'report' extra: plotly).")
@click.option("--no-cache", is_flag=True,
              help="Read every event file afresh, without review's cache of what each one holds "
                   "(~/.cache/hparams_lab/review; HPARAMS_LAB_REVIEW_CACHE=off does the same).")
def review(logdirs, sort_by, top, where, statuses, maximize, minimize, metrics, constraints, output_format, output,
           summary, report, no_cache):
    """Leaderboard of the TensorBoard HParams runs under LOGDIR, or LOGDIR vs LOGDIR_B side by side.

    Reads any HParams logs (tf.summary, Keras, tensorboardX, PyTorch) without TensorFlow.
    """
    if len(logdirs) > 2:
        raise click.UsageError("review takes one LOGDIR, or two to compare side by side")
    if report:
        _check_plotly()
    for flag, path in (("--output", output), ("--report", report)):
        _check_writable(flag, path)
    if len(metrics) == 1 and not constraints:  # one --metric: --sort, with its direction if it says one
        text = metrics[0]
        name, _, direction = (part.strip() for part in text.partition(":"))
        if direction not in ("", "max", "min"):
            raise click.UsageError(f"--metric {text!r}: direction {direction!r}; choose min or max")
        if sort_by is not None and sort_by != name:
            raise click.UsageError("--metric and --sort name different metrics: give one")
        sort_by, metrics = name, ()
        if direction == "max":
            maximize = (*maximize, name)
        elif direction == "min":
            minimize = (*minimize, name)
    import gc

    # Reading a thousand runs makes a few hundred thousand objects and no cycles worth
    # collecting: the cyclic collector's passes over them cost review ~6% (BENCHMARKS.md).
    collecting = gc.isenabled()
    gc.disable()
    try:
        text, notes = _run(logdirs, sort_by, top, where, statuses, maximize, minimize, output_format, summary, report,
                           width=None if output else _terminal_width(), cache=not no_cache,
                           objectives=(metrics, constraints))
    finally:
        if collecting:
            gc.enable()
    if output:
        try:
            with open(output, "w", encoding="utf-8", newline="") as file:
                file.write(text)
        except OSError as err:  # a full disk, a directory by that name
            from hparams_lab.core.errors import UserError

            raise UserError(f"--output {output!r} could not be written: {err.strerror}") from None
        click.echo(f"review: wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
    for line in notes:  # after the leaderboard, on stderr with review's other warnings
        click.echo(line, err=True)


def _run(logdirs, sort_by, top, where, statuses, maximize, minimize, output_format, summary, report, width,
         cache=False, objectives=((), ())):
    from functools import partial

    from hparams_lab.review import query, reader
    from hparams_lab.review.output import visible

    sides = []
    for logdir in logdirs:
        logs = reader.load(logdir, cache=cache)
        for warning in logs.warnings:
            click.echo(f"warning: {visible(warning)}", err=True)
        sides.append((logdir, logs))
    # One direction per metric for both sides of `review A B`; the first LOGDIR's record wins.
    recorded = {key: higher for _, logs in reversed(sides) for key, higher in logs.directions.items()}
    maximizes = partial(reader.maximizes, maximize=maximize, minimize=minimize, recorded=recorded)
    # Several objectives (--metric repeated, or experiment.json's): the front first (core.objectives).
    front = query.front(sides[0][1], *objectives, maximizes, sort_by) if len(sides) == 1 else None
    if len(sides) == 2 and objectives[0]:
        raise click.UsageError("review A B compares by one metric: use --sort, not several --metric")
    ranking = front.ranking if front is not None else _common_ranking([logs for _, logs in sides], sort_by, maximizes)
    # Filters pick the runs; --top only cuts what is listed, so summaries and charts see them all.
    selected = [(name, logs, query.select(logs, where, statuses, ranking)) for name, logs in sides]
    if len(selected) == 2:
        return _compare(selected, ranking, maximizes, output_format, width), []
    _, logs, rows = selected[0]
    from hparams_lab.review.notes import note_summaries, review_notes

    places = None
    if front is not None:
        ordered = front.order(rows)
        rows = [row for row, _, _ in ordered]
        places = {id(row): (rank, why) for row, rank, why in ordered}
    summaries = note_summaries(rows, logs, ranking) if ranking is not None and rows else None  # computed once
    notes = review_notes(rows, logs, ranking, summaries)  # about the space: edges, hparams without effect
    if report:
        from hparams_lab.review.report import write_report

        write_report(report, rows, rows[:top], logs, ranking, maximizes, notes=notes, front=front, places=places)
        click.echo(f"review: wrote {report}", err=True)
    return _leaderboard(rows, rows[:top], logs, ranking, maximizes, output_format, summary, width, front, places,
                        summaries), [visible(line) for line in notes]


def _leaderboard(rows, shown, logs, ranking, maximizes, output_format, summary, width, front=None, places=None,
                 summaries=None):
    from hparams_lab.review import output, views

    if output_format == "json":
        return output.to_json(views.leaderboard_json(shown, logs, maximizes, places))
    table = views.leaderboard_table(shown, logs, ranking, maximizes, complete=output_format == "csv",
                                    front=front, places=places)
    text = output.render(table, output_format, width)
    if logs.classes and output_format in ("table", "markdown"):
        text += "\n" + output.visible("classes (labels 0..n-1): " + ", ".join(logs.classes)) + "\n"
    if summary and ranking and output_format in ("table", "markdown"):
        if summaries is None:
            from hparams_lab.review.summary import summarize

            summaries = summarize(rows, logs.hparam_names, ranking)
        text += "\n" + output.render(views.summary_table(summaries, ranking), output_format, width)
    return text


def _compare(selected, ranking, maximizes, output_format, width):
    from hparams_lab.review import output, views

    if ranking is None:
        raise click.UsageError("review A B: the runs log no metric to compare by")
    if output_format == "json":
        return output.to_json(views.compare_json(selected, ranking, maximizes))
    return output.render(views.compare_table(selected, ranking), output_format, width)


def _common_ranking(all_logs, sort_by, maximizes):
    """The ranking metric; with two experiments, one that both logged."""
    from hparams_lab.core.errors import UserError
    from hparams_lab.review.query import ranking

    rankings = [ranking(logs, sort_by, maximizes) for logs in all_logs]
    for candidate in rankings:
        if candidate and all(candidate.key in logs.metric_keys for logs in all_logs):
            return candidate
    if len(all_logs) == 1:
        return rankings[0]
    shared = [key for key in all_logs[0].metric_keys if all(key in logs.metric_keys for logs in all_logs)]
    if not shared:
        raise UserError("review A B: the two experiments share no metric; name one with --sort")
    return ranking(all_logs[0], shared[0], maximizes)


def _check_writable(flag, path):
    """Before reading any logs: the file's directory must exist (nothing is created for it)."""
    import os

    from hparams_lab.core.errors import UserError

    if path is None:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"{flag} {path!r}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK):
        raise UserError(f"{flag} {path!r}: directory {directory!r} is not writable")


def _check_plotly():
    import importlib.util

    if importlib.util.find_spec("plotly") is None:
        raise click.UsageError("--report needs plotly: pip install -e '.[report]'")


def _terminal_width():
    import sys

    if not sys.stdout.isatty():
        return None
    import shutil

    return shutil.get_terminal_size().columns


if __name__ == "__main__":  # `python -m hparams_lab.cli.review`, until run.py registers the command
    review()
