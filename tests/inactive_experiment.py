"""How may a session leave out a conditional hparam? Run by hand, not by pytest:

    TF_CPP_MIN_LOG_LEVEL=2 python -m tests.inactive_experiment

For each way to write an inactive hparam (absent from session_start, a null Value, NaN,
an empty string) starts a real TensorBoard on four sessions, two of which have it
inactive, and asks its HParams API for the session groups with no filter, an interval
filter on the numeric column, a discrete filter on another column and on the string
column, and a sort by each. Measured 2026-12-02 (TensorBoard 2.21, both loaders alike):
  absent        every query answers, inactive sessions pass every filter, sort last
  null          interval filter and sort: HTTP 500
  NaN           TensorBoard leaves the value out (as absent), but a writer cannot rely on it
  empty string  a discrete filter of the real values drops the inactive sessions
hparams_lab writes inactive hparams as absent.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.plugins.scalar.summary_v2 import scalar_pb

from tests.tblogs import session_end_summary, write_config, write_events
from tests.tbserver import SESSION_GROUPS_REQUEST, TensorBoardServer

ABSENT = object()
CANDIDATES = {"absent": ABSENT, "null": None, "nan": math.nan, "empty string": ""}
QUERIES = {
    "no filter": [],
    "momentum in 0.4..1.0": [{"hparam": "momentum", "filterInterval": {"minValue": 0.4, "maxValue": 1.0}}],
    "optimizer in [adam]": [{"hparam": "optimizer", "filterDiscrete": ["adam"]}],
    "kind in [nesterov, plain]": [{"hparam": "kind", "filterDiscrete": ["nesterov", "plain"]}],
    "sort by momentum": [{"hparam": "momentum", "order": "ORDER_ASC"}],
    "sort by kind": [{"hparam": "kind", "order": "ORDER_DESC"}],
}


def session_start(hparams: dict, group: str) -> summary_pb2.Summary:
    info = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=1)
    for name, value in hparams.items():
        if value is ABSENT:
            continue
        if value is None:
            info.hparams[name].null_value = 0
        elif isinstance(value, str):
            info.hparams[name].string_value = value
        else:
            info.hparams[name].number_value = value
    content = plugin_data_pb2.HParamsPluginData(session_start_info=info, version=0).SerializeToString()
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.SESSION_START_INFO_TAG, metadata=summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="hparams", content=content)))
    return summary


def write_logs(logs: Path, inactive) -> None:
    string_inactive = inactive if isinstance(inactive, str) else ABSENT
    number_inactive = ABSENT if isinstance(inactive, str) else inactive
    sessions = [("s1", {"optimizer": "sgd", "momentum": 0.9, "kind": "nesterov"}),
                ("s2", {"optimizer": "sgd", "momentum": 0.5, "kind": "plain"}),
                ("a1", {"optimizer": "adam", "momentum": number_inactive, "kind": string_inactive}),
                ("a2", {"optimizer": "adam", "momentum": number_inactive, "kind": string_inactive})]
    for name, hparams in sessions:
        write_events(logs / "exp" / name, [(0, session_start(hparams, name)), (0, scalar_pb("acc", 0.5)),
                                           (0, session_end_summary("STATUS_SUCCESS"))])
    write_config(logs / ".config", [hp.HParam("optimizer", hp.Discrete(["adam", "sgd"])),
                                    hp.HParam("momentum", hp.RealInterval(0.5, 0.99)),
                                    hp.HParam("kind", hp.Discrete(["nesterov", "plain"]))], [hp.Metric("acc")])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for label, inactive in CANDIDATES.items():
            for load_fast in ("auto", "false"):
                logs = Path(tmp) / f"{label}-{load_fast}".replace(" ", "_")
                write_logs(logs, inactive)
                with TensorBoardServer(logs, load_fast=load_fast) as tb:
                    tb.wait_for_sessions(4)
                    print(f"== inactive as {label} (load_fast={load_fast})")
                    for query, cols in QUERIES.items():
                        try:
                            found = tb.post("session_groups", {**SESSION_GROUPS_REQUEST, "colParams": cols})
                            names = sorted(g["sessions"][0]["name"].split("/")[-1] for g in found["sessionGroups"])
                            print(f"   {query:28} sessions {names}")
                        except AssertionError as err:
                            print(f"   {query:28} {str(err).splitlines()[0]}")


if __name__ == "__main__":
    main()
