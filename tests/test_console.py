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
