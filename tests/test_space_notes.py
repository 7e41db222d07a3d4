"""Warnings about the space: best trials at the edge of a domain, hparams without effect, refine --widen.

The studies are grids trained by the fake (tests/fakes.py `peaked`: accuracy depends on the
learning rate alone), so which trials win is known; review reads their logs back, and
hand-written TensorBoard logs stand for other writers'.
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
from click.testing import CliRunner
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import summary_v2 as hp

import review_samples as samples
import runner_style_logs as tblogs
from hparams_lab.cli.app import main
from hparams_lab.core import edges
from hparams_lab.core.space import Discrete, HParam, IntInterval, RealInterval, Space
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.review.summary import MIN_NOISE_RUNS, summarize_points
from tests.fakes import peaked

GRID = """
[hparams]
units = [8, 16]

[hparams.dropout]
min = 0.0
max = 0.5
points = 3

[hparams.learning_rate]
min = 0.0001
max = 0.01
log = true
points = 3
"""
EDGE = ("learning_rate: the 5 best {noun} all sit at the top edge of 0.0001..0.01 (0.01); "
        "try {command} (0.0001..1 on a log scale)")


# --- the rule (core.edges) ---

LOG_LR = RealInterval(1e-4, 1e-2, log=True)


@pytest.mark.parametrize("domain, values, side", [
    (LOG_LR, [0.01, 0.0095, 0.0064], edges.TOP),  # 10% of 2 decades: from 10**-2.2 = 0.00631
    (LOG_LR, [0.01, 0.0095, 0.006], None),  # one just outside
    (LOG_LR, [1e-4, 1.5e-4, 1.2e-4], edges.BOTTOM),
    (RealInterval(0.0, 0.5), [0.0, 0.05, 0.01], edges.BOTTOM),  # 10% of the width: 0.05 in
    (RealInterval(0.0, 0.5), [0.0, 0.06, 0.01], None),
    (RealInterval(0.0, 0.5), [0.0, 0.5, 0.5], None),  # both edges are not one edge
    (IntInterval(1, 3), [3, 3, 3], edges.TOP),
    (RealInterval(0.3, 0.3), [0.3, 0.3, 0.3], None),  # one value: no edge
    (RealInterval(0.0, 0.5), [0.7, 0.5, 0.49], edges.TOP),  # beyond max (a narrowed space) is past the edge
])
def test_side_of(domain, values, side):
    assert edges.side_of(domain, values) == side


@pytest.mark.parametrize("domain, side, widened", [
    (LOG_LR, edges.TOP, (1e-4, 1.0)),  # by the width in log units: 2 more decades
    (LOG_LR, edges.BOTTOM, (1e-6, 1e-2)),  # and a log min stays > 0
    (RealInterval(0.1, 0.5), edges.TOP, (0.1, 0.9)),
    (RealInterval(0.1, 0.5), edges.BOTTOM, (0.0, 0.5)),  # not past zero
    (RealInterval(0.0, 0.5), edges.BOTTOM, None),  # at zero: cannot move
    (RealInterval(-1.0, -0.5), edges.TOP, (-1.0, 0.0)),
    (RealInterval(-1.0, 1.0), edges.BOTTOM, (-3.0, 1.0)),  # a negative min may go on
    (IntInterval(16, 128), edges.TOP, (16, 240)),
    (IntInterval(8, 512, log=True), edges.TOP, (8, 32768)),  # 512 * 64
    (IntInterval(3, 10, log=True), edges.BOTTOM, (1, 10)),  # 3 / (10/3) = 0.9, floored, kept at 1
    (IntInterval(1, 8, log=True), edges.BOTTOM, None),  # a log int starts at 1
    (RealInterval(0.0, 1.0, step=0.3), edges.TOP, (0.0, 2.2)),  # whole steps, outward: 4 x 0.3
    (RealInterval(1e-4, 1e-1, log=True, step=10.0), edges.BOTTOM, (1e-7, 1e-1)),
])
def test_widen(domain, side, widened):
    new = edges.widen(domain, side)
    if widened is None:
        assert new is None
        return
    assert (new.min, new.max) == pytest.approx(widened)
    assert type(new) is type(domain) and (new.log, new.step, new.points) == (domain.log, domain.step, domain.points)
    if isinstance(new, IntInterval):
        assert isinstance(new.min, int) and isinstance(new.max, int)


def test_find_edges_needs_three_winners_and_takes_the_five_best_with_a_value():
    domains = {"lr": LOG_LR}
    assert edges.find_edges(domains, [{"lr": 0.01}, {"lr": 0.0099}]) == []
    ranked = [{"lr": 0.01}, {"other": 1}, {"lr": 0.0099}, {"lr": 0.0098}, {"lr": 0.0097}, {"lr": 0.0096},
              {"lr": 0.001}]  # the 6th with a value is not among the 5
    [edge] = edges.find_edges(domains, ranked)
    assert (edge.name, edge.side, edge.values) == ("lr", edges.TOP, (0.01, 0.0099, 0.0098, 0.0097, 0.0096))
    assert (edge.widened.min, edge.widened.max) == (1e-4, 1.0)
    assert edges.find_edges(domains, ranked[:1] + [{"lr": 0.001}] + ranked[2:]) == []


def test_winners_count_a_repeated_hparams_set_once_and_only_successes():
    def result(lr, value, status=TrialStatus.SUCCESS, repeat=0):
        return TrialResult(Trial({"lr": lr}, seed=0, repeat=repeat), status, {"acc": value})

    results = [result(0.01, 0.9), result(0.01, 0.9, repeat=1), result(0.005, 0.95, TrialStatus.FAILURE),
               result(0.001, 0.5), result(0.002, float("nan"))]
    assert [r.trial.hparams["lr"] for r in edges.winners(results, "acc")] == [0.01, 0.001]


# --- noise (review.summary) ---

def test_an_hparam_without_effect_is_below_noise_one_with_effect_is_not_and_it_is_deterministic():
    import random

    rng = random.Random(3)
    points = []
    for _ in range(60):
        hparams = {"lr": rng.choice([0.001, 0.01, 0.1]), "seedling": rng.choice(["a", "b", "c"])}
        points.append((hparams, {0.001: 0.5, 0.01: 0.7, 0.1: 0.6}[hparams["lr"]] + rng.gauss(0, 0.02)))
    first = {s.name: s for s in summarize_points(points, ["lr", "seedling"], True, noise=True)}
    assert not first["lr"].below_noise and first["lr"].importance > 0.9
    assert first["seedling"].below_noise and first["seedling"].noise > 0
    again = {s.name: s for s in summarize_points(points, ["lr", "seedling"], True, noise=True)}
    assert [(s.importance, s.noise) for s in first.values()] == [(s.importance, s.noise) for s in again.values()]
    # Too few runs, or one value: not judged.
    few = summarize_points(points[:MIN_NOISE_RUNS - 1], ["lr"], True, noise=True)
    assert few[0].noise is None and not few[0].below_noise
    constant = summarize_points([({"lr": [0.01, 0.1][i % 2]}, 0.5) for i in range(20)], ["lr"], True, noise=True)
    assert constant[0].noise == 0.0 and constant[0].below_noise  # nothing explains a constant metric
    assert summarize_points(points, ["absent"], True, noise=True)[0].noise is None  # one value: "(missing)"
    # Without noise=True (the summary table) nothing is shuffled.
    assert all(s.noise is None for s in summarize_points(points, ["lr", "seedling"], True))


# --- a study, review of its logs, the report, refine --widen (fake training) ---

@pytest.fixture
def grid_study(tmp_path, fake_train):
    """run(best_lr, experiment): a grid study (18 trials) whose accuracy peaks at lr=best_lr."""
    space = tmp_path / "grid.toml"
    space.write_text(GRID)
    logdir = tmp_path / "logs"

    def run(best_lr, experiment="rnd", *more):
        fake_train.configure(accuracy=peaked("learning_rate", best_lr))
        outcome = CliRunner().invoke(main, ["--logdir", str(logdir), "--space", str(space), "--strategy", "grid",
                                            "--epochs", "1", "--experiment", experiment, *more])
        assert outcome.exit_code == 0, outcome.output
        return outcome.output

    run.logdir = logdir
    return run


def review(*args):
    outcome = CliRunner().invoke(main, ["review", *map(str, args)])
    assert outcome.exit_code == 0, outcome.output
    return outcome


def test_a_study_whose_best_trials_sit_at_the_top_edge_warns_after_its_leaderboard(grid_study):
    out = grid_study(0.01)
    after = out.split("Leaderboard by best_val_accuracy:")[1]
    warning = "warning: " + EDGE.format(noun="trials", command="--strategy refine --from rnd --widen")
    assert warning in after.splitlines()
    assert after.index(warning) < after.index("Logs:")
    notes = [line for line in after.splitlines() if line.startswith("note: ")]
    assert sorted(line.split(":")[1].strip() for line in notes) == ["dropout", "units"]  # no effect at all
    assert "no effect on best_val_accuracy beyond noise (importance 0; shuffled metric values reach" in notes[0]


def test_review_of_those_logs_warns_on_stderr_and_the_report_shows_the_notes(grid_study, tmp_path):
    grid_study(0.01)
    outcome = review(grid_study.logdir / "rnd")
    warning = "warning: " + EDGE.format(noun="runs", command="refine --widen")
    assert warning in outcome.stderr.splitlines()
    assert "warning:" not in outcome.stdout and "note:" not in outcome.stdout
    assert sorted(line.split(":")[1].strip() for line in outcome.stderr.splitlines() if line.startswith("note: ")) \
        == ["dropout", "units"]
    csv_run = review(grid_study.logdir, "--format", "csv")  # any format; the logdir root: one experiment
    assert warning in csv_run.stderr.splitlines()
    if importlib.util.find_spec("plotly") is None:
        pytest.skip("the HTML report needs plotly")
    page = tmp_path / "report.html"
    review(grid_study.logdir / "rnd", "--report", page)
    html = page.read_text(encoding="utf-8")
    notes = html.split("<h2>Notes on the space</h2>")[1].split("<h2>Leaderboard</h2>")[0]
    assert f"<li>{warning}</li>" in notes
    assert notes.count("<li>note: ") == 2


def test_winners_in_the_middle_give_no_edge_warning(grid_study):
    out = grid_study(0.001)
    assert "warning:" not in out
    assert "warning:" not in review(grid_study.logdir / "rnd").stderr


def test_refine_widen_plans_over_the_widened_range(grid_study):
    grid_study(0.01)
    out = grid_study(0.01, "wide", "--strategy", "refine", "--from", "rnd", "--widen", "--points", "3")
    record = json.loads((grid_study.logdir / "wide" / "experiment.json").read_text())
    hparams = record["space"]["hparams"]
    assert hparams["learning_rate"] == {"kind": "real", "min": 0.0001, "max": 1.0, "log": True, "points": 3}
    assert hparams["dropout"] == {"kind": "real", "min": 0.0, "max": 0.5, "points": 3}  # not at an edge
    assert record["settings"]["widen"] == {"learning_rate": {"edge": "top", "was": [0.0001, 0.01],
                                                             "now": [0.0001, 1.0]}}
    trials = [json.loads(p.read_text())["hparams"] for p in (grid_study.logdir / "wide").glob("*/trial.json")]
    # Around the winner 0.01: +/-10% of the widened 4 decades, log-symmetric, now past the old max.
    rates = sorted({t["learning_rate"] for t in trials})
    assert rates == pytest.approx([0.01 / 10 ** 0.4, 0.01, 0.01 * 10 ** 0.4], rel=1e-3)
    assert math.log10(rates[2] / 0.01) == pytest.approx(math.log10(0.01 / rates[0]), rel=1e-3)
    assert "warning:" not in out  # the refined winners (lr 0.01) sit in the middle of 0.0001..1
    assert "--widen: learning_rate 0.0001..0.01 -> 0.0001..1 (its winners sit at the top edge)" in out.splitlines()
    # review of both experiments names the one whose winners sit at the edge.
    stderr = review(grid_study.logdir).stderr.splitlines()
    assert [line for line in stderr if line.startswith("warning:")] == [
        "warning: experiment rnd: " + EDGE.format(noun="runs", command="refine --widen")]


def test_refine_widen_from_other_writers_logs(tmp_path, fake_train, runner):
    """--from any HParams logs (here hand-written, no experiment.json) with --space: the same rule."""
    space = tmp_path / "grid.toml"
    space.write_text(GRID)
    index = 0
    for lr in (0.0001, 0.001, 0.01):
        for units in (8, 16):
            for dropout in (0.0, 0.25, 0.5):
                samples.write_session(tmp_path / "tb" / f"run{index:02d}",
                                      {"learning_rate": lr, "units": units, "dropout": dropout},
                                      [("score", 0, 0.9 - 0.1 * abs(math.log10(lr / 0.01)))])
                index += 1
    fake_train.configure(accuracy=peaked("learning_rate", 0.01))
    outcome = runner.invoke(main, ["--logdir", str(tmp_path / "logs"), "--space", str(space), "--strategy", "refine",
                                   "--from", str(tmp_path / "tb"), "--from-metric", "score", "--widen",
                                   "--experiment", "wide", "--epochs", "1"])
    assert outcome.exit_code == 0, outcome.output
    record = json.loads((tmp_path / "logs" / "wide" / "experiment.json").read_text())
    assert record["space"]["hparams"]["learning_rate"]["max"] == 1.0
    assert record["settings"]["widen"]["learning_rate"]["now"] == [0.0001, 1.0]


def test_widen_without_an_edge_is_one_error_line_and_writes_nothing(grid_study, runner):
    grid_study(0.001)
    outcome = runner.invoke(main, ["--logdir", str(grid_study.logdir), "--strategy", "refine", "--from", "rnd",
                                   "--widen", "--experiment", "wide"])
    assert outcome.exit_code == 2
    assert outcome.output.strip() == (
        "Error: --widen: no interval hparam's 5 best trials all sit within 10% of one end of its domain; "
        "nothing to widen (refine without --widen)")
    assert not (grid_study.logdir / "wide").exists()
    other = runner.invoke(main, ["--logdir", str(grid_study.logdir), "--strategy", "grid", "--widen"])
    assert other.exit_code == 2 and "--widen is only for --strategy refine, not 'grid'" in other.output


def test_widen_says_which_edge_is_at_its_limit(tmp_path, runner):
    """Winners at dropout 0 (the bottom of 0..0.5): --widen does not go below zero, and says so."""
    from tests.test_strategies_more import fake_experiment

    space = Space((HParam("dropout", RealInterval(0.0, 0.5)), HParam("units", Discrete([8, 16]))))
    results = [TrialResult(Trial({"dropout": d, "units": u}, seed=0), TrialStatus.SUCCESS,
                           {"best_val_accuracy": 0.9 - d})
               for d in (0.0, 0.01, 0.02) for u in (8, 16)] + [
        TrialResult(Trial({"dropout": 0.4, "units": 8}, seed=0), TrialStatus.SUCCESS, {"best_val_accuracy": 0.1})]
    fake_experiment(tmp_path / "logs" / "old", results, space=space)
    outcome = runner.invoke(main, ["--logdir", str(tmp_path / "logs"), "--strategy", "refine", "--from", "old",
                                   "--widen", "--experiment", "wide"])
    assert outcome.exit_code == 2
    assert "dropout's sit at its bottom edge, which is at its limit; nothing to widen" in outcome.output
    # review says the same edge cannot be widened by --widen
    tblogs.write_experiment_json(tmp_path / "tb" / "old", space.to_dict())
    for r in results:
        tblogs.write_trial(tmp_path / "tb" / "old", r.trial.id, r.trial.hparams,
                           samples.curves([r.metrics["best_val_accuracy"]], [0.5]))
    stderr = review(tmp_path / "tb").stderr
    assert ("warning: dropout: the 5 best runs all sit at the bottom edge of 0..0.5 (0-0.02); --widen cannot "
            "widen it (a bound is not widened past 0): widen it by hand if that makes sense") in stderr


def test_a_conditional_hparam_is_judged_on_the_trials_where_it_is_active(tmp_path, fake_train):
    """momentum (0..0.9, only with sgd) is best at 0.9: its edge, in the study and in review, whose
    experiment.json entry for it carries a condition (when) on optimizer."""
    space = tmp_path / "conditional.toml"
    space.write_text(GRID.replace("[hparams.dropout]", "[hparams.momentum]").replace(
        "max = 0.5\npoints = 3", "max = 0.9\npoints = 3\nwhen = { optimizer = \"sgd\" }").replace(
        "units = [8, 16]", "units = [8, 16]\noptimizer = [\"adam\", \"sgd\"]"))
    fake_train.configure(accuracy=lambda trial, epoch: 0.5 + 0.4 * trial.hparams.get("momentum", 0.0))
    logdir = tmp_path / "logs"
    outcome = CliRunner().invoke(main, ["--logdir", str(logdir), "--space", str(space), "--strategy", "grid",
                                        "--epochs", "1", "--experiment", "cond"])
    assert outcome.exit_code == 0, outcome.output
    assert "24/24 trials succeeded" in outcome.output  # adam: 2 x 3, sgd: 2 x 3 x 3
    edge = ("momentum: the 5 best {noun} all sit at the top edge of 0..0.9 (0.9); try {command} (0..1.8)")
    assert "warning: " + edge.format(noun="trials", command="--strategy refine --from cond --widen") \
        in outcome.output.splitlines()
    stderr = review(logdir).stderr.splitlines()
    assert [line for line in stderr if line.startswith("warning:")] == [
        "warning: " + edge.format(noun="runs", command="refine --widen")]
    assert any(line.startswith("note: learning_rate: no effect") for line in stderr)


# --- logs of other writers ---

def write_config(root, hparams):
    config = hp.hparams_config_pb(hparams, [hp.Metric("score")], time_created_secs=1.0e9)
    tblogs.write_events(root, [event_pb2.Event(wall_time=1.0e9, summary=config)])


def test_logs_without_a_space_get_no_edge_warnings_and_no_crash(tmp_path):
    samples.write_hostile_logs(tmp_path / "hostile")
    outcome = review(tmp_path / "hostile")
    assert "warning: " not in outcome.stderr
    # Inferred hparams, best runs all at the largest value: nothing known of a domain, nothing said about edges.
    for i in range(12):
        samples.write_session(tmp_path / "plain" / f"run{i}", {"lr": 0.001 * (i + 1)}, [("score", 0, i / 12)])
    outcome = review(tmp_path / "plain")
    assert "warning:" not in outcome.stderr


def test_an_hparams_config_interval_is_a_linear_domain_and_names_from_logs_are_escaped(tmp_path):
    """TensorBoard's config (any writer) has interval domains but no scale; sessions without an
    end record (tf.summary's hp.hparams writes none) count when they have the metric."""
    from hparams_lab.review.output import visible

    name, units = samples.ESCAPES, samples.XSS
    # The config in the logdir's root, the sessions below it, as the TensorBoard tutorial writes them.
    write_config(tmp_path / "logs", [hp.HParam(name, hp.RealInterval(0.1, 0.5)),
                                     hp.HParam(units, hp.IntInterval(1, 9)), hp.HParam("opt", hp.Discrete(["adam", "sgd"]))])
    for i in range(12):  # the 6 best: dropout 0.5 (the top of 0.1..0.5) and units 9 (of 1..9, ints)
        best = i < 6
        hparams = {name: 0.5 if best else 0.1 + 0.1 * (i % 3), units: 9 if best else 1 + i % 4,
                   "opt": "adam", "rep": i}
        samples.write_session(tmp_path / "logs" / f"run{i:02d}", hparams,
                              [("score", 0, 1.0 - i / 100 if best else i / 100)])
    stderr = review(tmp_path / "logs").stderr
    assert "\x1b" not in stderr and "\u202e" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert lines == [
        f"warning: {visible(name)}: the 5 best runs all sit at the top edge of 0.1..0.5 (0.5); "
        "try a wider range (0.1..0.9)",
        f"warning: {units}: the 5 best runs all sit at the top edge of 1..9 (9); try a wider range (1..17)"]
    if importlib.util.find_spec("plotly") is None:
        pytest.skip("the HTML report needs plotly")
    page = tmp_path / "report.html"
    review(tmp_path / "logs", "--report", page)
    notes = page.read_text(encoding="utf-8").split("<h2>Notes on the space</h2>")[1].split("<h2>")[0]
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;: the 5 best runs" in notes
    assert "<img" not in notes and "\x1b" not in notes and "\\x1b[31mred" in notes


def test_widen_on_an_experiment_without_successes_says_what_refine_says(tmp_path, runner):
    from tests.test_strategies_more import fake_experiment

    space = Space((HParam("lr", RealInterval(1e-4, 1e-2, log=True)),))
    fake_experiment(tmp_path / "logs" / "old", [TrialResult(Trial({"lr": 0.01}, seed=0), TrialStatus.FAILURE, {})],
                    space=space)
    outcome = runner.invoke(main, ["--logdir", str(tmp_path / "logs"), "--strategy", "refine", "--from", "old",
                                   "--widen"])
    assert outcome.exit_code == 2
    assert outcome.output.strip() == "Error: --from 'old': it has no successful trials to refine"
