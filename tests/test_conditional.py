"""Conditional hparams (`when`): each strategy proposes only valid points, an inactive hparam
has no value anywhere (trial, id, TensorBoard session, review), and a bad condition is one line."""

from __future__ import annotations

import json
from random import Random

import pytest

from hparams_lab.cli.app import main
from hparams_lab.core.space import (
    Discrete,
    HParam,
    IntInterval,
    RealInterval,
    Space,
    SpaceError,
)
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.search.grid import grid
from hparams_lab.search.one_at_a_time import effects, one_at_a_time
from hparams_lab.search.random import random_search
from hparams_lab.search.refine import refine

SPACE_TOML = """
[hparams.optimizer]
values = ["adam", "sgd", "rmsprop"]

[hparams.momentum]
min = 0.5
max = 0.9
points = 3
when = { optimizer = ["sgd", "rmsprop"] }

[hparams.beta_2]
values = [0.99, 0.999]
when = { optimizer = "adam" }

[hparams.num_layers]
values = [1, 2, 3]

[hparams.units_2]
values = [16, 32]
when = { num_layers = ">= 2" }
"""

SPACE = Space([
    HParam("optimizer", Discrete(["adam", "sgd", "rmsprop"])),
    HParam("momentum", RealInterval(0.5, 0.9, points=3), when={"optimizer": ["sgd", "rmsprop"]}),
    HParam("beta_2", Discrete([0.99, 0.999]), when={"optimizer": "adam"}),
    HParam("num_layers", Discrete([1, 2, 3])),
    HParam("units_2", Discrete([16, 32]), when={"num_layers": ">= 2"}),
])


def valid(point: dict) -> bool:
    """Exactly the active hparams, each in its domain."""
    if SPACE.active(point) != point:
        return False
    return all(SPACE.is_active(h.name, point) == (h.name in point) for h in SPACE)


def test_a_space_file_and_the_python_api_mean_the_same(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(SPACE_TOML)
    loaded = Space.load(path)
    assert loaded == SPACE and Space.from_dict(loaded.to_dict()) == SPACE
    assert loaded.to_dict()["hparams"]["units_2"]["when"] == {"num_layers": ">= 2"}


def test_grid_enumerates_only_valid_combinations_without_duplicates():
    trials = grid(SPACE)
    # adam: 2 beta_2 x (1 + 2 + 2 layer/units); sgd and rmsprop: 3 momentum x 5
    assert len(trials) == 2 * 5 + 2 * 3 * 5 == SPACE.grid_size()
    assert len({t.id for t in trials}) == len(trials)
    assert all(valid(t.hparams) for t in trials)
    assert {"optimizer": "adam", "beta_2": 0.99, "num_layers": 1} in [t.hparams for t in trials]
    assert not any("momentum" in t.hparams for t in trials if t.hparams["optimizer"] == "adam")


def test_random_samples_only_active_hparams_and_ids_follow_them():
    trials = random_search(SPACE, seed=3, trials=25)
    assert len({t.id for t in trials}) == 25 and all(valid(t.hparams) for t in trials)
    assert {t.hparams["optimizer"] for t in trials} == {"adam", "sgd", "rmsprop"}
    # The id is the active hparams': the same point from any strategy is the same trial.
    point = {"optimizer": "adam", "beta_2": 0.99, "num_layers": 1}
    assert Trial(point, seed=0).id == next(t.id for t in grid(SPACE) if t.hparams == point)


def test_a_small_conditional_space_is_enumerated_whole_by_random_search():
    space = Space([HParam("optimizer", Discrete(["adam", "sgd"])),
                   HParam("momentum", Discrete([0.0, 0.9]), when={"optimizer": "sgd"})])
    assert space.size() == 3
    trials = random_search(space, seed=0, trials=10)
    assert sorted(json.dumps(t.hparams, sort_keys=True) for t in trials) == sorted(
        json.dumps(p, sort_keys=True) for p in [{"optimizer": "adam"}, {"optimizer": "sgd", "momentum": 0.0},
                                                {"optimizer": "sgd", "momentum": 0.9}])


def test_sizes_are_counted_per_branch_without_enumerating():
    space = Space([HParam("n", IntInterval(1, 5000)),
                   HParam("wide", IntInterval(1, 10**9), when={"n": "> 4000"})])
    assert space.size() == 4000 + 1000 * 10**9


def test_one_at_a_time_varies_only_what_is_active_at_the_base():
    trials = one_at_a_time(SPACE, {"optimizer": "sgd", "num_layers": 1}, points=3)
    points = [t.hparams for t in trials]
    assert all(valid(p) for p in points) and len({t.id for t in trials}) == len(trials)
    assert points[0] == {"optimizer": "sgd", "momentum": 0.7, "num_layers": 1}
    assert not any("beta_2" in p for p in points if p["optimizer"] != "adam")
    assert {"optimizer": "adam", "beta_2": 0.99, "num_layers": 1} in points  # flipped in, at its middle
    assert not any(p.get("units_2") == 32 for p in points)  # inactive at the base: not varied
    results = [TrialResult(t, TrialStatus.SUCCESS, {"score": float(i)}) for i, t in enumerate(trials)]
    base = {"optimizer": "sgd", "momentum": 0.7, "beta_2": 0.99, "num_layers": 1, "units_2": 16}
    found = {e.name: [v for v, _ in e.values] for e in effects(results, base, "score")}
    assert found["optimizer"] == ["adam", "rmsprop", "sgd"] and found["momentum"] == [0.5, 0.7, 0.9]


def test_refine_varies_a_winner_only_where_it_is_active():
    winners = [Trial({"optimizer": "adam", "beta_2": 0.999, "num_layers": 1}, seed=0),
               Trial({"optimizer": "sgd", "momentum": 0.7, "num_layers": 2, "units_2": 32}, seed=0)]
    previous = [TrialResult(t, TrialStatus.SUCCESS, {"best_val_accuracy": 0.9 - i / 10})
                for i, t in enumerate(winners)]
    trials = refine(SPACE, previous, metric="best_val_accuracy", top_k=2, points=3)
    points = [t.hparams for t in trials]
    assert all(valid(p) for p in points) and len({t.id for t in trials}) == len(trials)
    # num_layers 1 -> 2 around the first winner brings units_2 in at its domain's middle.
    assert {"optimizer": "adam", "beta_2": 0.999, "num_layers": 2, "units_2": 16} in points
    assert not any("momentum" in p for p in points if p["optimizer"] == "adam")


def test_bayes_asks_optuna_define_by_run(tmp_path):
    pytest.importorskip("optuna")
    from hparams_lab.search.bayes import BayesSearch

    search = BayesSearch(SPACE, seed=0, trials=12, metric="best_val_accuracy", experiment_dir=tmp_path)
    seen = []
    while (task := search.ask()) is not None:
        seen.append(task.trial.hparams)
        search.tell(task, TrialResult(task.trial, TrialStatus.SUCCESS,
                                      {"best_val_accuracy": 0.5 + 0.1 * (task.trial.hparams["optimizer"] == "sgd")}))
    assert len(seen) == 12 and all(valid(p) for p in seen)
    assert all(set(t.params) == set(p) for t, p in zip(search.study.get_trials(), seen))


def test_hyperband_samples_like_random():
    from hparams_lab.search.registry import make_trials

    first = make_trials("random", SPACE, seed=1, trials=6)
    assert all(valid(t.hparams) for t in first)


@pytest.mark.parametrize("hparams, message", [
    ({"a": {"values": [1, 2]}, "b": {"values": [1], "when": {"c": 1}}},
     "hparam 'b': when c = 1: the space has no hparam 'c' (it has a, b)"),
    ({"a": {"values": [1, 2], "when": {"a": 1}}}, "an hparam cannot depend on itself"),
    ({"a": {"values": [1, 2], "when": {"b": 1}}, "b": {"values": [1, 2], "when": {"a": 1}}},
     "the conditions (when) form a cycle: a -> b -> a"),
    ({"a": {"values": [1, 2]}, "b": {"values": [1], "when": {"a": ">= 3"}}},
     "hparam 'b' is never active: no point of the space has a >= 3"),
    ({"a": {"values": ["x", "y"]}, "b": {"values": [1, 2], "when": {"a": "x"}},
      "c": {"values": [1], "when": {"a": "y", "b": 1}}},
     "hparam 'c' is never active: no point of the space has a = 'y', b = 1"),
    ({"a": {"values": ["x", "y"]}, "b": {"values": [1], "when": {"a": "z"}}},
     "hparam 'b': when a = 'z': hparam 'a': 'z' is not one of its values ['x', 'y']"),
    ({"a": {"values": [1, 2]}, "b": {"values": [1], "when": {"a": "big"}}},
     "a is a number; expected a value, a list or a comparison such as '>= 2'"),
    ({"a": {"min": 0.0, "max": 1.0}, "b": {"values": [1], "when": {"a": ">= 0.5"}}},
     "hparam 'a' is used in a condition, so it needs at most 10,000 values"),
    ({"a": {"values": [1, 2]}, "b": {"values": [1], "when": "a"}}, "when must be a table"),
])
def test_a_bad_condition_is_one_error_line_and_nothing_written(runner, tmp_path, fake_train, hparams, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"hparams": hparams}))
    result = runner.invoke(main, ["--space", str(path), "--logdir", str(tmp_path / "logs"), "--epochs", "1"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], lines
    assert not (tmp_path / "logs").exists()
    with pytest.raises(SpaceError):
        Space.from_dict({"hparams": hparams})


def test_a_study_writes_no_inactive_value_anywhere_and_review_leaves_it_empty(runner, tmp_path, fake_train):
    path = tmp_path / "space.toml"
    path.write_text(SPACE_TOML)
    logs = tmp_path / "logs"
    result = runner.invoke(main, ["--space", str(path), "--strategy", "grid", "--trials", "12", "--logdir",
                                  str(logs), "--experiment", "c", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("rank "))
    assert header.split()[6:] == ["optimizer", "momentum", "beta_2", "num_layers", "units_2"]  # the space's order
    trials = [json.loads(p.read_text()) for p in (logs / "c").glob("*/trial.json")]
    assert len(trials) == 12 and all(valid(t["hparams"]) for t in trials)
    rows = json.loads(runner.invoke(main, ["review", str(logs), "--format", "json"]).stdout)
    assert {r["trial_id"]: r["hparams"] for r in rows} == {t["id"]: t["hparams"] for t in trials}
    text = runner.invoke(main, ["review", str(logs)]).output
    summary = text[text.index("by hparam"):]
    assert "(missing)" not in summary
    # beta_2 counts only the adam trials it was active in
    adam = sum(t["hparams"]["optimizer"] == "adam" for t in trials)
    beta_rows = [line.split() for line in summary.splitlines() if line.split()[:1] == ["beta_2"]
                 or (line.startswith(" ") and line.split()[:1] in (["0.99"], ["0.999"]))]
    assert sum(int(r[-3]) for r in beta_rows) == adam


@pytest.mark.slow
def test_the_mlp_reads_per_layer_units_and_dropout():
    pytest.importorskip("keras")
    from hparams_lab.training.models import build_model, resolve_model

    model = build_model(resolve_model("mlp"), {"num_layers": 3, "units": 8, "units_1": 32, "units_3": 4,
                                               "dropout_2": 0.25}, (6,), 3)
    dense = [layer.units for layer in model.layers if layer.__class__.__name__ == "Dense"]
    dropouts = [layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert dense == [32, 8, 4, 3] and dropouts == [0.25]


def test_per_layer_names_are_known_to_the_mlp_only():
    from hparams_lab.core.errors import UserError
    from hparams_lab.training.models import check_hparams, resolve_model

    check_hparams(resolve_model("mlp"), ["units_1", "units_12", "dropout_3", "num_layers"])
    with pytest.raises(UserError, match="unknown hyperparameter"):
        check_hparams(resolve_model("cnn"), ["units_2"])
    with pytest.raises(UserError, match="unknown hyperparameter"):
        check_hparams(resolve_model("mlp"), ["units_0"])


def test_a_user_model_reading_an_absent_hparam_is_told_why():
    from hparams_lab.core.errors import UserError
    from hparams_lab.training.models import TrialHParams

    hparams = TrialHParams({"optimizer": "adam"})
    assert hparams.get("momentum", 0.0) == 0.0 and dict(hparams) == {"optimizer": "adam"}
    with pytest.raises(UserError, match=r"reads hparams\['momentum'\], which this trial does not have"):
        hparams["momentum"]


def test_sampling_without_conditions_draws_as_random_search_always_has():
    space = Space([HParam("a", RealInterval(0.0, 1.0)), HParam("b", Discrete([1, 2, 3]))])
    rng, old = Random(7), Random(7)
    assert [space.sample(rng) for _ in range(5)] == [
        {"a": space["a"].domain.sample(old), "b": space["b"].domain.sample(old)} for _ in range(5)]


@pytest.mark.slow
def test_tensorboard_shows_every_session_of_a_conditional_study_and_filters_them(runner, tmp_path, fake_train):
    """Inactive hparams are absent from the session: measured with TensorBoard 2.21, that is the
    one form every column type accepts (a null value breaks its sort and interval filter with
    HTTP 500, an empty string drops the session from a discrete filter); absent values pass
    filters and sort last, and the table shows an empty cell."""
    from tests.tbserver import SESSION_GROUPS_REQUEST, TensorBoardServer

    path = tmp_path / "space.toml"
    path.write_text(SPACE_TOML)
    logs = tmp_path / "logs"
    assert runner.invoke(main, ["--space", str(path), "--strategy", "grid", "--trials", "12", "--logdir",
                                str(logs), "--experiment", "c", "--epochs", "1"]).exit_code == 0
    trials = {p.parent.name: json.loads(p.read_text()) for p in (logs / "c").glob("*/trial.json")}

    def groups(tb, col_params):
        found = tb.post("session_groups", {**SESSION_GROUPS_REQUEST, "colParams": col_params})["sessionGroups"]
        return [g["sessions"][0]["name"].split("/")[-1] for g in found]

    with TensorBoardServer(logs) as tb:
        experiment, all_groups = tb.wait_for_sessions(len(trials))
        infos = {info["name"]: info for info in experiment["hparamInfos"]}
        assert infos["optimizer"]["type"] == "DATA_TYPE_STRING" and infos["momentum"]["type"] == "DATA_TYPE_FLOAT64"
        assert infos["momentum"]["domainInterval"] == {"minValue": 0.5, "maxValue": 0.9}
        for group in all_groups["sessionGroups"]:
            trial = trials[group["sessions"][0]["name"].split("/")[-1]]
            assert set(group["hparams"]) == set(trial["hparams"])  # nothing inactive shows a value
        adam = {name for name, t in trials.items() if t["hparams"]["optimizer"] == "adam"}
        assert set(groups(tb, [{"hparam": "optimizer", "filterDiscrete": ["adam"]}])) == adam
        kept = groups(tb, [{"hparam": "momentum", "filterInterval": {"minValue": 0.6, "maxValue": 1.0}}])
        assert set(kept) == {n for n, t in trials.items() if t["hparams"].get("momentum", 1.0) >= 0.6}
        by_momentum = groups(tb, [{"hparam": "momentum", "order": "ORDER_ASC"}])
        assert len(by_momentum) == len(trials)
        momenta = [trials[n]["hparams"].get("momentum") for n in by_momentum]
        assert momenta == sorted(momenta, key=lambda m: (m is None, m))  # absent ones last


@pytest.mark.slow
def test_a_user_model_reading_an_hparam_where_it_is_inactive_is_one_line_before_anything(
        runner, tmp_path, write_module):
    pytest.importorskip("keras")
    module = write_module("reads_momentum", '''
import keras

def build(hparams, input_shape, n_outputs):
    hparams["momentum"]  # but momentum is active only for sgd
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(n_outputs, activation="softmax")])
''')
    space = tmp_path / "space.toml"
    space.write_text('[hparams.optimizer]\nvalues = ["adam", "sgd"]\n'
                     '[hparams.momentum]\nvalues = [0.5, 0.9]\nwhen = { optimizer = "sgd" }\n')
    result = runner.invoke(main, ["--model", f"{module}:build", "--space", str(space), "--strategy", "grid",
                                  "--epochs", "1", "--logdir", str(tmp_path / "logs")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the model reads hparams['momentum']")
    assert lines[0].endswith("(at {'optimizer': 'adam'})")
    assert not (tmp_path / "logs").exists()
