"""refine and one-at-a-time: pure plans, effects, CLI errors, and one whole study of each (fake training)."""

from __future__ import annotations

import json
import math
import random
import re

import pytest

from hparams_lab.cli.app import main
from hparams_lab.core.errors import UserError
from hparams_lab.store.experiment import ExperimentRecord
from hparams_lab.store.jsonfile import write_json_atomic
from hparams_lab.search.one_at_a_time import default_base, effects, one_at_a_time, parse_base, resolve_base
from hparams_lab.cli.console import format_effects
from hparams_lab.search.refine import best_trials, neighbourhood, refine
from hparams_lab.core.space import Discrete, HParam, IntInterval, RealInterval, Space
from hparams_lab.search.registry import make_trials
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus

ACC = "best_val_accuracy"
SPACE = Space((
    HParam("units", Discrete([16, 32, 64, 128])),
    HParam("learning_rate", RealInterval(1e-4, 1e-1, log=True)),
    HParam("dropout", RealInterval(0.0, 0.5)),
    HParam("optimizer", Discrete(["adam", "sgd"])),
    HParam("extra_layer", Discrete([False, True])),
))


def result(hparams, value, status=TrialStatus.SUCCESS, metric=ACC, **trial):
    metrics = {} if value is None else {metric: value}
    return TrialResult(Trial(hparams, seed=trial.pop("seed", 0), **trial), status, metrics)


def point(units=64, learning_rate=0.01, dropout=0.2, optimizer="sgd", extra_layer=True):
    return dict(units=units, learning_rate=learning_rate, dropout=dropout, optimizer=optimizer,
                extra_layer=extra_layer)


# --- refine: neighbourhoods ---

@pytest.mark.parametrize("domain, value, points, expected", [
    # log: +/-10% of 3 decades = a factor 10**0.3 (about 2) either side, 4 significant digits
    (RealInterval(1e-4, 1e-1, log=True), 0.01, 3, (0.005012, 0.01, 0.01995)),
    (RealInterval(0.0, 1.0), 0.5, 5, (0.4, 0.45, 0.5, 0.55, 0.6)),
    (RealInterval(0.0, 1.0), 0.02, 3, (0.0, 0.02, 0.12)),  # clipped at min
    (RealInterval(0.0, 1.0), 0.5, 2, (0.4, 0.6)),  # even points: the winner itself is not among them
    (RealInterval(0.0, 1.0), 0.5, 1, (0.5,)),
    (RealInterval(0.0, 1.0, step=0.25), 0.5, 3, (0.25, 0.5, 0.75)),  # at least one step
    (RealInterval(1e-4, 1e-1, log=True, step=10.0), 0.01, 3, (0.001, 0.01, 0.1)),
    (IntInterval(16, 128), 64, 3, (53, 64, 75)),  # 64 +/- 11.2, rounded
    (IntInterval(8, 512, log=True), 64, 3, (42, 64, 97)),  # 64 / and * 64**0.1
    (IntInterval(1, 3), 1, 3, (1, 2)),  # radius at least 1; 0 clipped to 1 and de-duplicated
    (IntInterval(1, 3), 1, 5, (1, 2)),
    (RealInterval(0.0, 1.0), 7.0, 3, (0.9, 1.0)),  # a winner outside a narrowed space is clipped first
])
def test_interval_neighbourhoods(domain, value, points, expected):
    assert neighbourhood(HParam("x", domain), value, points) == expected


@pytest.mark.parametrize("value, expected", [
    (16, (16, 32)), (64, (32, 64, 128)), (128, (64, 128)), (50, (32, 64, 128)),  # 50: nearest is 64
])
def test_discrete_numbers_take_the_winner_and_its_neighbours(value, expected):
    assert neighbourhood(HParam("units", Discrete([16, 32, 64, 128])), value, 5) == expected


def test_categorical_hparams_keep_the_winners_value():
    assert neighbourhood(HParam("optimizer", Discrete(["adam", "sgd"])), "sgd", 3) == ("sgd",)
    assert neighbourhood(HParam("extra_layer", Discrete([False, True])), True, 3) == (True,)
    with pytest.raises(UserError, match=r"hparam 'optimizer': 'rmsprop' is not one of its values \['adam', 'sgd'\]"):
        neighbourhood(HParam("optimizer", Discrete(["adam", "sgd"])), "rmsprop", 3)


# --- refine: winners and the union ---

def test_refine_grids_around_the_best_trial():
    previous = [result(point(), 0.9), result(point(units=16, optimizer="adam"), 0.5)]
    trials = refine(SPACE, previous, metric=ACC, top_k=1, points=3, seed=4)
    assert len(trials) == 3 * 3 * 3  # units 32/64/128, 3 learning rates, 3 dropouts
    assert {(t.hparams["optimizer"], t.hparams["extra_layer"]) for t in trials} == {("sgd", True)}
    assert {t.hparams["units"] for t in trials} == {32, 64, 128}
    assert {t.hparams["dropout"] for t in trials} == {0.15, 0.2, 0.25}
    assert point() in [t.hparams for t in trials]  # the winner runs again
    assert [t.index for t in trials] == list(range(27))
    assert all(t.seed == 4 for t in trials)


def test_refine_is_the_union_of_the_winners_neighbourhoods_without_duplicates():
    a, b = point(dropout=0.2), point(dropout=0.25)  # overlapping dropout neighbourhoods
    previous = [result(a, 0.9), result(b, 0.8)]
    first = refine(SPACE, previous[:1], metric=ACC, top_k=1, points=3)
    both = refine(SPACE, previous, metric=ACC, top_k=2, points=3)
    keys = [tuple(t.hparams.values()) for t in both]
    assert len(keys) == len(set(keys))
    assert {t.hparams["dropout"] for t in both} == {0.15, 0.2, 0.25, 0.3}
    assert len(both) == 3 * 3 * 4
    assert [t.hparams for t in both[: len(first)]] == [t.hparams for t in first]  # best winner first


def test_refine_does_not_depend_on_the_order_of_earlier_results():
    previous = [result(point(units=u, learning_rate=lr), acc) for u, lr, acc in
                [(16, 0.001, 0.7), (32, 0.003, 0.9), (64, 0.01, 0.9), (128, 0.03, 0.8)]]
    shuffled = previous[:]
    random.Random(1).shuffle(shuffled)
    ids = [t.id for t in refine(SPACE, previous, metric=ACC, top_k=3, points=3)]
    assert ids == [t.id for t in refine(SPACE, shuffled, metric=ACC, top_k=3, points=3)]


def test_best_trials_rank_by_the_metric_direction_and_skip_failures_and_repeats():
    previous = [
        result(point(units=16), 0.30, metric="best_val_loss"),
        result(point(units=32), 0.10, metric="best_val_loss"),
        result(point(units=32), 0.10, metric="best_val_loss", seed=1, repeat=1),  # a repeat of the same point
        result(point(units=64), None, TrialStatus.FAILURE),
        result(point(units=128), math.nan, metric="best_val_loss"),
    ]
    winners = best_trials(previous, "best_val_loss", 3)
    assert [w.hparams["units"] for w in winners] == [32, 16]  # lower loss first, one per point


def test_refine_errors():
    with pytest.raises(UserError, match="no successful trials"):
        refine(SPACE, [result(point(), None, TrialStatus.FAILURE)], metric=ACC)
    with pytest.raises(UserError, match="metric 'best_val_loss' is not in its trials; they have best_val_accuracy"):
        refine(SPACE, [result(point(), 0.9)], metric="best_val_loss")
    without_dropout = {k: v for k, v in point().items() if k != "dropout"}
    with pytest.raises(UserError, match="hparam 'dropout' has no value in the earlier trial"):
        refine(SPACE, [result(without_dropout, 0.9)], metric=ACC)
    with pytest.raises(UserError, match="hparam 'dropout': the earlier trial .* has 'high', not a number"):
        refine(SPACE, [result(point(dropout="high"), 0.9)], metric=ACC)


# --- one at a time ---

def test_default_base_is_each_domains_middle():
    space = Space((*SPACE.hparams, HParam("layers", IntInterval(1, 4))))
    assert default_base(space) == {
        "units": 32,  # the lower middle of 4 values
        "learning_rate": pytest.approx(10**-2.5),  # geometric midpoint
        "dropout": 0.25,
        "optimizer": "adam",
        "extra_layer": False,
        "layers": 2,  # 2.5 rounded (half to even)
    }


def test_one_at_a_time_varies_one_hparam_per_trial():
    trials = one_at_a_time(SPACE, {"units": 64}, seed=2, points=5)
    base = trials[0].hparams
    assert base["units"] == 64
    # units 3 others; learning rate and dropout 5 points with the middle at base; optimizer 1; extra_layer 1
    assert len(trials) == 1 + 3 + 4 + 4 + 1 + 1
    for trial in trials[1:]:
        assert sum(trial.hparams[k] != base[k] for k in base) == 1, trial.hparams
    assert len({t.id for t in trials}) == len(trials)  # no duplicates of the base
    assert sorted(t.hparams["learning_rate"] for t in trials if t.hparams["learning_rate"] != base["learning_rate"]) \
        == pytest.approx([1e-4, 10**-3.25, 10**-1.75, 1e-1])
    assert all(t.seed == 2 for t in trials)


def test_one_at_a_time_with_an_even_number_of_points_and_a_fixed_hparam():
    space = Space((HParam("x", RealInterval(0.0, 1.0)), HParam("activation", Discrete(["relu"]))))
    trials = one_at_a_time(space, seed=0, points=2)
    assert [t.hparams for t in trials] == [
        {"x": 0.5, "activation": "relu"}, {"x": 0.0, "activation": "relu"}, {"x": 1.0, "activation": "relu"},
    ]


@pytest.mark.parametrize("given, message", [
    ({"unitz": 64}, "--base: unknown hparam(s) unitz; the space has units, learning_rate"),
    ({"units": 48}, "--base: hparam 'units': 48 is not one of its values [16, 32, 64, 128]"),
    ({"dropout": 0.9}, "--base: hparam 'dropout': 0.9 is outside its range 0.0..0.5"),
    ({"dropout": "none"}, "--base: hparam 'dropout': 'none' is not a number in 0.0..0.5"),
    ({"extra_layer": 1}, "--base: hparam 'extra_layer': 1 is not one of its values [False, True]"),
])
def test_base_values_are_checked_against_their_domains(given, message):
    with pytest.raises(UserError, match=re.escape(message)):
        resolve_base(SPACE, given)


def test_base_from_text_and_files(tmp_path):
    assert parse_base("units=64, optimizer=adam,extra_layer=True,dropout=0.1") == {
        "units": 64, "optimizer": "adam", "extra_layer": True, "dropout": 0.1}
    assert resolve_base(SPACE, {"dropout": 0})["dropout"] == 0.0  # a real domain's value is a float
    (tmp_path / "base.json").write_text('{"units": 16, "optimizer": "sgd"}')
    (tmp_path / "base.toml").write_text('units = 16\noptimizer = "sgd"\n')
    assert parse_base(str(tmp_path / "base.json")) == parse_base(str(tmp_path / "base.toml")) == {
        "units": 16, "optimizer": "sgd"}
    with pytest.raises(UserError, match="--base: 'units' is not name=value"):
        parse_base("units")
    with pytest.raises(UserError, match="--base file .*nope.toml' cannot be read"):
        parse_base(str(tmp_path / "nope.toml"))


def test_effects_rank_hparams_by_spread():
    base = {"units": 32, "optimizer": "adam", "dropout": 0.1}
    results = [
        result(base, 0.90),
        result({**base, "units": 16}, 0.80),
        result({**base, "units": 64}, 0.92),
        result({**base, "optimizer": "sgd"}, 0.20),
        result({**base, "dropout": 0.0}, 0.88),
        result({**base, "dropout": 0.0}, 0.86, seed=1, repeat=1),  # repeats are averaged
        result({**base, "dropout": 0.2}, None, TrialStatus.FAILURE),
        result({**base, "units": 16, "optimizer": "sgd"}, 0.99),  # two changes: not a one-at-a-time point
    ]
    found = effects(results, base, ACC)
    assert [e.name for e in found] == ["optimizer", "units", "dropout"]
    assert found[0].values == (("adam", 0.90), ("sgd", 0.20))
    assert found[0].spread == pytest.approx(0.70)
    assert found[1].spread == pytest.approx(0.12)
    assert found[2].values == ((0.0, pytest.approx(0.87)), (0.1, 0.90), (0.2, None))
    assert found[2].spread == pytest.approx(0.03)
    text = format_effects(found, base, ACC)
    assert "adam*: 0.9" in text and "0.2: failed" in text
    assert text.splitlines()[1].split()[:3] == ["optimizer", "effect", "0.7"]


def test_make_trials_caps_refine_and_one_at_a_time():
    previous = [result(point(), 0.9)]
    assert len(make_trials("refine", SPACE, seed=0, trials=None, previous=previous)) == 27  # default points 3
    assert len(make_trials("refine", SPACE, seed=0, trials=5, previous=previous)) == 5
    assert len(make_trials("one-at-a-time", SPACE, seed=0, trials=None)) == 1 + 3 + 4 + 4 + 1 + 1  # points 5
    assert len(make_trials("one-at-a-time", SPACE, seed=0, trials=3)) == 3


# --- the CLI's errors: one line, exit 2, nothing written ---

def fake_experiment(path, results, space=SPACE):
    """An earlier experiment on disk, as a study leaves it (no training needed)."""
    path.mkdir(parents=True)
    ExperimentRecord(name=path.name, space=space.to_dict(), strategy="random", seed=0, trials=len(results),
                     dataset="digits", model="mlp", metric=ACC, metrics=[]).write(path)
    for r in results:
        (path / r.trial.id).mkdir()
        write_json_atomic(path / r.trial.id / "trial.json", r.to_json())
    return path


@pytest.mark.parametrize("args, message", [
    (["--strategy", "refine"], "--strategy refine needs --from EXPERIMENT"),
    (["--strategy", "refine", "--from", "nowhere"], "unknown experiment 'nowhere': no experiment.json in"),
    (["--strategy", "refine", "--from", "{old}/failed"], "no successful trials to refine"),
    (["--strategy", "refine", "--from", "{old}/good", "--metric", "best_val_loss"],
     "metric 'best_val_loss' is not in its trials; they have best_val_accuracy"),
    (["--strategy", "grid", "--from", "{old}/good"], "--from is only for --strategy refine or bayes, not 'grid'"),
    (["--strategy", "random", "--points", "3"], "--points is only for --strategy refine or one-at-a-time"),
    (["--strategy", "refine", "--from", "{old}/good", "--base", "units=16"],
     "--base is only for --strategy one-at-a-time"),
    (["--strategy", "one-at-a-time", "--base", "units=100"], "hparam 'units': 100 is not one of its values [32, 128]"),
    (["--strategy", "one-at-a-time", "--base", "dropout=1"], "hparam 'dropout': 1 is outside its range 0.0..0.2"),
    (["--strategy", "one-at-a-time", "--top-k", "2"], "--top-k is only for --strategy refine"),
])
def test_cli_strategy_errors(runner, tmp_path, args, message):
    old = tmp_path / "old"
    fake_experiment(old / "failed", [result(point(units=32, optimizer="adam", extra_layer=False, learning_rate=0.001,
                                                  dropout=0.0), None, TrialStatus.FAILURE)])
    fake_experiment(old / "good", [result(point(), 0.9)])
    logdir = tmp_path / "logs"
    cli_args = ["--logdir", str(logdir), *(a.format(old=old) for a in args)]
    outcome = runner.invoke(main, cli_args)
    assert outcome.exit_code == 2, outcome.output
    assert message in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1
    assert not logdir.exists()


def test_cli_refine_error_leaves_the_earlier_experiment_alone(runner, tmp_path):
    logdir = tmp_path / "logs"
    fake_experiment(logdir / "rnd", [result(point(), None, TrialStatus.FAILURE)])
    before = sorted(p.relative_to(logdir) for p in logdir.rglob("*"))
    outcome = runner.invoke(main, ["--logdir", str(logdir), "--strategy", "refine", "--from", "rnd"])
    assert outcome.exit_code == 2
    assert "Error: --from 'rnd': it has no successful trials to refine" in outcome.output
    assert sorted(p.relative_to(logdir) for p in logdir.rglob("*")) == before


# --- whole studies through the CLI: digits, 1 epoch, trained by the fake (tests/fakes.py) ---

TINY = """
[hparams]
units = [8, 16]

[hparams.learning_rate]
min = 0.001
max = 0.01
log = true
"""


def run(runner, *args):
    outcome = runner.invoke(main, [*args, "--epochs", "1"])
    assert outcome.exit_code == 0, outcome.output
    return outcome


def test_refine_a_random_study(runner, tmp_path, fake_train):
    space = tmp_path / "tiny.toml"
    space.write_text(TINY)
    logdir = str(tmp_path / "logs")
    run(runner, "--logdir", logdir, "--space", str(space), "--trials", "2", "--experiment", "rnd")
    earlier = [json.loads(p.read_text()) for p in (tmp_path / "logs" / "rnd").glob("*/trial.json")]
    best = max(earlier, key=lambda r: r["metrics"][ACC])["hparams"]

    out = run(runner, "--logdir", logdir, "--strategy", "refine", "--from", "rnd", "--top-k", "1",
              "--points", "2", "--experiment", "ref").output
    assert "4/4 trials succeeded" in out
    record = json.loads((tmp_path / "logs" / "ref" / "experiment.json").read_text())
    assert record["space"] == json.loads((tmp_path / "logs" / "rnd" / "experiment.json").read_text())["space"]
    assert record["settings"]["from"] == str((tmp_path / "logs" / "rnd").resolve())
    assert (record["settings"]["top_k"], record["settings"]["points"], record["trials"]) == (1, 2, 4)
    refined = [json.loads(p.read_text())["hparams"] for p in (tmp_path / "logs" / "ref").glob("*/trial.json")]
    factor = 10 ** 0.1  # +/-10% of the one-decade log range
    expected = sorted(min(max(best["learning_rate"] * f, 0.001), 0.01) for f in (1 / factor, factor))
    assert sorted({h["learning_rate"] for h in refined}) == pytest.approx(expected, rel=1e-3)
    assert {h["units"] for h in refined} == {8, 16}


def test_one_at_a_time_prints_effects_and_resume_compares_the_base(runner, tmp_path, fake_train):
    space = tmp_path / "tiny.toml"
    space.write_text(TINY)
    common = ["--logdir", str(tmp_path / "logs"), "--space", str(space), "--strategy", "one-at-a-time",
              "--points", "3", "--experiment", "oat"]
    out = run(runner, *common, "--base", "units=16").output
    assert "4/4 trials succeeded" in out  # base, units=8, learning rate 0.001 and 0.01
    effect_lines = out.split("Effect of each hparam on best_val_accuracy")[1].split("\n\n")[0].splitlines()[1:]
    assert sorted(line.split()[0] for line in effect_lines) == ["learning_rate", "units"]
    record = json.loads((tmp_path / "logs" / "oat" / "experiment.json").read_text())
    assert record["settings"]["base"] == {"units": 16, "learning_rate": pytest.approx(0.00316227766)}

    again = runner.invoke(main, [*common, "--base", "units=8", "--epochs", "1"])
    assert again.exit_code == 2
    assert "base was" in again.output
