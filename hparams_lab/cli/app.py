"""Command line: ``python run.py [study] [options]``, ``review``, ``tensorboard``, ``export``, ``rerun``.

``study`` is also the default command, so ``python run.py --strategy random`` runs a
study; study options given with another command are refused, not dropped. Every
command reports a user's mistake (a ``UserError``) the same way: one line on stderr,
``Error: ...``, exit code 2. Only click and stdlib-light modules load here; a study
imports its machinery (and TensorFlow) inside the command, so ``--help`` and
``review`` stay fast.
"""

from __future__ import annotations

import os
import shlex
import sys

import click

from hparams_lab.cli.errors import Command, fail
from hparams_lab.cli.review import review
from hparams_lab.core.trial import TrialStatus
from hparams_lab.search.registry import NAMES as STRATEGIES
from hparams_lab.study.config import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS

STUDY = "study"


class StudyCommand(Command):
    """The study: refuses to be followed by another command (its options would be lost)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _, rest, _ = self.make_parser(ctx).parse_args(list(args))
        named = [arg for arg in rest if arg in ctx.parent.command.commands and arg != STUDY]
        if named:
            raise click.UsageError(
                f"study options can't be given with `{named[0]}`: run `python run.py {named[0]} ...` "
                f"without them, or the study alone", ctx)
        return super().parse_args(ctx, args)


class Commands(click.Group):
    """A group whose default command is the study; its help shows the study's options too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [STUDY, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[study] [OPTIONS] | COMMAND [ARGS]...")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        study = self.commands[STUDY]
        rows = [row for param in study.get_params(ctx) if (row := param.get_help_record(ctx)) is not None]
        with formatter.section("Study options (python run.py [study] OPTIONS)"):
            formatter.write_dl(rows)
        self.format_commands(ctx, formatter)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run a hyperparameter study of a Keras model, logged for TensorBoard's HParams dashboard.

    With no command, runs a study (by default: random search over a small MLP on
    scikit-learn's bundled digits, offline). Then open TensorBoard on the logdir, or
    rank the trials with `review`.
    """


@main.command(STUDY, cls=StudyCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default="random", show_default=True,
              help="How trials are chosen from the space.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Random, bayes: how many trials [default: 10]. Hyperband: how many configurations "
                   "[default: what its brackets hold]. Other strategies: run only the first N.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds sampling, splits and training.")
@click.option("--space", "space", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Search space file (.toml or .json) [default: the built-in digits MLP space; "
                   "refine: the earlier experiment's].")
@click.option("--data", "--dataset", "data", default="digits", show_default=True,
              help="digits, iris, wine, breast_cancer (binary), diabetes (regression), mnist, fashion_mnist; "
                   "an .npz with x_train/y_train; a .csv with --target; or package.module:function "
                   "returning arrays or tf.data Datasets.")
@click.option("--target", "targets", multiple=True, metavar="COLUMN",
              help="CSV: the column to predict; repeat it for several outputs.")
@click.option("--task", type=click.Choice(["multiclass", "binary", "multilabel", "regression"]), default=None,
              help="What the labels are [default: inferred from them]; picks the loss, metrics and --metric.")
@click.option("--model", default="mlp", show_default=True,
              help="mlp, cnn, or package.module:function(hparams, input_shape, n_outputs) returning a "
                   "keras.Model (a compiled one keeps its loss, metrics and optimizer).")
@click.option("--loss", default=None, help="A Keras loss name [default: the task's].")
@click.option("--metrics", default=None, metavar="NAMES",
              help="Keras metric names, comma-separated, e.g. auc,precision [default: the task's].")
@click.option("--callbacks", default=None, metavar="MODULE:FUNCTION",
              help="A function (hparams[, run_dir]) returning Keras callbacks for each trial.")
@click.option("--fit", default=None, metavar="MODULE:FUNCTION",
              help="A function (hparams, model, data, callbacks) that trains instead of model.fit; "
                   "it must pass callbacks on.")
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULT_EPOCHS, show_default=True,
              help="Epochs per trial (an 'epochs' hparam overrides it).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="Batch size (a 'batch_size' hparam overrides it).")
@click.option("--max-epochs", type=click.IntRange(min=1), default=None,
              help="Cap every trial's epochs, an 'epochs' hparam too (quick smoke runs). "
                   "Hyperband: the most epochs a configuration trains [default: --epochs].")
@click.option("--patience", type=click.IntRange(min=0), default=None,
              help="Stop a trial after N epochs without improving the ranked metric.")
@click.option("--logdir", default="logs", show_default=True, type=click.Path(file_okay=True),
              help="Root of all experiments; point TensorBoard here.")
@click.option("--experiment", default=None, help="Experiment directory name [default: a timestamp and the process id].")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train each trial R times (seeds seed..seed+R-1); rank by the mean.")
@click.option("--cv", type=click.IntRange(min=2), default=None,
              help="Stratified K-fold cross-validation per trial; rank by the mean over folds.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trials at once, each in its own process with its share of the CPU threads.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the trials on the dask cluster whose scheduler is at ADDRESS (tcp://HOST:8786); "
                   "--logdir must be a path every worker reaches. Needs pip install -e '.[dask]'.")
@click.option("--gpus", default=None, metavar="all|none|0,1,3",
              help="GPUs the trials train on, one worker each [default: all there are; none without GPUs].")
@click.option("--per-gpu", type=int, default=1, show_default=True, metavar="K",
              help="Trials sharing each GPU at once, each capped at about 1/K of its memory.")
@click.option("--mixed-precision", is_flag=True, help="Keras' mixed_float16 policy on the GPUs (recorded).")
@click.option("--overwrite", is_flag=True, help="Start an existing --experiment over (its runs are deleted).")
@click.option("--timeout", default=None, metavar="DURATION",
              help="No new trial starts after this (90s, 30m, 2h, 1h30m); running ones finish. The same "
                   "command resumes with a fresh budget.")
@click.option("--timeout-kill", is_flag=True,
              help="At --timeout, stop running trials too, at their epoch's end (FAILURE 'timeout', rerun on resume).")
@click.option("--max-epochs-total", type=int, default=None, metavar="N",
              help="No new trial starts once this run has trained N epochs in all (hyperband's natural budget).")
@click.option("--retries", type=int, default=0, show_default=True,
              help="Try a trial that raised again this many times, each in a fresh attempt directory "
                   "(not a NaN loss or a mistake of yours: they would fail again).")
@click.option("--max-failures", type=int, default=None, metavar="M",
              help="Stop the study after M failed trials in a row, with the last error.")
@click.option("--keep-best", type=int, default=1, show_default=True, metavar="K",
              help="Keep the models of the K best trials so far as model.keras in their run directories "
                   "(best epoch's weights for a best_val_ metric); 0 keeps none. `export` copies one out.")
@click.option("--from", "refine_from", default=None, metavar="EXPERIMENT",
              help="refine, bayes: earlier trials to start from: an experiment (a name under --logdir, or a "
                   "path) or any TensorBoard HParams logdir (refine then needs --space).")
@click.option("--from-metric", default=None, metavar="TAG",
              help="refine, bayes: the metric of --from's logs to learn from [default: --metric].")
@click.option("--enqueue", default=None, metavar="FILE",
              help="Points of your own to run first (.json list of objects or .toml [[trial]] tables; "
                   "hparams left out take their domain's middle), then the strategy goes on.")
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="refine: how many of the earlier best trials to refine around [default: 3].")
@click.option("--points", type=click.IntRange(min=1), default=None,
              help="refine: values per numeric hparam around each winner [default: 3]; "
                   "one-at-a-time: values per interval hparam [default: 5].")
@click.option("--widen", is_flag=True, default=False,
              help="refine: first widen each interval hparam whose 5 best earlier trials sit at one edge "
                   "of its domain, by the domain's width (log-aware); see README.")
@click.option("--base", "base_hparams", default=None,
              help="one-at-a-time: the base, e.g. 'units=64,optimizer=adam', or a .json/.toml file "
                   "[default: each domain's middle].")
@click.option("--factor", type=click.IntRange(min=2), default=None,
              help="hyperband, successive-halving: keep the best 1/factor at each rung, train them "
                   "factor times longer [default: 3].")
@click.option("--pruner", type=click.Choice(["median"]), default=None,
              help="bayes: stop trials whose per-epoch validation value falls behind the median of "
                   "finished trials (optuna's MedianPruner) [default: none].")
@click.option("--metric", multiple=True, metavar="NAME[:min|max]",
              help="Metric that ranks trials, best_val_/final_val_/test_ + a metric the model logs [default: "
                   "the task's: best_val_accuracy (multiclass), best_val_auc (binary, multilabel), "
                   "best_val_loss (regression); mean_... with --repeats, cv_mean_... with --cv]. Repeat it for "
                   "several objectives (a Pareto front), e.g. --metric best_val_accuracy --metric params:min; "
                   "after the first, cost metrics too: params, epoch_time_s, latency_ms, peak_memory_mb.")
@click.option("--constraint", "constraints", multiple=True, metavar="NAME<=V",
              help="A trial whose metric breaks it is infeasible: never best, never on the front, the reason "
                   "in its trial.json, e.g. 'params<=50000' (also <, >=, >); repeatable.")
@click.option("--direction", type=click.Choice(["max", "min"]), default=None,
              help="Whether higher or lower --metric is better [default: from its name: losses and errors "
                   "are minimised, the rest maximised].")
def study(**options: object) -> None:
    """Run a study (the default command): train one model per trial, log each for TensorBoard."""
    from hparams_lab.cli.console import ConsoleReporter, leaderboard
    from hparams_lab.study.run import StudyConfig, run_study

    config = StudyConfig.of(command=shlex.join(sys.argv), **options)
    reporter = ConsoleReporter(sys.stdout, metric=None, epochs=config.epochs,  # the study's, when it starts
                               live=sys.stdout.isatty())
    result = run_study(config, reporter=reporter)
    ranked = result.ranked()
    n_ok = sum(r.status is TrialStatus.SUCCESS for r in ranked)
    n_pruned = sum(r.status is TrialStatus.PRUNED for r in ranked)
    pruned = f", {n_pruned} pruned" if n_pruned else ""
    if result.stopped is not None:
        from hparams_lab.review.output import visible

        click.echo("\n" + visible(result.stopped.message))
    if result.objectives:  # several objectives (or a constraint): the Pareto front first, marked
        from hparams_lab.cli.console import infeasible_lines
        from hparams_lab.review.output import visible

        placed = result.placed()
        said = ", ".join(str(o) for o in result.objectives)
        click.echo(f"\n{n_ok}/{len(ranked)} trials succeeded{pruned}. Leaderboard by {said}: the Pareto front "
                   f"first (pareto: front, a later front's rank, infeasible), each part by {result.metric}:")
        click.echo(leaderboard(ranked, result.metric, names=result.hparam_names, placed=placed,
                               objectives=result.objectives))
        for line in infeasible_lines(placed):
            click.echo(visible(line))
    else:
        click.echo(f"\n{n_ok}/{len(ranked)} trials succeeded{pruned}. Leaderboard by {result.metric}:")
        click.echo(leaderboard(ranked, result.metric, names=result.hparam_names))
    if result.classes:
        from hparams_lab.review.output import visible

        click.echo(visible("Classes (labels 0..n-1): " + ", ".join(result.classes)))
    _print_space_notes(result)
    if config.strategy == "one-at-a-time":
        _print_effects(result)
    logdir = result.experiment_dir.parent
    click.echo(f"\nLogs: {result.experiment_dir}")
    click.echo(f"TensorBoard: tensorboard --logdir {shlex.quote(str(logdir))}   (or: python run.py tensorboard)")


def _print_space_notes(study) -> None:
    """Edge warnings and no-effect notes about the space (cli.console.space_notes), one line each."""
    from hparams_lab.cli.console import space_notes
    from hparams_lab.core.space import Space
    from hparams_lab.review.output import visible
    from hparams_lab.store.experiment import ExperimentRecord

    space = Space.from_dict(ExperimentRecord.read(study.experiment_dir).space)
    lines = space_notes(study.results, space, study.metric, study.directions, shlex.quote(study.experiment_dir.name))
    if lines:
        click.echo("\n" + "\n".join(visible(line) for line in lines))


def _print_effects(study) -> None:
    from hparams_lab.cli.console import format_effects
    from hparams_lab.search.one_at_a_time import effects
    from hparams_lab.store.experiment import ExperimentRecord

    base = ExperimentRecord.read(study.experiment_dir).settings["base"]
    click.echo("\n" + format_effects(effects(study.results, base, study.metric), base, study.metric))


main.add_command(review)


@main.command(cls=Command, context_settings={"ignore_unknown_options": True})
@click.argument("logdir", default="logs", type=click.Path(file_okay=False))
@click.argument("tensorboard_args", nargs=-1, type=click.UNPROCESSED)
def tensorboard(logdir: str, tensorboard_args: tuple[str, ...]) -> None:
    """Start TensorBoard on LOGDIR (default: logs); extra arguments go to TensorBoard."""
    if not os.path.isdir(logdir):
        fail(f"logdir {logdir!r} does not exist; run a study first")
    argv = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, *tensorboard_args]
    os.execv(sys.executable, argv)


@main.command(cls=Command)
@click.argument("experiment", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), metavar="FILE.keras",
              help="Where to write the model; a JSON sidecar (FILE.json) describes it.")
@click.option("--trial", default=None, metavar="ID", help="This trial instead of the best one.")
@click.option("--retrain", is_flag=True,
              help="Train the trial again from its settings on training + validation data, for the epochs "
                   "at which its metric was best, instead of copying its kept model.")
@click.option("--model", default=None, metavar="MODULE:FUNCTION", help="--retrain: trust the recorded model.")
@click.option("--data", default=None, help="--retrain: trust the recorded data function or file.")
def export(experiment: str, output: str, trial: str | None, retrain: bool, **given: str | None) -> None:
    """Write the best (or --trial) model of EXPERIMENT (LOGDIR/EXPERIMENT) to a .keras file.

    Copies the model the study kept (--keep-best, default the best trial's), or with
    --retrain trains it again. keras.models.load_model opens the file; the sidecar
    holds its hparams, metrics, epoch, data source, seed, versions and commands.
    """
    from hparams_lab.review.output import visible
    from hparams_lab.study.export import export as export_model

    confirm = (lambda question: click.confirm(question, default=False)) if sys.stdin.isatty() else None
    done = export_model(experiment, output, trial=trial, retrain=retrain, given=given, confirm=confirm,
                        command=shlex.join(sys.argv))
    weights = done.info["weights"]
    how = (f"retrained {weights['epochs']} epochs on training + validation data" if done.retrained
           else f"kept model, {weights.get('weights', 'weights')} (epoch {weights.get('epoch', '?')})")
    score = done.trial.metrics.get(done.info["metric"])
    click.echo(visible(f"trial {done.trial.trial.id} ({done.info['metric']}={score:.6g}): {how}"))
    click.echo(visible(f"model:   {done.path}"))
    click.echo(visible(f"sidecar: {done.sidecar}"))


@main.command(cls=Command)
@click.argument("trial_dir", type=click.Path())
@click.option("--model", default=None, metavar="MODULE:FUNCTION", help="Trust the recorded model: name it again.")
@click.option("--data", default=None, help="Trust the recorded data function or file: name it again.")
@click.option("--callbacks", default=None, metavar="MODULE:FUNCTION", help="Trust the recorded callbacks.")
@click.option("--fit", default=None, metavar="MODULE:FUNCTION", help="Trust the recorded fit.")
def rerun(trial_dir: str, **given: str | None) -> None:
    """Train TRIAL_DIR (LOGDIR/EXPERIMENT/TRIAL) again and compare its ranked metric.

    The trial's recorded hparams, seed, data and model are trained into a new run
    directory <trial-id>.rerun-N in the same experiment; prints the recorded and the
    new value and whether they match. Logs are untrusted: code or files they name
    (a model, data function, callbacks, fit, a data file outside the logdir's parent)
    are used only when named again with these options, or confirmed at a terminal.
    """
    from hparams_lab.cli.console import ConsoleReporter
    from hparams_lab.study.rerun import plan_rerun, run_rerun, summary_lines

    confirm = (lambda question: click.confirm(question, default=False)) if sys.stdin.isatty() else None
    plan = plan_rerun(trial_dir, given=given, confirm=confirm)
    reporter = ConsoleReporter(sys.stdout, metric=plan.record.metric, epochs=int(plan.record.settings["epochs"]),
                               live=sys.stdout.isatty())
    outcome = run_rerun(plan, reporter)
    for line in summary_lines(outcome):
        click.echo(line)
