"""TensorBoard HParams records as pure proto builders; ``tb.writer`` writes them.

Nothing here imports TensorFlow: the protos are tensorboard's own pure-Python
modules, and nothing here touches a file.

Where the experiment config lives: TensorBoard honours only one (arbitrary)
``_hparams_/experiment`` record under its logdir and, with none, infers hparams and
metrics from the sessions themselves. So no config is written inside an
experiment directory (``--logdir logs/<experiment>`` then infers, which is
complete), and the logdir root holds one config that is the union of every
experiment below it (``--logdir logs`` then shows every column of every
experiment, with declared domains). The union is rebuilt from the
experiments' ``experiment.json`` files each time an experiment starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.scalar import plugin_data_pb2 as scalar_plugin_data_pb2

from hparams_lab.core.metrics import Metric
from hparams_lab.core.space import Discrete, Domain, Space
from hparams_lab.core.trial import Trial, TrialStatus
from hparams_lab.tb.tags import EXPERIMENT_TAG, SESSION_END_TAG, SESSION_START_TAG

CONFIG_SUFFIX = ".hparams_lab-config"  # marks the config files this module owns
CONFIG_RUN_PREFIX = ".hparams_lab-config-"  # the hidden run directory under a logdir that holds the union config

_TYPES = {
    "str": api_pb2.DATA_TYPE_STRING,
    "bool": api_pb2.DATA_TYPE_BOOL,
    "int": api_pb2.DATA_TYPE_FLOAT64,  # TensorBoard has no int type; review casts back
    "float": api_pb2.DATA_TYPE_FLOAT64,
}


# ---- pure builders -------------------------------------------------------------------


def _value(value: Any) -> struct_pb2.Value:
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, (int, float)):
        return struct_pb2.Value(number_value=float(value))
    return struct_pb2.Value(string_value=str(value))


def hparam_info(name: str, domain: Domain, description: str = "") -> api_pb2.HParamInfo:
    info = api_pb2.HParamInfo(name=name, description=description, type=_TYPES[domain.dtype])
    if isinstance(domain, Discrete):
        info.domain_discrete.extend(domain.values)
    else:
        info.domain_interval.min_value = float(domain.min)
        info.domain_interval.max_value = float(domain.max)
    return info


def merge_hparam_infos(a: api_pb2.HParamInfo, b: api_pb2.HParamInfo) -> api_pb2.HParamInfo:
    """One column for an hparam two experiments both have: a domain covering both."""
    merged = api_pb2.HParamInfo(name=a.name, description=a.description or b.description)
    if a.type != b.type:
        return merged  # conflicting types: let TensorBoard show the values as they are
    merged.type = a.type
    if a.HasField("domain_discrete") and b.HasField("domain_discrete"):
        values = {_plain(v) for v in a.domain_discrete.values} | {_plain(v) for v in b.domain_discrete.values}
        merged.domain_discrete.extend(sorted(values))
    elif a.type == api_pb2.DATA_TYPE_FLOAT64:
        lows, highs = zip(*(_numeric_range(info) for info in (a, b)))
        merged.domain_interval.min_value = min(lows)
        merged.domain_interval.max_value = max(highs)
    return merged


def _plain(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    return getattr(value, kind)


def _numeric_range(info: api_pb2.HParamInfo) -> tuple[float, float]:
    if info.HasField("domain_interval"):
        return info.domain_interval.min_value, info.domain_interval.max_value
    numbers = [v.number_value for v in info.domain_discrete.values]
    return min(numbers), max(numbers)


def union_config(experiments: Iterable[tuple[Space, Sequence[Metric]]]) -> api_pb2.Experiment:
    """The union config: every hparam and metric of every experiment, in first-seen order."""
    infos: dict[str, api_pb2.HParamInfo] = {}
    metrics: dict[Metric, None] = {}
    for space, declared in experiments:
        for hparam in space:
            info = hparam_info(hparam.name, hparam.domain, hparam.description)
            infos[hparam.name] = merge_hparam_infos(infos[hparam.name], info) if hparam.name in infos else info
        metrics.update(dict.fromkeys(declared))
    return api_pb2.Experiment(
        hparam_infos=list(infos.values()),
        metric_infos=[
            api_pb2.MetricInfo(name=api_pb2.MetricName(group=m.group, tag=m.tag)) for m in metrics
        ],
        time_created_secs=time.time(),
    )


# What tensorboard.plugins.hparams.metadata and plugins.scalar.summary_v2 write, built here:
# importing them loads tensorboard's TensorFlow stub (~0.1 s of every study's and worker's
# start). tests/test_tb_summaries.py checks these records against theirs, byte for byte.
_NULL_TENSOR = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(
    dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=0)]))
_SCALAR_METADATA = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
    plugin_name="scalars", content=scalar_plugin_data_pb2.ScalarPluginData(version=0).SerializeToString()))


def _hparams_summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
    data.version = 0  # the plugin's PLUGIN_DATA_VERSION
    plugin_data = summary_pb2.SummaryMetadata.PluginData(plugin_name="hparams", content=data.SerializeToString())
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, metadata=summary_pb2.SummaryMetadata(plugin_data=plugin_data), tensor=_NULL_TENSOR)])


def config_summary(experiment: api_pb2.Experiment) -> summary_pb2.Summary:
    return _hparams_summary(EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


def session_group(experiment: str, trial: Trial) -> str:
    """TensorBoard's session group: one per hparams set within one experiment.

    Scoped to the experiment, so equal hparams in two experiments (other data, other
    epochs) stay apart in the whole-logdir view instead of being averaged together.
    """
    return f"{experiment}/{trial.group[:12]}"


def session_start_summary(trial: Trial, group: str, start_time: float | None = None) -> summary_pb2.Summary:
    info = plugin_data_pb2.SessionStartInfo(
        group_name=group,
        start_time_secs=time.time() if start_time is None else start_time,
    )
    for name, value in trial.hparams.items():
        info.hparams[name].CopyFrom(_value(value))
    return _hparams_summary(SESSION_START_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info))


def session_end_summary(status: TrialStatus, end_time: float | None = None) -> summary_pb2.Summary:
    # TensorBoard's Status has no PRUNED. A pruned trial ended as its search meant it to,
    # with real metrics from the epochs it trained, like one stopped early by --patience:
    # SUCCESS. FAILURE would say it broke (and our failures carry no metrics), UNKNOWN
    # that nobody knows, RUNNING that it hangs. trial.json, review and the leaderboard
    # say PRUNED; TensorBoard shows how far it got by the last step of its scalars.
    shown = TrialStatus.SUCCESS if status is TrialStatus.PRUNED else status
    info = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.Status.Value(f"STATUS_{shown.value}"),
        end_time_secs=time.time() if end_time is None else end_time,
    )
    return _hparams_summary(SESSION_END_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info))


def scalars_summary(values: Mapping[str, float]) -> summary_pb2.Summary:
    """One scalar per tag, as tf.summary.scalar writes it: a float32 tensor of shape ()."""
    return summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag=tag, metadata=_SCALAR_METADATA, tensor=tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(), float_val=[float(value)]))
        for tag, value in values.items()])


# ---- the one place that writes event files -------------------------------------------


