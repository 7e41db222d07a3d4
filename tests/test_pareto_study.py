"""Several objectives on a synthetic study (the fake train function): --metric repeated with
directions, --constraint, experiment.json's record of them, their checks (study.checks)."""

import json

import pytest

from hparams_lab import Discrete, HParam, Space, run_study
from hparams_lab.cli.app import main
from hparams_lab.core.errors import UserError
from hparams_lab.core.trial import TrialStatus
from hparams_lab.store.experiment import ExperimentRecord
from hparams_lab.study.config import StudyConfig

SPACE = Space([HParam("units", Discrete([8, 16, 32, 64])), HParam("extra_layer", Discrete([False, True]))])
OBJECTIVES = ("best_val_accuracy", "params:min")


class Notes:
    def __init__(self):
        self.notes = []

    def study_started(self, metric):
        pass

    def note(self, message):
        self.notes.append(message)

    def trial_started(self, *args):
        pass

    def epoch_ended(self, *args):
        pass

    def trial_finished(self, *args):
        pass


def test_config_takes_one_or_several_metrics_and_constraints():
    assert StudyConfig.of(metric=("best_val_loss",)).metric == "best_val_loss"  # the CLI's one --metric
    assert StudyConfig.of(metric=()).metric is None
    assert StudyConfig.of(metric=["a", "b:min"]).metric == ("a", "b:min")
    assert StudyConfig.of(constraint=("params<=5",)).constraints == ("params<=5",)
    assert StudyConfig.of(constraints="params<=5").constraints == ("params<=5",)
    assert StudyConfig.of().constraints == ()


def test_objectives_recorded_and_noted_once(tmp_path, fake_train):
    notes = Notes()
    study = run_study(SPACE, strategy="grid", epochs=2, logdir=tmp_path, experiment="mo", metric=list(OBJECTIVES),
                      constraints=["params<=2000"], reporter=notes)
    assert study.metric == "best_val_accuracy"
    record = json.loads((tmp_path / "mo" / "experiment.json").read_text())
    assert record["objectives"] == ["best_val_accuracy:max", "params:min"]
    assert record["constraints"] == ["params<=2000"]
    said = [n for n in notes.notes if "objectives" in n]
    assert len(said) == 1 and "rank by the first, best_val_accuracy" in said[0]
    # a resume reads them back: the same objectives resume, others are a different study
    run_study(SPACE, strategy="grid", epochs=2, logdir=tmp_path, experiment="mo", metric=list(OBJECTIVES),
              constraints=["params<=2000"])
    with pytest.raises(UserError, match="objectives was"):
        run_study(SPACE, strategy="grid", epochs=2, logdir=tmp_path, experiment="mo",
                  metric=["best_val_accuracy", "latency_ms:min"])


def test_a_single_metric_records_no_objectives(tmp_path, fake_train):
    notes = Notes()
    run_study(SPACE, strategy="grid", epochs=1, logdir=tmp_path, experiment="one", metric="best_val_accuracy",
              reporter=notes)
    record = json.loads((tmp_path / "one" / "experiment.json").read_text())
    assert "objectives" not in record and "constraints" not in record
    assert not [n for n in notes.notes if "objectives" in n]
    assert ExperimentRecord.read(tmp_path / "one").objectives is None  # old files (without them) load


def test_one_metric_with_a_direction_suffix_is_metric_and_direction(tmp_path, fake_train):
    study = run_study(SPACE, strategy="grid", epochs=1, logdir=tmp_path, experiment="d", metric="best_val_loss:max")
    assert study.metric == "best_val_loss" and study.directions == {"loss": "max"}


@pytest.mark.parametrize("options, message", [
    ({"metric": ["params:min", "best_val_accuracy"]}, "the first of several --metric ranks hyperband"),
    ({"metric": ["best_val_accuracy", "params:up"]}, "direction 'up'; choose min or max"),
    ({"metric": ["best_val_accuracy", "params", "params:min"]}, "--metric 'params' is given twice"),
    ({"metric": ["best_val_accuracy", "nonsense"]}, "--metric 'nonsense': choose best_val_<name>"),
    ({"metric": ["best_val_accuracy", "params"], "direction": "max"}, "--direction goes with one --metric"),
    ({"metric": "best_val_loss:min", "direction": "max"}, "say the direction once"),
    ({"metric": ["best_val_accuracy", "params"], "constraints": ["params<=lots"]}, "write NAME<=NUMBER"),
    ({"metric": ["best_val_accuracy", "best_val_f1"]}, "'best_val_f1': the trials do not log it"),
    ({"constraints": ["flops<=5"]}, "--constraint 'flops': the trials do not log it"),
])
def test_bad_objectives_are_user_errors_before_anything_is_written(tmp_path, fake_train, options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")):
        run_study(SPACE, strategy="grid", epochs=1, logdir=tmp_path, experiment="bad", **options)
    assert not (tmp_path / "bad" / "experiment.json").exists()


def _cli_study(runner, tmp_path):
    """The CLI study both tests read: two objectives and a constraint, on the fake train function."""
    return runner.invoke(main, ["--strategy", "grid", "--space", _space_file(tmp_path), "--epochs", "1",
                                "--metric", "best_val_accuracy", "--metric", "params:min",
                                "--constraint", "params<=2000", "--logdir", str(tmp_path / "logs"),
                                "--experiment", "cli"])


def test_cli_repeats_metric_and_constraint(runner, tmp_path, fake_train):
    result = _cli_study(runner, tmp_path)
    assert result.exit_code == 0, result.output
    assert "rank by the first, best_val_accuracy" in result.output
    record = json.loads((tmp_path / "logs" / "cli" / "experiment.json").read_text())
    assert record["objectives"] == ["best_val_accuracy:max", "params:min"]


def _space_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text("[hparams]\nunits = [8, 16, 32, 64]\nextra_layer = [false, true]\n")
    return str(path)


# -- the front ---------------------------------------------------------------------------
def _study(tmp_path, **options):
    options = {"strategy": "grid", "epochs": 2, "logdir": tmp_path, "experiment": "mo", "metric": list(OBJECTIVES),
               **options}
    return run_study(SPACE, **options)


def test_front_ranks_and_infeasible_trials_on_disk_and_in_events(tmp_path, fake_train):
    from hparams_lab.core import objectives as obj
    from hparams_lab.review import reader

    study = _study(tmp_path, constraints=["params<=2000"])
    objectives = [obj.parse_objective(t) for t in OBJECTIVES]
    maximize = [o.maximize for o in objectives]
    feasible = [r for r in study.results if r.metrics["params"] <= 2000]
    broken = [r for r in study.results if r.metrics["params"] > 2000]
    assert feasible and broken
    points = {r.trial.id: [r.metrics[o.name] for o in objectives] for r in feasible}
    for result in study.results:
        record = json.loads((result.run_dir / "trial.json").read_text())
        assert record["pareto_rank"] == result.metrics["pareto_rank"] == record["metrics"]["pareto_rank"]
        dominated = any(obj.dominates(p, points.get(result.trial.id, []), maximize)
                        for p in points.values()) if result in feasible else None
        if result in broken:
            assert record["infeasible"].startswith("params=") and "> 2000" in record["infeasible"]
            assert record["pareto_rank"] >= 2
        else:
            assert "infeasible" not in record
            assert (record["pareto_rank"] == 1) == (not dominated)
    front = study.front
    assert front and all(r in feasible and r.metrics["pareto_rank"] == 1 for r in front)
    assert study.best.trial.id == max(front, key=lambda r: r.metrics["best_val_accuracy"]).trial.id
    ranked = study.ranked()
    ids = [r.trial.id for r in ranked]
    assert ranked[:len(front)] == front and set(ids[-len(broken):]) == {r.trial.id for r in broken}
    # pareto_rank is a metric TensorBoard shows: a scalar of every run, declared
    logs = reader.load(tmp_path)
    assert all("pareto_rank" in row.series for row in logs.rows)
    declared = json.loads((tmp_path / "mo" / "experiment.json").read_text())["metrics"]
    assert {"tag": "pareto_rank", "group": "", "direction": "min"} in [
        {k: d.get(k) for k in ("tag", "group", "direction")} for d in declared]


def test_infeasible_trials_are_never_kept(tmp_path, fake_train):
    study = _study(tmp_path, constraints=["params<=700"], keep_best=2)
    kept = [r for r in study.results if (r.run_dir / "model.keras").exists()]
    assert kept and all(r.metrics["params"] <= 700 for r in kept)


def test_one_metric_studies_write_no_pareto_rank(tmp_path, fake_train):
    study = _study(tmp_path, metric="best_val_accuracy")
    assert study.objectives == () and study.front == study.ranked()[:1]
    for result in study.results:
        record = json.loads((result.run_dir / "trial.json").read_text())
        assert "pareto_rank" not in record and "pareto_rank" not in record["metrics"]


def test_the_leaderboard_shows_the_front_first_and_marks_it(runner, tmp_path, fake_train):
    result = _cli_study(runner, tmp_path)
    assert result.exit_code == 0, result.output
    board = result.output.split("Leaderboard by", 1)[1].splitlines()
    assert "the Pareto front first" in board[0]
    header = board[1].split()
    assert header[:5] == ["rank", "trial", "status", "pareto", "best_val_accuracy"] and header[5] == "params"
    marks = [line.split()[3] for line in board[2:10]]
    fronts = [i for i, mark in enumerate(marks) if mark == "front"]
    assert fronts == list(range(len(fronts))) and fronts  # the front comes first
    assert "infeasible" in marks and marks[-1] == "infeasible"
    assert any(line.startswith("infeasible ") and "> 2000" in line for line in result.output.splitlines())


# -- review ------------------------------------------------------------------------------
def _review(*args):
    from click.testing import CliRunner

    from hparams_lab.cli.review import review

    return CliRunner().invoke(review, [str(a) for a in args])


def _runs_and_marks(output):
    lines = output.split("\n\n")[0].splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["run"])
    header = lines[header_at].split()
    run, pareto = header.index("run"), header.index("pareto")
    body = [line.split() for line in lines[header_at + 2:]]
    return header, [(cells[run], cells[pareto]) for cells in body]


def test_review_reads_the_objectives_and_shows_the_front_first(tmp_path, fake_train):
    study = _study(tmp_path, constraints=["params<=2000"])
    result = _review(tmp_path, "--no-cache")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Pareto front first by best_val_accuracy:max, params:min (infeasible unless "
                                    "params<=2000)")
    header, listed = _runs_and_marks(result.output)
    assert header[header.index("pareto") + 1:header.index("pareto") + 3] == ["best_val_accuracy", "params"]
    front = [f"mo/{r.trial.id}" for r in study.front]
    assert [run for run, _ in listed[:len(front)]] == front
    assert all(mark == "front" for _, mark in listed[:len(front)])
    marks = [mark for _, mark in listed]
    assert marks[-1] == "infeasible" and "front" not in marks[marks.index("infeasible"):]
    assert [run for run, _ in listed] == [f"mo/{r.trial.id}" for r in study.ranked()]  # as the study ranked them
    as_json = json.loads(_review(tmp_path, "--no-cache", "--format", "json").output)
    by_run = {entry["run"]: entry for entry in as_json}
    for r in study.results:
        entry = by_run[f"mo/{r.trial.id}"]
        assert entry["pareto_rank"] == r.metrics["pareto_rank"]
        assert (entry["infeasible"] is not None) == (r.metrics["params"] > 2000)


def test_review_metric_repeated_for_any_logs_and_sort_as_ever(tmp_path, fake_train):
    _study(tmp_path, metric="best_val_accuracy")  # one metric: no objectives recorded
    plain = _review(tmp_path, "--no-cache")
    assert plain.exit_code == 0 and "pareto" not in plain.output
    assert _review(tmp_path, "--no-cache", "--metric", "best_val_accuracy").output == plain.output
    several = _review(tmp_path, "--no-cache", "--metric", "best_val_accuracy", "--metric", "latency_ms:min")
    assert several.exit_code == 0, several.output
    header, listed = _runs_and_marks(several.output)
    assert "front" in [mark for _, mark in listed] and header[header.index("pareto") + 2] == "latency_ms"
    bad = _review(tmp_path, "--no-cache", "--metric", "best_val_accuracy", "--metric", "flops:min")
    assert bad.exit_code == 2 and "'flops' is not logged" in bad.output


# -- bayes -------------------------------------------------------------------------------
def test_bayes_runs_a_multi_objective_optuna_study_with_constraints(tmp_path, fake_train):
    optuna = pytest.importorskip("optuna")
    from hparams_lab.search.bayes import JOURNAL, STUDY_NAME, _storage

    space = Space([HParam("units", Discrete([8, 16, 24, 32, 48, 64, 96])), HParam("extra_layer", Discrete([False, True]))])
    study = run_study(space, strategy="bayes", trials=8, epochs=2, logdir=tmp_path, experiment="b",
                      metric=["best_val_accuracy", "params:min"], constraints=["params<=3000"])
    assert len(study.results) == 8 and study.front
    assert all(r.metrics["params"] <= 3000 for r in study.front)
    optuna_study = optuna.load_study(study_name=STUDY_NAME, storage=_storage(optuna, str(tmp_path / "b" / JOURNAL)))
    assert [d.name for d in optuna_study.directions] == ["MAXIMIZE", "MINIMIZE"]
    done = [t for t in optuna_study.get_trials() if t.state.name == "COMPLETE" and "duplicate_of" not in t.user_attrs]
    assert len(done) == 8
    by_id = {r.trial.id: r for r in study.results}
    for frozen in done:
        result = by_id[frozen.user_attrs["trial_id"]]
        assert frozen.values == [result.metrics["best_val_accuracy"], result.metrics["params"]]
        (violation,) = frozen.user_attrs["constraints"]
        assert (violation <= 0) == (result.metrics["params"] <= 3000)
        if hasattr(optuna.trial.Trial, "set_constraint"):  # optuna >= 5: what its samplers read
            assert list(frozen.constraints.values()) == [violation]
    # the same seed asks the same trials: a multi-objective TPE seeded per ask
    again = run_study(space, strategy="bayes", trials=8, epochs=2, logdir=tmp_path, experiment="b2",
                      metric=["best_val_accuracy", "params:min"], constraints=["params<=3000"])
    assert [r.trial.id for r in again.results] == [r.trial.id for r in study.results]


def test_bayes_with_several_objectives_and_the_pruner_prunes_by_the_first(tmp_path, fake_train):
    pytest.importorskip("optuna")
    space = Space([HParam("units", Discrete([8, 16, 24, 32, 48, 64, 96])), HParam("extra_layer", Discrete([False, True]))])
    study = run_study(space, strategy="bayes", trials=10, epochs=4, logdir=tmp_path, experiment="p", pruner="median",
                      metric=["best_val_accuracy", "params:min"])
    assert len(study.results) == 10  # pruning ran (MedianPruner over the first objective) without error
    assert any(r.status is TrialStatus.PRUNED for r in study.results)
    assert all(r.status is not TrialStatus.PRUNED for r in study.front)


def test_the_report_draws_the_front_of_the_first_two_objectives(tmp_path, fake_train):
    pytest.importorskip("plotly")
    from hparams_lab.review import query, reader
    from hparams_lab.review.report import _front_scatter

    study = _study(tmp_path, constraints=["params<=2000"])
    page = tmp_path / "report.html"
    result = _review(tmp_path, "--no-cache", "--report", page)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "<h2>Pareto front</h2>" in html and html.count("<h2>Pareto front</h2>") == 1
    assert html.index("<h2>Pareto front</h2>") < html.index("<h2>Hparams and metric</h2>")
    assert "Pareto front first by best_val_accuracy:max, params:min" in html  # the leaderboard's caption

    logs = reader.load(tmp_path)
    front = query.front(logs, (), (), lambda key: reader.maximizes(key, recorded=logs.directions))
    ordered = front.order(logs.rows)
    figure = _front_scatter([row for row, _, _ in ordered], front,
                            {id(row): (rank, why) for row, rank, why in ordered})
    traces = {trace.name: trace for trace in figure.data}
    assert set(traces) == {"front", "dominated", "infeasible"}
    expected = sorted((r.metrics["best_val_accuracy"], r.metrics["params"]) for r in study.front)
    drawn = list(zip(traces["front"].x, traces["front"].y))
    assert [pytest.approx(point, rel=1e-6) for point in drawn] == expected  # float32 scalars in the events
    assert len(traces["infeasible"].x) == sum(r.metrics["params"] > 2000 for r in study.results)
    assert figure.layout.xaxis.title.text == "best_val_accuracy (max)"


@pytest.mark.slow
def test_tensorboard_shows_pareto_rank_and_the_costs_for_every_session(tmp_path, fake_train):
    from tests.tbserver import TensorBoardServer, metric_names, session_metric_values

    study = _study(tmp_path, constraints=["params<=2000"])
    wanted = {("", "pareto_rank"), *(("", name) for name in ("params", "epoch_time_s", "latency_ms",
                                                             "peak_memory_mb"))}
    with TensorBoardServer(tmp_path) as tb:
        experiment, groups = tb.wait_for_sessions(len(study.results), metrics=lambda name: wanted)
    assert wanted <= metric_names(experiment)  # declared: HParams table columns
    ranks = {}
    for group in groups.get("sessionGroups", []):
        for session in group["sessions"]:
            values = session_metric_values(session)
            assert wanted <= set(values), session["name"]
            ranks[session["name"].rsplit("/", 1)[-1]] = values[("", "pareto_rank")]
    assert ranks == {r.trial.id: r.metrics["pareto_rank"] for r in study.results}
    assert {r.trial.id for r in study.front} == {tid for tid, rank in ranks.items() if rank == 1}


def test_export_takes_the_fronts_best_never_an_infeasible_trial(tmp_path, fake_train):
    from hparams_lab.study.export import _chosen, _read_record

    study = _study(tmp_path, constraints=["params<=700"], keep_best=1)
    chosen = _chosen(tmp_path / "mo", _read_record(tmp_path / "mo"), None)
    assert chosen.trial.id == study.best.trial.id and chosen.metrics["params"] <= 700
    best_by_accuracy = max(study.results, key=lambda r: r.metrics["best_val_accuracy"])
    assert best_by_accuracy.metrics["params"] > 700  # what a single metric would have exported


def test_a_resumed_study_ranks_every_trial_again(tmp_path, fake_train):
    options = {"strategy": "random", "epochs": 1, "logdir": tmp_path, "experiment": "r", "metric": list(OBJECTIVES),
               "space": SPACE, "seed": 3}
    run_study(trials=3, **options)
    study = run_study(trials=8, **options)
    assert len(study.results) == 8
    from hparams_lab.core import objectives as obj

    expected = obj.pareto_ranks(study.results, [obj.parse_objective(t) for t in OBJECTIVES])
    for result in study.results:
        record = json.loads((result.run_dir / "trial.json").read_text())
        assert record["pareto_rank"] == expected[result.trial.id] == result.metrics["pareto_rank"]
