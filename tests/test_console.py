"""What a study prints: its leaderboard and numbers, through review's renderer and formatter."""

from hparams_lab.cli.console import DIGITS, format_hparams, format_value, leaderboard
from hparams_lab.core.metrics import ranked
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus
from hparams_lab.review.output import human

METRIC = "best_val_accuracy"
LONG = "conv3x3-64,conv3x3-128,maxpool,dense-256"  # longer than a review cell may be


def result(index, status, value, **hparams):
    metrics = {} if value is None else {METRIC: value}
    return TrialResult(Trial({"learning_rate": 0.0017782794, **hparams}, seed=index, index=index), status,
                       metrics, epochs=20, wall_time_s=12.34)


def test_study_numbers_are_reviews_formatter_at_four_digits():
    assert DIGITS == 4
    for value in (0.0017782794, 0.963888, 12345.678, 1e-5, float("nan"), 32, True, "adam"):
        assert format_value(value) == human(value, DIGITS)
    assert format_value(0.0017782794) == "0.001778" and format_value(0.963888) == "0.9639"
    assert format_hparams({"units": 32, "learning_rate": 0.0017782794}) == "units=32 learning_rate=0.001778"


def test_leaderboard_keeps_every_column_and_whole_cells():
    wide = {f"hparam_number_{i}": i for i in range(12)}
    results = [result(0, TrialStatus.SUCCESS, 0.5, arch=LONG, **wide),
               result(1, TrialStatus.FAILURE, None, arch=LONG, **wide),
               result(2, TrialStatus.SUCCESS, 0.963888, arch=LONG, **wide)]
    lines = leaderboard(ranked(results, METRIC), METRIC).splitlines()
    assert lines[0].split() == ["rank", "trial", "status", METRIC, "epochs", "time", "learning_rate", "arch",
                                *wide]
    assert [line.split()[:4] for line in lines[1:]] == [["1", results[2].trial.id, "SUCCESS", "0.9639"],
                                                        ["2", results[0].trial.id, "SUCCESS", "0.5"],
                                                        ["-", results[1].trial.id, "FAILURE", "20"]]
    assert all(LONG in line and "0.001778" in line for line in lines[1:])
    assert "…" not in "\n".join(lines) and "not shown" not in "\n".join(lines)


def test_leaderboard_cuts_to_top_and_says_how_many_more():
    results = [result(i, TrialStatus.SUCCESS, i / 10) for i in range(5)]
    lines = leaderboard(ranked(results, METRIC), METRIC, top=2).splitlines()
    assert len(lines) == 4 and lines[-1] == "... and 3 more"


def test_names_and_values_from_spaces_and_logs_reach_the_terminal_escaped():
    import io

    from hparams_lab.cli.console import ConsoleReporter
    from hparams_lab.core.trial import Trial, TrialResult, TrialStatus

    stream = io.StringIO()
    reporter = ConsoleReporter(stream, metric="best_val_accuracy", epochs=1, live=True)
    trial = Trial({"act\x1b[31m": "relu\u202e\u2028x"}, seed=0)
    reporter.trial_started(trial, 1, 1)
    reporter.epoch_ended(trial, 0, {"val_accuracy": 0.5})
    reporter.note("resuming 'e\x07'")
    reporter.trial_finished(TrialResult(trial, TrialStatus.FAILURE, {}, error="bad\x1b]0;title\x07"), 1, 1)
    text = stream.getvalue().replace("\r", "")
    assert "\x1b" not in text and "\u202e" not in text and "\u2028" not in text and "\x07" not in text
    assert "act\\x1b[31m=relu\\u202e\\u2028x" in text and "bad\\x1b]0;title\\x07" in text


def test_an_error_line_escapes_what_it_quotes(runner, tmp_path):
    from hparams_lab.cli.app import main

    result = runner.invoke(main, ["review", str(tmp_path / "no\x1b[2Jsuch")])
    assert result.exit_code == 2 and "\x1b" not in result.output and "no\\x1b[2Jsuch" in result.output
