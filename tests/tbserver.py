"""A real TensorBoard over a logdir, asked through its HParams HTTP API.

Tests import this module; it is not a test file. Usage::

    with TensorBoardServer(logdir) as tb:
        experiment, groups = tb.wait_for_sessions(n_groups=3)
        assert hparam_names(experiment) == {"units", "optimizer"}

The server is `python -m tensorboard.main` in a subprocess on 127.0.0.1 and a
free port, in its own process group so that `__exit__` can stop it together
with its data-server child (`--load_fast`), whatever happened in the test.
Only stdlib HTTP (urllib), loopback only.

Request bodies are the JSON form of the protos in
`tensorboard/plugins/hparams/api.proto` (camelCase field names, enum names as
strings); responses come back the same way, with default values included.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

ALL_STATUSES = ("STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING")

# GetExperimentRequest: the experiment of the default (empty) experiment id,
# metrics included (the default when includeMetrics is unset, made explicit).
EXPERIMENT_REQUEST = {"experimentName": "", "includeMetrics": True}

# ListSessionGroupsRequest: every status and every group. Without
# allowedStatuses no session passes the status filter, and sliceSize defaults
# to 0, which returns no group at all. 1e6 is what TensorBoard's own frontend
# sends ("arbitrary large number so it does not get clipped").
SESSION_GROUPS_REQUEST = {
    "experimentName": "",
    "allowedStatuses": list(ALL_STATUSES),
    "colParams": [],
    "startIndex": 0,
    "sliceSize": 1_000_000,
    "includeMetrics": True,
}

_POLL_INTERVAL = 0.2
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3


class TensorBoardServer:
    """Context manager: a TensorBoard subprocess serving `logdir`."""

    def __init__(self, logdir, *, load_fast="auto", timeout=60.0):
        if load_fast not in ("auto", "true", "false"):
            raise ValueError(f"load_fast={load_fast!r}: allowed are 'auto', 'true', 'false'")
        self.logdir = Path(logdir)
        self.load_fast = load_fast
        self.timeout = timeout
        self.port: int | None = None
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "TensorBoardServer":
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _command(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "tensorboard.main",
            "--logdir", str(self.logdir),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--load_fast", self.load_fast,
            # Poll the logdir every second (the data server takes whole
            # seconds) instead of every 5 s, so data written after start
            # shows up quickly.
            "--reload_interval", "1",
        ]

    def _start(self) -> None:
        began = time.monotonic()
        self._log = tempfile.TemporaryFile(mode="w+b", prefix="tensorboard-")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        for _attempt in range(_PORT_ATTEMPTS):
            self.port = _free_port()
            self._proc = subprocess.Popen(
                self._command(self.port),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: TB + data server
            )
            if self._wait_until_serving(began):
                self.start_seconds = time.monotonic() - began
                return
            # Exited before serving: another process took the port between
            # _free_port() and TensorBoard's bind? Then retry; else give up.
            if "already in use" not in self.output():
                break
        raise RuntimeError(
            f"TensorBoard did not start (exit code {self._proc.returncode}):\n{self.output()}"
        )

    def _wait_until_serving(self, began: float) -> bool:
        deadline = began + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/data/environment", timeout=5) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(_POLL_INTERVAL)
        raise TimeoutError(
            f"TensorBoard did not answer on {self.url} within {self.timeout} s:\n{self.output()}"
        )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_group(proc)
        if self._log is not None:
            self._last_output = self._read_log()
            self._log.close()
            self._log = None

    def output(self) -> str:
        """TensorBoard's stdout+stderr so far (for failure messages)."""
        if self._log is None:
            return getattr(self, "_last_output", "")
        return self._read_log()

    def _read_log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0, os.SEEK_END)
        return text

    # -- HParams API -------------------------------------------------------
    def post(self, route: str, body: dict) -> dict:
        """POST `body` as JSON to /data/plugin/hparams/<route>, parsed reply."""
        if self._proc is None:
            raise RuntimeError("TensorBoardServer is not running (use it as a context manager)")
        request = urllib.request.Request(
            f"{self.url}/data/plugin/hparams/{route}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            raise AssertionError(f"POST {route} -> HTTP {e.code}: {detail}") from e

    def experiment(self) -> dict:
        return self.post("experiment", EXPERIMENT_REQUEST)

    def session_groups(self) -> dict:
        return self.post("session_groups", SESSION_GROUPS_REQUEST)

    def runs(self) -> list[str]:
        """GET /data/runs: the run names TensorBoard has discovered so far."""
        with urllib.request.urlopen(f"{self.url}/data/runs", timeout=30) as response:
            return json.loads(response.read())

    def wait_for_sessions(
        self,
        n_groups: int,
        *,
        metrics: Callable[[str], set[tuple[str, str]]] | None = None,
        timeout: float | None = None,
    ) -> tuple[dict, dict]:
        """Poll until the data has loaded; return (experiment, session_groups).

        Loaded means: the experiment has hparam infos and metric infos, there
        are exactly `n_groups` session groups, and every session has a value
        for each metric it must have: `metrics(session_name)`, by default
        every metric the experiment declares. TensorBoard loads logs
        asynchronously, so the first answers may be empty or partial. On
        timeout, raises AssertionError showing the last responses.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            experiment, groups = self.experiment(), self.session_groups()
            required = metrics or (lambda _name, wanted=metric_names(experiment): wanted)
            if _loaded(experiment, groups, n_groups, required):
                return experiment, groups
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"TensorBoard data did not load into {n_groups} complete session groups "
                    f"(logdir {self.logdir}).\n"
                    f"last experiment: {json.dumps(experiment, indent=1)}\n"
                    f"last session_groups: {json.dumps(groups, indent=1)}"
                )
            time.sleep(_POLL_INTERVAL)


def _loaded(experiment: dict, groups: dict, n_groups: int, required) -> bool:
    if not experiment.get("hparamInfos") or not experiment.get("metricInfos"):
        return False
    session_groups = groups.get("sessionGroups", [])
    if len(session_groups) != n_groups:
        return False
    return all(
        required(session["name"]) <= set(session_metric_values(session))
        for group in session_groups
        for session in group["sessions"]
    )


# -- process handling ------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM TensorBoard's process group (TensorBoard exits cleanly and
    removes its info file), then SIGKILL whatever of the group is left."""
    pgid = proc.pid  # start_new_session=True: the group id is TB's pid
    _signal_group(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(pgid, signal.SIGKILL)  # the data server, or a stuck TB
    proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


# -- reading the responses -------------------------------------------------
def hparam_names(experiment: dict) -> set[str]:
    return {info["name"] for info in experiment.get("hparamInfos", [])}


def metric_names(experiment: dict) -> set[tuple[str, str]]:
    """(group, tag) of every metric: group is the sub-run ('' = session run)."""
    return {_metric_key(info["name"]) for info in experiment.get("metricInfos", [])}


def groups_by_name(session_groups: dict) -> dict[str, dict]:
    return {group["name"]: group for group in session_groups.get("sessionGroups", [])}


def group_hparams(group: dict) -> dict[str, object]:
    """hparam name -> value of a session group. The map holds
    google.protobuf.Value, whose JSON form is the bare number, string or bool;
    integers come back as floats (16 -> 16.0)."""
    return dict(group["hparams"])


def group_metric_values(group: dict) -> dict[tuple[str, str], float]:
    """(group, tag) -> value aggregated over the group's sessions (average)."""
    return {_metric_key(m["name"]): m["value"] for m in group.get("metricValues", [])}


def session_metric_values(session: dict) -> dict[tuple[str, str], float]:
    return {_metric_key(m["name"]): m["value"] for m in session.get("metricValues", [])}


def session_statuses(session_groups: dict) -> dict[str, str]:
    """session name (run path) -> status name, over all groups."""
    return {
        session["name"]: session["status"]
        for group in session_groups.get("sessionGroups", [])
        for session in group["sessions"]
    }


def _metric_key(name: dict) -> tuple[str, str]:
    return (name.get("group", ""), name["tag"])

