"""core.metrics: the one rule for which way a metric is better, and the direction experiment.json records."""

import pytest

from hparams_lab.core.metrics import (
    COST_METRICS,
    Metric,
    base_of,
    declared_metrics,
    epoch_scalars,
    higher_is_better,
    monitored,
    sort_key,
    summarize,
    summary_names,
)


@pytest.mark.parametrize("name", [
    "loss", "val_loss", "best_val_loss", "validation/epoch_loss", "mean_squared_error", "MSE", "val_mae",
    "perplexity", "word_Perplexity", "err", "val_err", "top5-err",
    # Keras' losses and error metrics by their log names, per output too
    "binary_crossentropy", "categorical_crossentropy", "best_val_mape", "msle", "mean_squared_logarithmic_error",
    "hinge", "squared_hinge", "logcosh", "kld", "kl_divergence", "poisson", "huber", "out1_mae", "a_loss",
    "RootMeanSquaredError", "false_positives",
])
def test_loss_and_error_like_metrics_are_lower_is_better(name):
    assert not higher_is_better(name)


@pytest.mark.parametrize("name", [
    "accuracy", "best_val_accuracy", "validation/epoch_accuracy", "auc", "f1",
    "binary_accuracy", "precision", "recall", "best_val_auc", "f1_score", "r2_score", "cosine_similarity",
    "true_positives",
    "err_rate",  # 'err' only at a word's end
    "loss_weighted/accuracy",  # only the tag after the last '/' counts
])
def test_everything_else_is_higher_is_better(name):
    assert higher_is_better(name)


def test_metric_json_records_its_direction():
    assert Metric("best_val_accuracy").to_json() == {"tag": "best_val_accuracy", "group": "", "direction": "max"}
    assert Metric("epoch_loss", "validation").to_json() == {"tag": "epoch_loss", "group": "validation",
                                                            "direction": "min"}


def test_a_direction_given_for_a_metric_decides_for_all_of_its_names():
    directions = {"custom_score": "min"}
    for name in ("custom_score", "best_val_custom_score", "validation/epoch_custom_score", "test_custom_score",
                 "cv_mean_best_val_custom_score"):
        assert higher_is_better(name) and not higher_is_better(name, directions)
    assert not higher_is_better("loss", directions)  # other metrics keep the rule
    assert higher_is_better("val_loss", {"loss": "max"})


def test_base_of_strips_every_prefix():
    assert base_of("cv_mean_best_val_binary_accuracy") == "binary_accuracy"
    assert base_of("validation/epoch_mae") == "mae"
    assert base_of("test_auc") == "auc"
    assert monitored("best_val_binary_accuracy") == "val_binary_accuracy"
    assert monitored("mean_final_val_mae") == "val_mae"


def test_every_logged_metric_is_summarised_in_its_own_direction():
    history = {"loss": [3.0, 2.0, 2.5], "val_loss": [3.0, 1.0, 2.0], "val_mae": [2.0, 0.5, 0.7],
               "val_auc": [0.6, 0.9, 0.8], "mae": [1.0, 1.0, 1.0], "auc": [0.5, 0.6, 0.7]}
    assert summarize(history, {"loss": 4.0, "auc": 0.7}) == {
        "best_val_auc": 0.9, "final_val_auc": 0.8, "best_val_mae": 0.5, "final_val_mae": 0.7,
        "best_val_loss": 1.0, "final_val_loss": 2.0, "test_loss": 4.0, "test_auc": 0.7,
    }
    assert summarize({"val_score": [0.3, 0.1, 0.2]}, None, {"score": "min"})["best_val_score"] == 0.1


def test_declared_metrics_follow_what_the_model_logs():
    logged = ["loss", "auc", "accuracy"]
    assert summary_names(False, logged) == ["best_val_accuracy", "final_val_accuracy", "best_val_auc",
                                            "final_val_auc", "best_val_loss", "final_val_loss"]
    declared = {m.key: m.to_json()["direction"] for m in declared_metrics(True, logged)}
    assert declared["test_auc"] == "max" and declared["validation/epoch_loss"] == "min"
    assert declared["train/epoch_auc"] == "max" and len(declared) == 3 * 3 + 3 * 2 + 4
    assert {name: declared[name] for name in COST_METRICS} == dict.fromkeys(COST_METRICS, "min")
    assert declared_metrics(False, ["score"], {"score": "min"})[0].to_json()["direction"] == "min"


def test_costs_and_pareto_rank_are_lower_is_better():
    for name in (*COST_METRICS, "pareto_rank", "mean_params", "cv_mean_latency_ms"):
        assert not higher_is_better(name), name
    assert higher_is_better("params", {"params": "max"})


def test_epoch_scalars_keep_every_numeric_log():
    assert epoch_scalars({"loss": 1, "val_mae": 2.0, "out1_loss": 3, "learning_rate": 0.1, "note": "x"}) == {
        "train": {"epoch_loss": 1.0, "epoch_out1_loss": 3.0, "epoch_learning_rate": 0.1},
        "validation": {"epoch_mae": 2.0},
    }


def test_sort_key_ranks_mae_ascending_and_auc_descending():
    rows = [{"best_val_mae": 3.0, "best_val_auc": 0.7}, {"best_val_mae": 1.0, "best_val_auc": 0.9}]
    assert sorted(rows, key=sort_key("best_val_mae"))[0]["best_val_mae"] == 1.0
    assert sorted(rows, key=sort_key("best_val_auc"))[0]["best_val_auc"] == 0.9
    assert sorted(rows, key=sort_key("best_val_auc", {"auc": "min"}))[0]["best_val_auc"] == 0.7
