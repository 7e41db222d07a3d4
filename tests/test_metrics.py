"""core.metrics: the one rule for which way a metric is better, and the direction experiment.json records."""

import pytest

from hparams_lab.core.metrics import Metric, higher_is_better


@pytest.mark.parametrize("name", [
    "loss", "val_loss", "best_val_loss", "validation/epoch_loss", "mean_squared_error", "MSE", "val_mae",
    "perplexity", "word_Perplexity", "err", "val_err", "top5-err",
])
def test_loss_and_error_like_metrics_are_lower_is_better(name):
    assert not higher_is_better(name)


@pytest.mark.parametrize("name", [
    "accuracy", "best_val_accuracy", "validation/epoch_accuracy", "auc", "f1",
    "err_rate",  # 'err' only at a word's end
    "loss_weighted/accuracy",  # only the tag after the last '/' counts
])
def test_everything_else_is_higher_is_better(name):
    assert higher_is_better(name)


def test_metric_json_records_its_direction():
    assert Metric("best_val_accuracy").to_json() == {"tag": "best_val_accuracy", "group": "", "direction": "max"}
    assert Metric("epoch_loss", "validation").to_json() == {"tag": "epoch_loss", "group": "validation",
                                                            "direction": "min"}
