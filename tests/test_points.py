"""Points of one's own (--enqueue) run first, then the strategy goes on; warm starts (--from)
learn from any TensorBoard HParams logs, using only the trials that fit the space."""

from __future__ import annotations

import json

import pytest
import review_samples as samples

from hparams_lab.cli.app import main
from hparams_lab.core.space import Discrete, HParam, RealInterval, Space
from hparams_lab.search.registry import plan_study
from hparams_lab.study.run import DEFAULT_SPACE

SPACE = Space([
    HParam("optimizer", Discrete(["adam", "sgd"])),
    HParam("momentum", Discrete([0.0, 0.5, 0.9]), when={"optimizer": "sgd"}),
    HParam("learning_rate", RealInterval(0.001, 0.1, log=True, points=3)),
])
MINE = [{"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.05}, {"optimizer": "adam"}]
WHOLE = [MINE[0], {"optimizer": "adam", "learning_rate": 0.01}]  # the second point's learning_rate: the middle


def plan(strategy, tmp_path, **kw):
    return plan_study(strategy, SPACE, DEFAULT_SPACE, seed=0, metric="best_val_accuracy", logdir=tmp_path,
                      **{"trials": None, **kw})


@pytest.mark.parametrize("strategy, trials, total", [("random", 6, 6), ("grid", None, 1 + 3 * 3 + 3)])
def test_enqueued_points_run_first_and_count(tmp_path, strategy, trials, total):
    planned = plan(strategy, tmp_path, trials=trials, enqueue=MINE)
    assert [t.hparams for t in planned.trials[:2]] == WHOLE
    assert len(planned.trials) == total and len({t.id for t in planned.trials}) == total
    assert [t.index for t in planned.trials] == list(range(total))
    assert planned.settings["enqueue"] == WHOLE  # recorded, so a resume plans the same


def test_enqueue_files_json_and_toml(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(MINE))
    (tmp_path / "p.toml").write_text('[[trial]]\noptimizer = "sgd"\nmomentum = 0.9\nlearning_rate = 0.05\n\n'
                                     '[[trial]]\noptimizer = "adam"\n')
    for name in ("p.json", "p.toml"):
        assert [t.hparams for t in plan("random", tmp_path, trials=4, enqueue=tmp_path / name).trials[:2]] == WHOLE


def test_hyperband_and_bayes_start_with_the_enqueued_points(tmp_path):
    pytest.importorskip("optuna")
    hb = plan("hyperband", tmp_path, trials=None, epochs=9, enqueue=MINE)
    (tmp_path / "hb").mkdir()
    (tmp_path / "bayes").mkdir()
    search = hb.search(tmp_path / "hb", 1)
    assert [c.trial.hparams for c in search.configs[:2]] == WHOLE
    bayes = plan("bayes", tmp_path, trials=5, enqueue=MINE)
    search = bayes.search(tmp_path / "bayes", 1)
    asked = [search.ask().trial.hparams for _ in range(2)]
    assert asked == WHOLE


@pytest.mark.parametrize("points, message", [
    ([{"units": 8}], "enqueued point 1: unknown hparam(s) 'units'; the space has optimizer, momentum"),
    ([{"optimizer": "adam", "momentum": 0.5}],
     "enqueued point 1: hparam 'momentum' is inactive at this point (it needs optimizer = 'sgd')"),
    ([{}, {"learning_rate": 5.0}], "enqueued point 2: hparam 'learning_rate': 5.0 is outside its range"),
])
def test_a_bad_point_is_one_error_line_and_nothing_written(runner, tmp_path, fake_train, points, message):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE.to_dict()))
    (tmp_path / "p.json").write_text(json.dumps(points))
    result = runner.invoke(main, ["--space", str(space), "--enqueue", str(tmp_path / "p.json"), "--logdir",
                                  str(tmp_path / "logs"), "--epochs", "1"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("content, message", [
    ("{}", "expected a list of objects"), ("[1, 2]", "expected a list of objects"), ("[", "is not valid JSON")])
def test_a_bad_enqueue_file_is_one_error_line(runner, tmp_path, fake_train, content, message):
    (tmp_path / "p.json").write_text(content)
    result = runner.invoke(main, ["--enqueue", str(tmp_path / "p.json"), "--logdir", str(tmp_path / "logs")])
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "logs").exists()


def test_a_study_from_python_runs_its_points_first(tmp_path, fake_train):
    from hparams_lab import run_study

    study = run_study(SPACE, strategy="random", trials=4, epochs=1, logdir=tmp_path, experiment="e", enqueue=MINE)
    assert [r.trial.hparams for r in study.results[:2]] == WHOLE and len(study.results) == 4


# -- warm starts from logs hparams_lab did not write ----------------------------------
def hand_written_logs(root):
    """A tutorial-style loop: hp.hparams and one 'accuracy' scalar per run, no session end;
    two runs fit the space, three do not."""
    runs = [
        ("fits-1", {"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.01}, 0.91),
        ("fits-2", {"optimizer": "adam", "learning_rate": 0.002}, 0.85),
        ("foreign", {"optimizer": "adam", "learning_rate": 0.01, "units": 64}, 0.99),
        ("outside", {"optimizer": "sgd", "momentum": 0.7, "learning_rate": 0.01}, 0.7),
        ("incomplete", {"optimizer": "sgd", "learning_rate": 0.01}, 0.6),
    ]
    for name, hparams, accuracy in runs:
        samples.write_session(root / name, hparams, [("accuracy", 1, accuracy)], group=name)
    return root


def test_bayes_warm_starts_from_hand_written_logs_using_only_what_fits(tmp_path, runner, fake_train):
    pytest.importorskip("optuna")
    logs = hand_written_logs(tmp_path / "tutorial")
    found = plan("bayes", tmp_path, trials=4, refine_from=str(logs), from_metric="accuracy")
    assert found.notes == (f"--from {str(logs)!r}: 2 of 5 earlier trial(s) used; not used: "
                           "1 not in the space (hparam 'units' is not in the space); "
                           "1 not in the space (hparam 'momentum' has no value); "
                           "1 not in the space (hparam 'momentum' = 0.7 is outside its domain)",)
    (tmp_path / "exp").mkdir()
    search = found.search(tmp_path / "exp", 1)
    warm = [t for t in search.study.get_trials() if t.user_attrs.get("warm_start")]
    assert sorted(t.value for t in warm) == pytest.approx([0.85, 0.91])  # float32 scalars, as logged
    assert {json.dumps(t.params, sort_keys=True) for t in warm} == {
        json.dumps({"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.01}, sort_keys=True),
        json.dumps({"optimizer": "adam", "learning_rate": 0.002}, sort_keys=True)}
    task = search.ask()
    assert task is not None and task.trial.index == 0  # the study's own trials start at 0


def test_a_warm_start_names_the_metric_the_logs_lack(tmp_path):
    pytest.importorskip("optuna")
    from hparams_lab.core.errors import UserError

    logs = hand_written_logs(tmp_path / "tutorial")
    with pytest.raises(UserError, match=r"its sessions log no 'best_val_accuracy' \(they log accuracy\); "
                                        "name the one to use with --from-metric"):
        plan("bayes", tmp_path, trials=4, refine_from=str(logs))


def test_refine_from_tensorboardx_logs(tmp_path):
    tbx = pytest.importorskip("tensorboardX")
    for name, lr, accuracy in [("a", 0.01, 0.8), ("b", 0.05, 0.9)]:
        writer = tbx.SummaryWriter(str(tmp_path / "tbx" / name))
        writer.add_hparams({"optimizer": "adam", "learning_rate": lr}, {"hparam/accuracy": accuracy})
        writer.close()
    found = plan("refine", tmp_path, refine_from=str(tmp_path / "tbx"), from_metric="hparam/accuracy", top_k=1)
    assert found.notes[0].endswith("2 of 2 earlier trial(s) used")
    assert {t.hparams["optimizer"] for t in found.trials} == {"adam"}
    rates = sorted(t.hparams["learning_rate"] for t in found.trials)
    assert rates[0] < 0.05 < rates[-1]  # around the winner, 0.05


def test_refine_from_foreign_logs_needs_the_space(tmp_path):
    from hparams_lab.core.errors import UserError

    logs = hand_written_logs(tmp_path / "tutorial")
    with pytest.raises(UserError, match="is not an hparams_lab experiment: give the space to refine with --space"):
        plan_study("refine", None, DEFAULT_SPACE, seed=0, trials=None, metric="accuracy", logdir=tmp_path,
                   refine_from=str(logs))
