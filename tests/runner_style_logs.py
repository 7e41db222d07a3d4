"""Write logs in hparams_lab's runner layout, without TensorFlow.

Used by the review tests and by benchmarks/review_speed.py until the runner's
own writer lands. The layout (one union hparams_config at the logdir root,
experiment.json per experiment, one run dir per trial with train/ and
validation/ subdirs) is the one described in the review brief.
"""

import json
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

STATUS = {"SUCCESS": api_pb2.STATUS_SUCCESS, "FAILURE": api_pb2.STATUS_FAILURE,
          "RUNNING": api_pb2.STATUS_RUNNING, "UNKNOWN": api_pb2.STATUS_UNKNOWN}


def scalar_value(tag, value):
    """A TF2-style scalar: a float32 tensor under the 'scalars' plugin."""
    return summary_pb2.Summary.Value(
        tag=tag,
        tensor=tensor_util.make_tensor_proto(float(value), dtype="float32"),
        metadata=summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")))


def summary_event(values, step=0, wall_time=1.0e9):
    return event_pb2.Event(wall_time=wall_time, step=step,
                           summary=summary_pb2.Summary(value=list(values)))


def session_end_event(status, wall_time=1.0e9):
    data = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=STATUS[status], end_time_secs=wall_time))
    value = summary_pb2.Summary.Value(
        tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(data),
        tensor=metadata.NULL_TENSOR)
    return summary_event([value], wall_time=wall_time)


def write_events(run_dir, events):
    """One events file in run_dir holding the events in order."""
    writer = EventFileWriter(str(run_dir))
    for event in events:
        writer.add_event(event)
    writer.close()


def write_trial(experiment_dir, trial_id, hparams, history, status="SUCCESS", group_name=None):
    """A trial run dir: session start/end, best_/final_ scalars, per-epoch scalars, trial.json.

    history maps 'train'/'validation' to {'accuracy': [...], 'loss': [...]}, one value per epoch.
    """
    run_dir = Path(experiment_dir) / trial_id
    epochs = len(history["validation"]["accuracy"]) if history else 0
    start = hp.hparams_pb(hparams, trial_id=group_name or trial_id, start_time_secs=1.0e9)
    events = [event_pb2.Event(wall_time=1.0e9, summary=start)]
    metrics = summary_metrics(history) if history else {}
    events.append(summary_event([scalar_value(tag, value) for tag, value in metrics.items()], step=epochs))
    events.append(session_end_event(status))
    write_events(run_dir, events)
    for group, curves in (history or {}).items():
        # One event per scalar and epoch, as tf.summary and Keras's callback write them.
        per_epoch = [summary_event([scalar_value(f"epoch_{name}", values[epoch])], step=epoch)
                     for epoch in range(epochs) for name, values in curves.items()]
        write_events(run_dir / group, per_epoch)
    trial = {"id": trial_id, "hparams": hparams, "seed": 0, "status": status, "metrics": metrics,
             "epochs": epochs, "wall_time_s": 1.0, "error": None if status == "SUCCESS" else "boom"}
    (run_dir / "trial.json").write_text(json.dumps(trial))
    return run_dir


def summary_metrics(history):
    accuracy, loss = history["validation"]["accuracy"], history["validation"]["loss"]
    return {"best_val_accuracy": max(accuracy), "best_val_loss": min(loss),
            "final_val_accuracy": accuracy[-1], "final_val_loss": loss[-1]}


def write_experiment_json(experiment_dir, space, metric="best_val_accuracy"):
    Path(experiment_dir).mkdir(parents=True, exist_ok=True)
    info = {"space": space, "strategy": "grid", "seed": 0, "dataset": "digits", "model": "mlp",
            "metric": metric,
            "metrics": ["best_val_accuracy", "best_val_loss", "final_val_accuracy", "final_val_loss"]}
    (Path(experiment_dir) / "experiment.json").write_text(json.dumps(info))


def write_union_config(logdir, hparam_values):
    """The one hparams_config at the logdir root. hparam_values: {name: [values]}."""
    hparams = [hp.HParam(name, hp.Discrete(values)) for name, values in hparam_values.items()]
    metrics = [hp.Metric(tag) for tag in
               ("best_val_accuracy", "best_val_loss", "final_val_accuracy", "final_val_loss")]
    config = hp.hparams_config_pb(hparams, metrics, time_created_secs=1.0e9)
    write_events(logdir, [event_pb2.Event(wall_time=1.0e9, summary=config)])
