"""Hyperband and successive halving: bracket budgets, rung decisions, ASHA, resume, TensorBoard."""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from hparams_lab import Discrete, HParam, RealInterval, Space, run_study
from hparams_lab.execution.local import InlineBackend
from hparams_lab.search.hyperband import Bracket, HyperbandSearch, brackets, capped
from hparams_lab.execution.attempt import run_task
from hparams_lab.execution.loop import drive, placed
from hparams_lab.core.trial import TrialStatus
from tests.fakes import FakeTrain

SPACE = Space([HParam("quality", RealInterval(0.1, 0.9)), HParam("units", Discrete([8, 16]))])
METRIC = "best_val_accuracy"


def curve(quality: float, epoch: int) -> float:
    """A learning curve whose order never changes: better quality is better at every epoch."""
    return quality * (1 - 0.5 ** (epoch + 1))


def fake(**options) -> FakeTrain:
    """Trains segments of the fake curve; a continued one must find its checkpoint."""
    return FakeTrain(lambda trial, epoch: curve(trial.hparams["quality"], epoch), **options)


def search_of(tmp_path: Path, plan, **options) -> HyperbandSearch:
    return HyperbandSearch(SPACE, plan, seed=0, metric=METRIC, experiment_dir=tmp_path, **options)


def records(experiment_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in experiment_dir.glob("*/trial.json")}


# -- budgets -------------------------------------------------------------------------

def test_brackets_are_li_et_al_table_for_81_epochs():
    plan = brackets(81, 3)
    assert [(b.sizes, b.epochs) for b in plan] == [
        ((81, 27, 9, 3, 1), (1, 3, 9, 27, 81)),
        ((34, 11, 3, 1), (3, 9, 27, 81)),
        ((15, 5, 1), (9, 27, 81)),
        ((8, 2), (27, 81)),
        ((5,), (81,)),
    ]


def test_keras_tuner_style_budget_8_epochs_factor_3():
    plan = brackets(8, 3)
    assert [(b.sizes, b.epochs) for b in plan] == [((3, 1), (3, 8)), ((2,), (8,))]
    # Continued configurations train only their new epochs: 3*3 + 1*(8-3), then 2*8.
    assert [b.total_epochs for b in plan] == [14, 16]


def test_successive_halving_is_the_most_aggressive_bracket_alone():
    assert brackets(27, 3, only_first=True) == [Bracket((27, 9, 3, 1), (1, 3, 9, 27))]
    assert brackets(1, 3) == [Bracket((1,), (1,))]


def test_trials_caps_configurations_from_the_first_bracket_on():
    plan = capped(brackets(9, 3), 12)
    assert [(b.sizes, b.epochs) for b in plan] == [((9, 3, 1), (1, 3, 9)), ((3, 1), (3, 9))]
    assert capped(brackets(9, 3), None) == brackets(9, 3)


def test_factor_below_two_is_refused(tmp_path):
    with pytest.raises(ValueError):
        brackets(9, 1)


# -- decisions -------------------------------------------------------------------------

def test_one_worker_runs_each_rung_whole_and_sends_on_the_best(tmp_path):
    train = fake()
    plan = [Bracket((9, 3, 1), (1, 3, 9))]
    search = search_of(tmp_path, plan)
    drive(search, InlineBackend(train), tmp_path)
    calls = train.calls

    rung0, rung1, rung2 = calls[:9], calls[9:12], calls[12:]
    assert all(start == 0 and stop == 1 for _, start, stop in rung0)
    assert all((start, stop) == (1, 3) for _, start, stop in rung1)
    assert [(start, stop) for _, start, stop in rung2] == [(3, 9)]
    quality = {c.trial.id: c.trial.hparams["quality"] for c in search.configs}
    best_three = sorted(quality, key=quality.get, reverse=True)[:3]
    assert {tid for tid, *_ in rung1} == set(best_three)
    assert rung2[0][0] == best_three[0]
    # Epochs trained: continued configurations pick up where they stopped.
    assert sum(stop - start for _, start, stop in calls) == plan[0].total_epochs == 9 + 6 + 6
    # One run directory (one TensorBoard session) per configuration, all closed.
    trials = records(tmp_path)
    assert len(trials) == 9 and set(trials) == set(quality)
    assert {t["status"] for t in trials.values()} == {"SUCCESS"}
    assert trials[best_three[0]]["epochs"] == 9
    assert not list(tmp_path.glob("*/checkpoint.npz"))  # a closed configuration keeps no checkpoint
    assert len(search.results) == 9


def test_the_same_seed_gives_the_same_study(tmp_path):
    runs = []
    for name in ("a", "b"):
        train = fake()
        drive(search_of(tmp_path / name, brackets(9, 3)), InlineBackend(train), tmp_path / name)
        runs.append(train.calls)
    assert runs[0] == runs[1]
    other = HyperbandSearch(SPACE, brackets(9, 3), seed=1, metric=METRIC, experiment_dir=tmp_path / "a")
    assert [c.trial.id for c in other.configs] != [tid for tid, start, _ in runs[0] if start == 0]


def test_two_workers_promote_asynchronously_without_idling(tmp_path):
    """ASHA: a free worker takes a promotion as soon as a rung's top third has one."""
    search = search_of(tmp_path, [Bracket((9, 3, 1), (1, 3, 9))], asynchronous=True)
    train = fake()
    asked, pending = [], []

    def refill():
        while len(pending) < 2 and (task := search.ask()) is not None:
            task = placed(task, tmp_path)
            asked.append(task)
            pending.append(task)

    refill()
    while pending:
        task = pending.pop(0)
        search.tell(task, run_task(task.trial, train, task.run_dir, _silent(), start=task.start, stop=task.stop))
        refill()
        fresh_left = any(c.result is None and not c.busy for c in search.configs)
        assert len(pending) == 2 or not fresh_left  # never idle while new configurations wait
    first_promotion = next(i for i, t in enumerate(asked) if t.start > 0)
    last_fresh = max(i for i, t in enumerate(asked) if t.start == 0)
    assert first_promotion < last_fresh  # promoted before rung 0 was full
    assert sum(t.start > 0 for t in asked if t.stop == 3) <= 3  # never more than the next rung holds
    assert {r.status for r in search.results.values()} == {TrialStatus.SUCCESS}
    assert len(search.results) == 9


def test_a_failed_configuration_is_closed_and_not_sent_on(tmp_path):
    train = fake(fail_on=lambda trial: trial.hparams["quality"] == max(
        c.trial.hparams["quality"] for c in search.configs))
    search = search_of(tmp_path, [Bracket((3, 1), (1, 3))])
    drive(search, InlineBackend(train), tmp_path)
    calls = train.calls
    statuses = sorted(r.status.value for r in search.results.values())
    assert statuses == ["FAILURE", "SUCCESS", "SUCCESS"]
    assert len([c for c in calls if c[1] > 0]) == 1  # the best of the two others went on


# -- resuming --------------------------------------------------------------------------

def test_a_resumed_study_trains_only_what_was_not_done(tmp_path):
    plan = [Bracket((9, 3, 1), (1, 3, 9))]
    whole = fake()
    drive(search_of(tmp_path / "whole", plan), InlineBackend(whole), tmp_path / "whole")

    first = fake(interrupt_at=10)
    with pytest.raises(KeyboardInterrupt):  # stopped during the second rung
        drive(search_of(tmp_path / "cut", plan), InlineBackend(first), tmp_path / "cut")
    assert len(first.calls) == 10
    second = fake()
    search = search_of(tmp_path / "cut", plan)
    drive(search, InlineBackend(second), tmp_path / "cut")
    assert first.calls + second.calls == whole.calls  # nothing trained twice, and the same decisions
    assert {r["status"] for r in records(tmp_path / "cut").values()} == {"SUCCESS"}


# -- a real study, as TensorBoard shows it ---------------------------------------------

@pytest.mark.slow
def test_a_real_hyperband_study_is_one_tensorboard_session_per_configuration(tmp_path):
    from tests.tbserver import TensorBoardServer, groups_by_name, session_metric_values, session_statuses

    study = run_study(strategy="hyperband", epochs=3, logdir=tmp_path, experiment="hb", seed=1)
    plan = brackets(3, 3)  # 3 configurations on 1 epoch, the best on to 3; 2 more on 3
    assert [(b.sizes, b.epochs) for b in plan] == [((3, 1), (1, 3)), ((2,), (3,))]
    trials = records(tmp_path / "hb")
    assert len(study.results) == len(trials) == 5
    assert sorted(t["epochs"] for t in trials.values()) == [1, 1, 3, 3, 3]
    promoted = next(tid for tid, t in trials.items() if t["epochs"] == 3 and (tmp_path / "hb" / tid).exists()
                    and len(list((tmp_path / "hb" / tid).glob("events.out.tfevents.*"))) > 1)

    with TensorBoardServer(tmp_path / "hb") as tb:
        _, groups = tb.wait_for_sessions(5)
        series = _scalars(tb.url, f"{promoted}/validation", "epoch_accuracy")
    assert set(session_statuses(groups).values()) == {"STATUS_SUCCESS"}
    for group in groups_by_name(groups).values():
        (session,) = group["sessions"]  # one session per configuration, not one per rung
        values = session_metric_values(session)
        trial = trials[Path(session["name"]).name]
        assert values[("", METRIC)] == pytest.approx(trial["metrics"][METRIC], rel=1e-6)
    # The promoted configuration's scalars show its whole training, rung after rung.
    assert [step for _, step, _ in series] == [0, 1, 2]


def _scalars(url: str, run: str, tag: str) -> list:
    query = urllib.parse.urlencode({"run": run, "tag": tag})
    with urllib.request.urlopen(f"{url}/data/plugin/scalars/scalars?{query}", timeout=10) as response:
        return json.loads(response.read())


def _silent():
    from hparams_lab.execution.events import SilentReporter

    return SilentReporter()


def test_budget_math_is_finite():
    assert all(math.isfinite(b.total_epochs) for b in brackets(243, 3))
    assert brackets(243, 3)[0].epochs == (1, 3, 9, 27, 81, 243)


def test_bad_counts_from_the_api_are_user_errors(tmp_path):
    from hparams_lab.core.errors import UserError

    with pytest.raises(UserError, match="--trials must be at least 1, got 0"):
        run_study(strategy="hyperband", trials=0, logdir=tmp_path)
    with pytest.raises(UserError, match="--factor must be a whole number >= 2, got 1"):
        run_study(strategy="hyperband", factor=1, logdir=tmp_path)
    assert list(tmp_path.iterdir()) == []
