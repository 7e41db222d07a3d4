"""--strategy bayes: optuna's TPE decides, hparams_lab trains; pruning, resume, the optional install."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from hparams_lab import Discrete, HParam, IntInterval, RealInterval, Space, run_study  # noqa: E402
from hparams_lab.review import reader as review  # noqa: E402
from hparams_lab.search.bayes import (
    INSTALL,
    JOURNAL,
    STUDY_NAME,
    BayesSearch,
    distribution,
    hparams_of,
    startup_trials,
    value_of,
)
from hparams_lab.cli.app import main  # noqa: E402
from hparams_lab.core.errors import UserError  # noqa: E402
from hparams_lab.execution.local import InlineBackend  # noqa: E402
from hparams_lab.cli.console import leaderboard  # noqa: E402
from hparams_lab.core.metrics import ranked  # noqa: E402
from hparams_lab.execution.loop import drive  # noqa: E402
from hparams_lab.core.space import check_value  # noqa: E402
from hparams_lab.core.trial import TrialStatus  # noqa: E402
from tests.fakes import FakeTrain  # noqa: E402

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

SPACE = Space([
    HParam("learning_rate", RealInterval(1e-4, 1e-1, log=True)),
    HParam("units", Discrete([16, 32, 64])),
    HParam("dropout", RealInterval(0.0, 0.5)),
])
METRIC = "best_val_accuracy"
BEST_LR = 3e-3
EPOCHS = 4


def quality(hparams) -> float:
    """The fake model's final accuracy: best at learning_rate 3e-3, a little better with more units."""
    return 0.95 - 0.25 * abs(math.log10(hparams["learning_rate"] / BEST_LR)) - 0.1 * hparams["dropout"] \
        + 0.01 * math.log2(hparams["units"] / 16)


def bad(trial) -> bool:
    """Every third trial from the 6th on learns almost nothing (a pruner's work)."""
    return trial.index >= 5 and trial.index % 3 == 0


def curve(trial, epoch: int) -> float:
    return (0.1 if bad(trial) else quality(trial.hparams)) * (1 - 0.5 ** (epoch + 1))


def fake(*, with_bad: bool = False, **options) -> FakeTrain:
    """EPOCHS of a learning curve towards quality(), or ``with_bad`` a bad one for bad() trials."""
    accuracy = curve if with_bad else lambda trial, epoch: quality(trial.hparams) * (1 - 0.5 ** (epoch + 1))
    return FakeTrain(accuracy, epochs=EPOCHS, **options)


def search(experiment_dir: Path, *, trials: int = 8, seed: int = 0, space: Space = SPACE, **options) -> BayesSearch:
    experiment_dir.mkdir(parents=True, exist_ok=True)
    return BayesSearch(space, seed=seed, trials=trials, metric=METRIC, experiment_dir=experiment_dir, **options)


def run_fake(experiment_dir: Path, train: FakeTrain | None = None, *, with_bad: bool = False,
             **options) -> BayesSearch:
    found = search(experiment_dir, **options)
    drive(found, InlineBackend(train or fake(with_bad=with_bad)), experiment_dir)
    return found


def in_order(found: BayesSearch) -> list:
    return sorted(found.results.values(), key=lambda r: r.trial.index)


def journal_trials(experiment_dir: Path) -> list:
    from hparams_lab.search.bayes import _storage

    storage = _storage(optuna, str(experiment_dir / JOURNAL))
    return optuna.load_study(study_name=STUDY_NAME, storage=storage).get_trials()


# -- the space as optuna distributions -------------------------------------------------
@pytest.mark.parametrize("domain, expected", [
    (Discrete(["adam", "sgd"]), CategoricalDistribution(("adam", "sgd"))),
    (Discrete([False, True]), CategoricalDistribution((False, True))),
    (Discrete([64, 16, 32]), CategoricalDistribution((16, 32, 64))),
    (IntInterval(1, 10), IntDistribution(1, 10)),
    (IntInterval(1, 64, log=True), IntDistribution(1, 64, log=True)),
    (IntInterval(0, 10, step=3), IntDistribution(0, 9, step=3)),  # max on the grid, no optuna warning
    (RealInterval(0.0, 0.5), FloatDistribution(0.0, 0.5)),
    (RealInterval(1e-4, 1e-1, log=True), FloatDistribution(1e-4, 1e-1, log=True)),
    # No optuna equivalent: the index of the ordered values.
    (IntInterval(1, 64, log=True, step=2), IntDistribution(0, 6)),  # 1 2 4 ... 64
    (RealInterval(0.0, 1.0, step=0.25), IntDistribution(0, 4)),
    (RealInterval(1e-3, 1e-1, log=True, step=10.0), IntDistribution(0, 2)),
])
def test_each_domain_becomes_an_optuna_distribution(domain, expected):
    assert distribution(domain) == expected


@pytest.mark.parametrize("domain, param, value", [
    (IntInterval(1, 64, log=True, step=2), 3, 8),
    (RealInterval(0.0, 1.0, step=0.25), 2, 0.5),
    (RealInterval(1e-3, 1e-1, log=True, step=10.0), 1, 0.01),
    (RealInterval(1e-4, 1e-1, log=True), 0.0012345678, 0.001235),  # rounded like random search
    (IntInterval(0, 10, step=3), 6, 6),
    (Discrete([False, True]), True, True),
])
def test_parameters_become_hparam_values(domain, param, value):
    assert value_of(domain, param) == value
    assert type(value_of(domain, param)) is type(value)


def test_every_asked_point_is_in_the_space():
    space = Space([
        HParam("a", IntInterval(1, 64, log=True, step=2)), HParam("b", RealInterval(0.0, 1.0, step=0.1)),
        HParam("c", IntInterval(2, 9)), HParam("d", RealInterval(1e-5, 1.0, log=True)),
        HParam("e", Discrete(["x", "y"])), HParam("f", Discrete([0.5])),
    ])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(50):
        hparams = hparams_of(space, study.ask({h.name: distribution(h.domain) for h in space}).params)
        for h in space:
            check_value(h.name, h.domain, hparams[h.name])
        assert hparams["b"] in space["b"].domain.all_values()


def test_startup_trials_leave_room_for_tpe_in_small_studies():
    assert [startup_trials(n) for n in (1, 3, 10, 20, 100)] == [1, 1, 5, 10, 10]


# -- the search ------------------------------------------------------------------------
def test_same_seed_same_trials_and_another_seed_others(tmp_path):
    first = in_order(run_fake(tmp_path / "a", seed=3))
    again = in_order(run_fake(tmp_path / "b", seed=3))
    other = in_order(run_fake(tmp_path / "c", seed=4))
    assert len(first) == 8 and all(r.status is TrialStatus.SUCCESS for r in first)
    assert [r.trial.hparams for r in again] == [r.trial.hparams for r in first]
    assert [r.trial.id for r in again] == [r.trial.id for r in first]
    assert [r.trial.index for r in first] == list(range(8))
    assert [r.trial.hparams for r in other] != [r.trial.hparams for r in first]


def test_tpe_learns_from_the_results(tmp_path):
    """After its random start (10 of 30 trials), TPE proposes better points than random ones."""
    values = [r.metrics[METRIC] for r in in_order(run_fake(tmp_path, trials=30, seed=0))]
    assert statistics.median(values[10:]) > statistics.median(values[:10]) + 0.05
    assert max(values[10:]) > max(values[:10])


def test_each_trial_is_told_to_optuna_with_the_ranked_metric(tmp_path):
    found = run_fake(tmp_path, trials=4)
    told = journal_trials(tmp_path)
    assert [t.state for t in told] == [TrialState.COMPLETE] * 4
    by_id = {t.user_attrs["trial_id"]: t for t in told}
    for result in found.results.values():
        assert by_id[result.trial.id].value == result.metrics[METRIC]
        assert hparams_of(SPACE, by_id[result.trial.id].params) == result.trial.hparams


def test_a_loss_metric_is_minimised(tmp_path):
    found = BayesSearch(SPACE, seed=0, trials=2, metric="best_val_loss", experiment_dir=tmp_path)
    assert found.study.direction == optuna.study.StudyDirection.MINIMIZE


def test_a_small_space_runs_each_point_once(tmp_path):
    space = Space([HParam("learning_rate", Discrete([1e-3, 3e-3, 1e-2])), HParam("units", Discrete([16])),
                   HParam("dropout", Discrete([0.0]))])
    train = fake()
    found = run_fake(tmp_path, train, space=space, trials=10)
    assert found.total == 3
    assert len(train.trial_ids) == 3 and len(set(train.trial_ids)) == 3
    assert sorted(r.trial.hparams["learning_rate"] for r in found.results.values()) == [1e-3, 3e-3, 1e-2]


def test_failed_trials_are_told_as_failures(tmp_path):
    found = search(tmp_path, trials=3)
    drive(found, InlineBackend(fake(fail_on=lambda trial: True)), tmp_path)
    assert [r.status for r in found.results.values()] == [TrialStatus.FAILURE] * 3
    assert [t.state for t in journal_trials(tmp_path)] == [TrialState.FAIL] * 3


def test_several_workers_get_several_trials_at_once(tmp_path):
    found = search(tmp_path, trials=5, slots=3)
    tasks = [found.ask() for _ in range(3)]
    assert len({t.trial.id for t in tasks}) == 3
    assert [t.state for t in journal_trials(tmp_path)] == [TrialState.RUNNING] * 3


# -- pruning ---------------------------------------------------------------------------
def test_median_pruner_stops_bad_trials_early(tmp_path):
    train = fake(with_bad=True)
    found = run_fake(tmp_path, train, trials=12, pruner="median")
    results = in_order(found)
    pruned = [r for r in results if r.status is TrialStatus.PRUNED]
    # MedianPruner waits for 5 finished trials; then the bad ones stop after their first epoch.
    assert {6, 9} <= {r.trial.index for r in pruned} and min(r.trial.index for r in pruned) >= 5
    told = {t.user_attrs["trial_id"]: t for t in journal_trials(tmp_path)}
    for result in pruned:
        assert result.epochs < EPOCHS
        # Its real metrics, from the epochs it trained.
        assert result.epochs == 1 and result.metrics[METRIC] == pytest.approx(curve(result.trial, 0))
        record = json.loads((result.run_dir / "trial.json").read_text())
        assert record["status"] == "PRUNED" and record["epochs"] == result.epochs and record["error"] is None
        assert told[result.trial.id].state is TrialState.PRUNED
        assert sorted(told[result.trial.id].intermediate_values) == list(range(result.epochs))
    for result in results:
        if result.status is TrialStatus.SUCCESS:
            assert told[result.trial.id].intermediate_values[EPOCHS - 1] == pytest.approx(result.metrics[METRIC])
    assert len(train.calls) == 12


def test_a_pruned_trial_is_success_in_tensorboard_and_pruned_in_review(tmp_path):
    found = run_fake(tmp_path / "exp", trials=12, pruner="median", with_bad=True)
    pruned = next(r for r in found.results.values() if r.status is TrialStatus.PRUNED)
    runs, _ = review.read_runs(review.walk_logs(str(tmp_path)).event_files)
    assert runs[str(pruned.run_dir)].status == "SUCCESS"  # TensorBoard has no PRUNED
    logs = review.load(str(tmp_path))
    statuses = {row.trial_id: row.status for row in logs.rows}
    assert statuses[pruned.trial.id] == "PRUNED"
    assert set(statuses.values()) == {"SUCCESS", "PRUNED"}
    row = next(row for row in logs.rows if row.trial_id == pruned.trial.id)
    assert row.series["validation/epoch_accuracy"].last_step == pruned.epochs - 1
    # The leaderboard ranks finished trials only; pruned ones follow, unranked.
    lines = leaderboard(ranked(in_order(found), METRIC), METRIC, top=20).splitlines()[1:]
    ranks = [(line.split()[0], line.split()[2]) for line in lines]
    assert ranks[0] == ("1", "SUCCESS") and ("-", "PRUNED") in ranks
    assert ranks.index(("-", "PRUNED")) > max(i for i, (_, s) in enumerate(ranks) if s == "SUCCESS")


def test_review_filters_pruned_trials(tmp_path, runner):
    run_fake(tmp_path / "exp", trials=12, pruner="median", with_bad=True)
    result = runner.invoke(main, ["review", str(tmp_path), "--status", "pruned", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and {row["status"] for row in rows} == {"PRUNED"}


# -- resume ----------------------------------------------------------------------------
def test_a_resumed_study_keeps_its_finished_trials(tmp_path):
    uninterrupted = in_order(run_fake(tmp_path / "whole", trials=8))

    experiment = tmp_path / "cut"
    first = fake(interrupt_at=5)
    with pytest.raises(KeyboardInterrupt):
        drive(search(experiment, trials=8), InlineBackend(first), experiment)
    assert len(first.calls) == 5
    assert [t.state for t in journal_trials(experiment)][-1] is TrialState.RUNNING

    train = fake()
    resumed = run_fake(experiment, train, trials=8)
    assert resumed.total == 3  # progress lines count what this run trains
    assert train.trial_ids == [r.trial.id for r in uninterrupted[5:]]  # the cut-off trial and the rest, nothing twice
    results = in_order(resumed)
    assert [r.trial.hparams for r in results] == [r.trial.hparams for r in uninterrupted]
    assert [r.metrics for r in results] == [r.metrics for r in uninterrupted]
    assert (experiment / f"{uninterrupted[5].trial.id}.2").is_dir()  # a fresh attempt directory
    assert [t.state for t in journal_trials(experiment)] == [TrialState.COMPLETE] * 8


def test_more_trials_on_resume_go_on_from_the_finished_ones(tmp_path):
    run_fake(tmp_path, trials=4)
    train = fake()
    found = run_fake(tmp_path, train, trials=6)
    assert len(train.calls) == 2 and len(found.results) == 6
    assert [r.trial.index for r in in_order(found)] == list(range(6))
    assert found.study.user_attrs["startup_trials"] == startup_trials(4)  # fixed when the study started


def test_a_trial_finished_but_not_told_is_told_on_resume(tmp_path):
    """The study stopped after a trial's trial.json was written, before optuna was told."""
    found = search(tmp_path, trials=3)
    task = found.ask()
    from hparams_lab.execution.events import SilentReporter
    from hparams_lab.execution.attempt import run_task
    from hparams_lab.execution.loop import placed

    run_task(task.trial, fake(), placed(task, tmp_path).run_dir, SilentReporter())
    train = fake()
    resumed = run_fake(tmp_path, train, trials=3)
    assert task.trial.id not in train.trial_ids and len(train.calls) == 2
    assert [t.state for t in journal_trials(tmp_path)] == [TrialState.COMPLETE] * 3
    assert resumed.results[task.trial.id].status is TrialStatus.SUCCESS


# -- the optional install and the command line -------------------------------------------
def test_without_optuna_bayes_says_how_to_install_it_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now raises ImportError
    with pytest.raises(UserError, match=r"needs optuna, an optional extra: pip install -e '\.\[optuna\]'"):
        run_study(strategy="bayes", logdir=tmp_path / "logs")
    assert not (tmp_path / "logs").exists()


def test_without_optuna_the_cli_exits_2_with_one_line(tmp_path, monkeypatch, runner):
    monkeypatch.setitem(sys.modules, "optuna", None)
    result = runner.invoke(main, ["--strategy", "bayes", "--logdir", str(tmp_path / "logs")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: --strategy bayes needs optuna, an optional extra: {INSTALL}"]
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("args, message", [
    (["--strategy", "random", "--pruner", "median"], "--pruner is only for --strategy bayes, not 'random'"),
    (["--strategy", "bayes", "--pruner", "percentile"], "Invalid value for '--pruner'"),
    (["--strategy", "bayes", "--factor", "3"], "--factor is only for --strategy hyperband or successive-halving"),
    (["--strategy", "bayes", "--repeats", "2"], "does not combine with --repeats or --cv"),
])
def test_bad_bayes_flags(tmp_path, runner, args, message):
    result = runner.invoke(main, ["--logdir", str(tmp_path / "logs"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "logs").exists()


# -- whole studies ----------------------------------------------------------------------
def test_a_tiny_study_resumes_without_retraining(tmp_path, fake_train):
    options = dict(strategy="bayes", epochs=2, pruner="median", logdir=tmp_path, experiment="tpe")
    first = run_study(trials=2, **options)
    assert [r.status for r in first.results] == [TrialStatus.SUCCESS] * 2
    record = json.loads((tmp_path / "tpe" / "experiment.json").read_text())
    assert record["strategy"] == "bayes" and record["settings"]["pruner"] == "median" and record["trials"] == 2
    told = journal_trials(tmp_path / "tpe")
    for result in first.results:  # the worker reported each epoch's val_accuracy
        trial = next(t for t in told if t.user_attrs["trial_id"] == result.trial.id)
        assert trial.value == result.metrics["best_val_accuracy"]
        assert max(trial.intermediate_values.values()) == result.metrics["best_val_accuracy"]
        assert sorted(trial.intermediate_values) == [0, 1]

    more = run_study(trials=3, **options)
    assert len(more.results) == 3
    assert {r.trial.id: r.run_dir for r in more.results if r.trial.id in {x.trial.id for x in first.results}} == \
        {r.trial.id: r.run_dir for r in first.results}
    assert len(list((tmp_path / "tpe").glob("*/trial.json"))) == 3  # one new trial, nothing retrained
    assert more.best is not None
    assert len(fake_train.calls) == 3  # nothing trained twice


# -- real Keras fits -------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_trial_is_pruned_in_a_worker_process(tmp_path):
    """Five finished trials that were perfect at every epoch: a real one falls behind at once."""
    from hparams_lab.execution.local import ProcessBackend, WorkerJob
    from hparams_lab.training.fit import TrainSettings

    found = search(tmp_path, space=Space([HParam("units", Discrete([8, 16]))]), trials=1, pruner="median")
    distributions = {"units": distribution(Discrete([8, 16]))}
    for _ in range(5):
        found.study.add_trial(optuna.trial.create_trial(params={"units": 8}, distributions=distributions, value=1.0,
                                                        intermediate_values={0: 1.0, 1: 1.0, 2: 1.0}))
    backend = ProcessBackend(WorkerJob("digits", 0, "mlp", TrainSettings(epochs=3), None), 1)
    try:
        drive(found, backend, tmp_path)
    finally:
        backend.close()
    (result,) = found.results.values()
    assert result.status is TrialStatus.PRUNED and result.epochs == 1
    assert 0 < result.metrics["best_val_accuracy"] < 1
    trial = journal_trials(tmp_path)[-1]
    assert trial.state is TrialState.PRUNED
    assert trial.intermediate_values == {0: result.metrics["best_val_accuracy"]}
