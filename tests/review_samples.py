"""Small logs with known values, shared by the review tests (written without TensorFlow)."""

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hp

import runner_style_logs as logs

SPACE = {"num_units": [16, 32], "optimizer": ["adam", "sgd"], "dropout": [0.0, 0.5], "batch_norm": [True, False]}
# The ugliest values shared logs can carry: HTML, spreadsheet formulas, terminal escapes, bidi overrides.
XSS = "</script><img src=x onerror=alert(1)>"
FORMULA = "=HYPERLINK(\"http://x\",\"y\")"
ESCAPES = "\x1b[31mred\x1b]0;title\x07\u202eevil"


def curves(accuracy, loss):
    return {"train": {"accuracy": [a - 0.05 for a in accuracy], "loss": [x + 0.1 for x in loss]},
            "validation": {"accuracy": accuracy, "loss": loss}}


def write_small_study(root):
    """root/ with the union config, experiment 'alpha' (t1, t2, failed t3) and 'beta' (u1).

    validation accuracy per epoch: t1 0.5 0.75 0.625; t2 0.25 0.875; u1 0.5.
    """
    logs.write_union_config(root, SPACE)
    alpha, beta = root / "alpha", root / "beta"
    logs.write_experiment_json(alpha, SPACE, metric="best_val_accuracy")
    logs.write_experiment_json(beta, SPACE, metric="best_val_accuracy")
    logs.write_trial(alpha, "t1", {"num_units": 16, "optimizer": "adam", "dropout": 0.5, "batch_norm": True},
                     curves([0.5, 0.75, 0.625], [1.0, 0.5, 0.75]))
    logs.write_trial(alpha, "t2", {"num_units": 32, "optimizer": "sgd", "dropout": 0.0, "batch_norm": False},
                     curves([0.25, 0.875], [2.0, 0.25]))
    logs.write_trial(alpha, "t3", {"num_units": 32, "optimizer": "adam", "dropout": 0.0, "batch_norm": True},
                     None, status="FAILURE")
    logs.write_trial(beta, "u1", {"num_units": 16, "optimizer": "sgd", "dropout": 0.5, "batch_norm": False},
                     curves([0.5], [1.5]))
    return root


def write_session(run_dir, hparams, scalars=(), end_status=None, group="g"):
    """A hand-made run: session start, (tag, step, value) scalars as simple values, optional end."""
    events = [event_pb2.Event(summary=hp.hparams_pb(hparams, trial_id=group))]
    events += [logs.summary_event([summary_pb2.Summary.Value(tag=tag, simple_value=value)], step=step)
               for tag, step, value in scalars]
    if end_status:
        events.append(logs.session_end_event(end_status))
    logs.write_events(run_dir, events)


def write_hostile_logs(root):
    """Runs whose names, hparams and tags carry XSS, formula and terminal-escape payloads."""
    write_session(root / "=1+1", {XSS: FORMULA, "note": ESCAPES, "units": 8},
                  [(XSS, 0, 0.5), (XSS, 1, 0.75), ("score", 1, 0.5)], end_status="SUCCESS")
    write_session(root / "plain", {XSS: "-2+3", "note": "@SUM(A1)", "units": 16},
                  [(XSS, 0, 0.25), ("score", 1, 0.25)], end_status="SUCCESS")
    return root
