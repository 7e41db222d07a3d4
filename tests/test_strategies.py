import math

import pytest

from hparams_lab.core.errors import UserError
from hparams_lab.core.space import Discrete, HParam, IntInterval, RealInterval, Space
from hparams_lab.search.grid import grid
from hparams_lab.search.registry import make_trials
from hparams_lab.search.random import random_search

SPACE = Space(
    (
        HParam("units", Discrete([16, 32])),
        HParam("lr", RealInterval(1e-4, 1e-2, log=True, points=3)),
        HParam("optimizer", Discrete(["adam", "sgd"])),
    )
)


def test_grid_is_the_full_product_in_order():
    trials = grid(SPACE, seed=3)
    assert len(trials) == 2 * 3 * 2
    assert [t.index for t in trials] == list(range(12))
    assert trials[0].hparams == {"units": 16, "lr": 1e-4, "optimizer": "adam"}
    assert trials[1].hparams == {"units": 16, "lr": 1e-4, "optimizer": "sgd"}
    assert trials[-1].hparams == {"units": 32, "lr": 1e-2, "optimizer": "sgd"}
    assert len({t.id for t in trials}) == 12
    assert all(t.seed == 3 for t in trials)


def test_grid_cap():
    assert [t.hparams for t in grid(SPACE, trials=4)] == [t.hparams for t in grid(SPACE)[:4]]


def test_grid_needs_points_on_intervals():
    space = Space((HParam("dropout", RealInterval(0.0, 0.5)),))
    with pytest.raises(UserError, match=r"hparam 'dropout': RealInterval\(0.0, 0.5\) has no grid"):
        grid(space)


def test_random_is_deterministic_per_seed():
    a = random_search(SPACE, seed=7, trials=5)
    b = random_search(SPACE, seed=7, trials=5)
    c = random_search(SPACE, seed=8, trials=5)
    assert [t.hparams for t in a] == [t.hparams for t in b]
    assert [t.id for t in a] == [t.id for t in b]
    assert [t.hparams for t in a] != [t.hparams for t in c]


def test_random_prefix_is_stable():
    # Asking for more trials with the same seed continues the same sequence.
    short = random_search(Space((HParam("x", RealInterval(0.0, 1.0)),)), seed=1, trials=3)
    long = random_search(Space((HParam("x", RealInterval(0.0, 1.0)),)), seed=1, trials=6)
    assert [t.hparams for t in long[:3]] == [t.hparams for t in short]


def test_random_log_domain_is_log_uniform():
    space = Space((HParam("lr", RealInterval(1e-5, 1e-1, log=True)),))
    values = [t.hparams["lr"] for t in random_search(space, seed=0, trials=4000)]
    decades = [0] * 4
    for v in values:
        decades[min(int(math.log10(v) + 5), 3)] += 1
    # Log-uniform puts a quarter of the draws in each decade; uniform would put 90% in the last.
    assert all(850 < n < 1150 for n in decades), decades


def test_random_has_no_duplicates_in_a_small_discrete_space():
    space = Space((HParam("a", Discrete([1, 2, 3])), HParam("b", Discrete([True, False]))))
    trials = random_search(space, seed=0, trials=4)
    assert len({tuple(t.hparams.items()) for t in trials}) == 4


def test_random_asking_for_more_than_the_space_runs_it_whole():
    space = Space((HParam("a", Discrete([1, 2, 3])), HParam("b", IntInterval(1, 2))))
    trials = random_search(space, seed=0, trials=50)
    assert sorted((t.hparams["a"], t.hparams["b"]) for t in trials) == [
        (a, b) for a in (1, 2, 3) for b in (1, 2)
    ]


def test_make_trials_errors():
    with pytest.raises(UserError, match="unknown strategy 'hyper'"):
        make_trials("hyper", SPACE, seed=0, trials=None)
    with pytest.raises(UserError, match="--trials must be at least 1, got 0"):
        make_trials("random", SPACE, seed=0, trials=0)


def test_make_trials_defaults():
    assert len(make_trials("random", SPACE, seed=0, trials=None)) == 10
    assert len(make_trials("grid", SPACE, seed=0, trials=None)) == 12
