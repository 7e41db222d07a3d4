"""Which device each worker trains on: one trial per GPU, or K small ones sharing it.

TF-free: the GPUs are found with ``nvidia-smi`` (honouring ``CUDA_VISIBLE_DEVICES``), and
each worker is given its GPU through ``CUDA_VISIBLE_DEVICES`` before it imports
TensorFlow, plus a memory cap of about 1/K of the device when K trials share it
(``training.devices`` applies the cap once TensorFlow is loaded). Without GPUs, or with
``--gpus none``, nothing changes: trials train on the CPU as before.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass

from hparams_lab.core.errors import UserError
from hparams_lab.training.devices import MEMORY_ENV, MIXED_ENV  # noqa: F401 (MIXED_ENV: for the study)

_SHARE = 0.9  # of a device's memory shared out between its K trials: the rest is CUDA's own


@dataclass(frozen=True)
class Gpu:
    index: int  # as nvidia-smi (and CUDA_VISIBLE_DEVICES) number it
    name: str
    memory_mb: int


@dataclass(frozen=True)
class Slot:
    """One worker's device: a GPU (capped at ``memory_mb`` when shared) or the CPU."""

    gpu: int | None = None
    memory_mb: int | None = None

    @property
    def label(self) -> str:
        return "CPU" if self.gpu is None else f"GPU {self.gpu}"

    def env(self) -> dict[str, str]:
        """What the worker's environment must hold before TensorFlow starts."""
        if self.gpu is None:
            return {"CUDA_VISIBLE_DEVICES": "-1"}  # a CPU worker never touches a GPU
        env = {"CUDA_VISIBLE_DEVICES": str(self.gpu)}
        if self.memory_mb is not None:
            env[MEMORY_ENV] = str(self.memory_mb)
        return env


def visible_gpus() -> list[Gpu]:
    """The GPUs this process may use: nvidia-smi's, filtered by CUDA_VISIBLE_DEVICES; [] without."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
            gpus.append(Gpu(int(parts[0]), parts[1], int(parts[2])))
    allowed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if allowed is not None:
        wanted = [int(i) for i in allowed.split(",") if i.strip().isdigit()]
        gpus = [g for i in wanted for g in gpus if g.index == i]
    return gpus


def choose_gpus(spec: str | None, available: list[Gpu]) -> list[Gpu]:
    """--gpus: all (the default), none, or indices such as 0,1,3."""
    if spec is None or spec.strip().lower() == "all":
        return list(available)
    if spec.strip().lower() == "none":
        return []
    by_index = {g.index: g for g in available}
    chosen = []
    for part in spec.split(","):
        part = part.strip()
        if not part.isdigit():
            raise UserError(f"--gpus {spec!r}: write all, none or GPU indices such as 0,1,3")
        if int(part) not in by_index:
            have = ", ".join(str(i) for i in by_index) or "none"
            raise UserError(f"--gpus {spec!r}: there is no GPU {part} here (GPUs: {have})")
        chosen.append(by_index[int(part)])
    return list(dict.fromkeys(chosen))


def plan_slots(gpus: list[Gpu], per_gpu: int, workers: int | None = None) -> list[Slot]:
    """Each worker's device. With GPUs: ``per_gpu`` workers on each (``workers``, when given
    beyond 1, spread over the GPUs instead), each capped at about 1/K of its device when
    K > 1. Without: ``workers`` CPU workers."""
    if per_gpu < 1:
        raise UserError(f"--per-gpu must be a whole number >= 1, got {per_gpu!r}")
    if not gpus:
        return [Slot()] * (workers or 1)
    if workers and workers > 1:
        per_gpu = max(per_gpu, math.ceil(workers / len(gpus)))
    count = workers if workers and workers > 1 else len(gpus) * per_gpu
    slots = [Slot(g.index, int(g.memory_mb * _SHARE / per_gpu) if per_gpu > 1 else None)
             for _ in range(per_gpu) for g in gpus]
    return slots[:count]


OOM_MARKERS = ("ResourceExhaustedError", "OOM when allocating", "out of memory", "CUDA_ERROR_OUT_OF_MEMORY")
WHOLE_DEVICE = "out of GPU memory with the whole device"


def is_out_of_memory(error: str | None) -> bool:
    return bool(error) and any(marker in error for marker in OOM_MARKERS)
