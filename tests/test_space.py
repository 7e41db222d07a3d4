import json
import math

import pytest

from hparams_lab.core.errors import UserError
from hparams_lab.core.space import Discrete, HParam, IntInterval, RealInterval, Space, SpaceError


def test_discrete_sorts_and_dedups():
    assert Discrete([64, 16, 32, 16]).values == (16, 32, 64)
    assert Discrete(["sgd", "adam"]).values == ("adam", "sgd")
    assert Discrete([True, False]).values == (False, True)


@pytest.mark.parametrize(
    "values, match",
    [
        ([], "at least one value"),
        ([1, "a"], "all numbers, all strings or all bools"),
        ([True, 1], "all numbers, all strings or all bools"),
        ([None], "all numbers"),
        ([float("nan")], "finite"),
        ("adam", "list of values"),
    ],
)
def test_discrete_rejects(values, match):
    with pytest.raises(SpaceError, match=match):
        Discrete(values)


def test_discrete_dtypes():
    assert Discrete([1, 2]).dtype == "int"
    assert Discrete([1, 2.5]).dtype == "float"
    assert Discrete(["a"]).dtype == "str"
    assert Discrete([True]).dtype == "bool"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: IntInterval(5, 1), r"min <= max, got min=5 > max=1"),
        (lambda: RealInterval(0.0, 1.0, log=True), r"log scale needs min > 0, got min=0.0"),
        (lambda: IntInterval(1.5, 3), r"min must be a whole number, got min=1.5"),
        (lambda: IntInterval(True, 3), r"min must be a whole number"),
        (lambda: RealInterval("a", 1.0), r"min must be a finite number, got min='a'"),
        (lambda: RealInterval(0.0, float("inf")), r"max must be a finite number"),
        (lambda: RealInterval(0.0, 1.0, points=0), r"points must be a whole number >= 1"),
        (lambda: RealInterval(0.1, 1.0, log=True, step=0.5), r"step must be > 1 \(a factor\) with log"),
        (lambda: IntInterval(1, 9, step=0), r"step must be > 0"),
        (lambda: RealInterval(0.0, 1.0, log="yes"), r"'log' must be true or false"),
    ],
)
def test_interval_rejects(make, match):
    with pytest.raises(SpaceError, match=match):
        make()


def test_errors_are_user_errors():
    assert issubclass(SpaceError, UserError)


def test_grid_values():
    assert RealInterval(1e-4, 1e-2, log=True, points=3).grid_values() == (1e-4, 1e-3, 1e-2)
    assert RealInterval(0.0, 0.5, step=0.1).grid_values() == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    assert RealInterval(0.1, 0.2, points=1).grid_values() == (0.1,)
    assert IntInterval(16, 64, step=16).grid_values() == (16, 32, 48, 64)
    assert IntInterval(8, 256, log=True, step=2).grid_values() == (8, 16, 32, 64, 128, 256)
    assert IntInterval(1, 3, points=5).grid_values() == (1, 2, 3)  # rounding merges duplicates


def test_interval_without_points_has_no_grid():
    with pytest.raises(SpaceError, match=r"has no grid: give it 'points'"):
        RealInterval(0.0, 1.0).grid_values()


def test_sample_stays_in_bounds_and_on_steps():
    import random

    rng = random.Random(0)
    stepped = IntInterval(16, 128, step=16)
    ints = IntInterval(1, 3)
    reals = RealInterval(1e-4, 1e-1, log=True)
    for _ in range(500):
        assert stepped.sample(rng) in stepped.grid_values()
        assert ints.sample(rng) in (1, 2, 3)
        assert 1e-4 <= reals.sample(rng) <= 1e-1


def test_int_interval_ends_are_as_likely_as_the_middle():
    import random
    from collections import Counter

    rng = random.Random(1)
    counts = Counter(IntInterval(1, 3).sample(rng) for _ in range(3000))
    assert all(900 < counts[v] < 1100 for v in (1, 2, 3)), counts


def test_space_rejects_duplicates_and_empty():
    with pytest.raises(SpaceError, match="'units' is defined twice"):
        Space((HParam("units", Discrete([1])), HParam("units", Discrete([2]))))
    with pytest.raises(SpaceError, match="at least one hparam"):
        Space(())


def test_hparam_rejects_bad_domain_and_name():
    with pytest.raises(SpaceError, match="domain must be Discrete, IntInterval or RealInterval"):
        HParam("units", [16, 32])
    with pytest.raises(SpaceError, match="non-empty string"):
        HParam("", Discrete([1]))


def test_size():
    space = Space((HParam("a", Discrete([1, 2])), HParam("b", IntInterval(1, 3))))
    assert space.size() == 6
    assert Space((HParam("c", RealInterval(0.0, 1.0)),)).size() == math.inf


TOML = """
[hparams]
num_units = [16, 32]
optimizer = ["adam", "sgd"]
epochs = 5

[hparams.learning_rate]
min = 0.001
max = 0.01
log = true
points = 2
description = "step size"

[hparams.layers]
min = 1
max = 3
"""


def test_load_toml(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(TOML)
    space = Space.load(path)
    assert space.names == ("num_units", "optimizer", "epochs", "learning_rate", "layers")
    assert space["num_units"].domain == Discrete([16, 32])
    assert space["epochs"].domain == Discrete([5])
    assert space["learning_rate"].domain == RealInterval(0.001, 0.01, log=True, points=2)
    assert space["learning_rate"].description == "step size"
    assert space["layers"].domain == IntInterval(1, 3)


def test_json_roundtrip(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(TOML)
    space = Space.load(path)
    json_path = tmp_path / "space.json"
    json_path.write_text(json.dumps(space.to_dict()))
    assert Space.load(json_path) == space


def test_explicit_kind():
    space = Space.from_dict({"hparams": {"dropout": {"kind": "real", "min": 0, "max": 1, "points": 2}}})
    assert space["dropout"].domain == RealInterval(0.0, 1.0, points=2)


@pytest.mark.parametrize(
    "text, match",
    [
        ("[hparams]\nx = [", "not valid TOML"),
        ("[hparams.x]\nkind = 'gaussian'\nmin = 0\nmax = 1", r"hparam 'x': unknown domain kind 'gaussian'"),
        ("[hparams.x]\nmin = 0\nmax = 1\npionts = 3", r"hparam 'x': unknown key\(s\) \['pionts'\]"),
        ("[hparams.x]\nmin = 0", r"hparam 'x': an interval needs min and max, missing \['max'\]"),
        ("[hparams.x]\nmin = 1\nmax = 0", r"hparam 'x': IntInterval needs min <= max"),
        ("[hparams]\nx = []", r"hparam 'x': Discrete needs at least one value"),
        ("[hparams]\nx = [1, 'a']", r"hparam 'x': Discrete values must be all numbers"),
        ("[hparams.x]\nmin = 0.0\nmax = 1.0\nlog = true", r"hparam 'x': RealInterval with log scale needs min > 0"),
        ("[hparams.x]\nmin = 'low'\nmax = 1.0", r"hparam 'x': RealInterval min must be a finite number"),
        ("units = [1]", "expected a table 'hparams'"),
        ("[hparams]\nx = [1]\n[study]\nepochs = 1", r"unknown top-level key\(s\) \['study'\]"),
    ],
)
def test_load_errors_name_the_file_and_hparam(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpaceError, match=match) as info:
        Space.load(path)
    assert str(path) in str(info.value)


def test_load_rejects_other_suffixes_and_missing_files(tmp_path):
    with pytest.raises(SpaceError, match="use a .toml or .json file"):
        Space.load(tmp_path / "space.yaml")
    with pytest.raises(SpaceError, match="cannot be read"):
        Space.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SpaceError, match="not valid JSON"):
        Space.load(bad)
