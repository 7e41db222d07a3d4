"""core.objectives: --metric NAME[:min|max], --constraint, dominance, Pareto ranks."""

import pytest

from hparams_lab.core import objectives as o
from hparams_lab.core.errors import UserError
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus


def result(i, status=TrialStatus.SUCCESS, **metrics):
    return TrialResult(Trial({"i": i}, seed=0), status, dict(metrics))


def test_objective_direction_from_the_rule_or_the_suffix():
    assert o.parse_objective("best_val_accuracy") == o.Objective("best_val_accuracy", True)
    assert o.parse_objective("best_val_loss") == o.Objective("best_val_loss", False)
    assert o.parse_objective("params:min") == o.Objective("params", False)
    assert o.parse_objective("best_val_loss:max").maximize
    assert not o.parse_objective("best_val_kappa", {"kappa": "min"}).maximize
    assert str(o.parse_objective("params:min")) == "params:min"


@pytest.mark.parametrize("text, match", [
    ("params:smallest", "direction 'smallest'; choose min or max"),
    ("", "write NAME or NAME:min"),
    ("a b", "write NAME or NAME:min"),
])
def test_bad_objectives(text, match):
    with pytest.raises(UserError, match=match):
        o.parse_objective(text)


@pytest.mark.parametrize("text, name, op, bound", [
    ("params<=50000", "params", "<=", 50000.0),
    (" latency_ms < 2.5 ", "latency_ms", "<", 2.5),
    ("best_val_accuracy>=0.9", "best_val_accuracy", ">=", 0.9),
    ("epoch_time_s>1e-3", "epoch_time_s", ">", 0.001),
    ("params==100", "params", "==", 100.0),
])
def test_constraints_parse(text, name, op, bound):
    assert o.parse_constraint(text) == o.Constraint(name, op, bound)


@pytest.mark.parametrize("text", ["params", "params<=", "params<=lots", "<=5", "params=<5", "params<=inf",
                                  "params!=3"])
def test_bad_constraints(text):
    with pytest.raises(UserError, match=r"--constraint .*: write NAME<=NUMBER"):
        o.parse_constraint(text)


def test_constraint_reasons():
    c = o.parse_constraint("params<=50000")
    assert c.broken_by({"params": 50000}) is None
    assert c.broken_by({"params": 63000}) == "params=63000 > 50000"
    assert c.broken_by({}) == "params not measured"
    assert o.parse_constraint("latency_ms<0.5").broken_by({"latency_ms": 0.71234567}) == "latency_ms=0.712346 >= 0.5"
    both = [c, o.parse_constraint("best_val_accuracy>=0.9")]
    assert o.infeasible({"params": 7e4, "best_val_accuracy": 0.5}, both) == \
        "params=70000 > 50000; best_val_accuracy=0.5 < 0.9"
    assert o.infeasible({"params": 1, "best_val_accuracy": 0.95}, both) is None


def test_check_names():
    allowed = ["best_val_accuracy", "params"]
    o.check_names([o.Objective("best_val_accuracy", True)], [o.parse_constraint("params<5")], allowed)
    with pytest.raises(UserError, match="--metric 'flops': the trials do not log it; choose one of "
                                        "best_val_accuracy, params"):
        o.check_names([o.Objective("flops", False)], [], allowed)
    with pytest.raises(UserError, match="--constraint 'flops'"):
        o.check_names([], [o.parse_constraint("flops<5")], allowed)
    with pytest.raises(UserError, match="given twice"):
        o.check_names([o.Objective("params", False), o.Objective("params", True)], [], allowed)


def test_dominance():
    up_down = [True, False]  # accuracy up, params down
    assert o.dominates((0.9, 10), (0.8, 20), up_down)
    assert o.dominates((0.9, 10), (0.9, 20), up_down)
    assert not o.dominates((0.9, 10), (0.9, 10), up_down)  # equal: neither
    assert not o.dominates((0.9, 30), (0.8, 20), up_down)  # a trade-off: neither
    assert not o.dominates((0.8, 20), (0.9, 30), up_down)


def test_nondominated_ranks_and_ties():
    points = [(0.9, 30), (0.8, 20), (0.7, 40), (0.9, 30), (0.6, 50), (0.8, 25)]
    assert o.nondominated_ranks(points, [True, False]) == [1, 1, 3, 1, 4, 2]
    assert o.nondominated_ranks([], [True]) == []


def test_ranked_front_first_infeasible_last_failures_after():
    objectives = [o.Objective("acc", True), o.Objective("params", False)]
    results = [
        result(0, acc=0.8, params=100),
        result(1, acc=0.95, params=900),  # best accuracy, but infeasible
        result(2, acc=0.7, params=50),
        result(3, TrialStatus.FAILURE),
        result(4, acc=0.6, params=200),  # dominated by 0 and 2
        result(5, acc=0.85, params=300),
        result(6, TrialStatus.PRUNED, acc=0.99, params=1),  # not finished: never ranked
        result(7, acc=0.5),  # params not measured
    ]
    constraints = [o.parse_constraint("params<=500")]
    placed = o.ranked(results, objectives, constraints)
    assert [p.result.trial.hparams["i"] for p in placed] == [5, 0, 2, 4, 1, 7, 3, 6]
    assert [p.rank for p in placed] == [1, 1, 1, 2, 3, None, None, None]
    assert [p.on_front for p in placed] == [True, True, True, False, False, False, False, False]
    assert placed[4].infeasible == "params=900 > 500"
    assert [r.trial.hparams["i"] for r in o.front(results, objectives, constraints)] == [5, 0, 2]
    ranks = o.pareto_ranks(results, objectives, constraints)
    assert ranks[results[1].trial.id] == 3 and results[6].trial.id not in ranks


def test_an_all_infeasible_study_has_no_front():
    objectives = [o.Objective("acc", True), o.Objective("params", False)]
    results = [result(0, acc=0.8, params=100), result(1, acc=0.9, params=200)]
    placed = o.ranked(results, objectives, [o.parse_constraint("params<10")])
    assert [p.rank for p in placed] == [2, 2] and not any(p.on_front for p in placed)
    assert o.front(results, objectives, [o.parse_constraint("params<10")]) == []
