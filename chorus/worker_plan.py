"""The worker plan: which synthesis workers a host runs, from the model
registry and the GPUs and cores it has. ``chorus up`` and ``chorus workers``
start what it lists; each entry is the `chorus worker` command of one process.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from chorus.configs import Registry


@dataclass
class WorkerSpec:
    """Workers of one model: ``count`` CPU workers, or one worker pinned to ``gpu``."""

    model: str
    count: int = 1
    threads: int = 0  # onnxruntime threads per worker; 0 lets it decide
    gpu: int | None = None
    inflight: int = 1  # segments at once in each worker, one model shared (`chorus worker --inflight`)

    def commands(self) -> list[tuple[str, list[str]]]:
        """(name, argv) of each `chorus worker` process this spec stands for."""
        base = [sys.executable, "-m", "chorus.cli", "worker", "--model", self.model]
        if self.threads:
            base += ["--threads", str(self.threads)]
        if self.inflight > 1:
            base += ["--inflight", str(self.inflight)]
        if self.gpu is not None:
            name = f"{self.model}-gpu{self.gpu}"
            return [(name, [*base, "--gpu", str(self.gpu), "--name", name])]
        names = [f"{self.model}-{number}" for number in range(1, self.count + 1)]
        return [(name, [*base, "--name", name]) for name in names]


def detect_gpus() -> list[int]:
    """GPU indexes from ``nvidia-smi -L``; none where it is missing or fails."""
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [int(line.split(":")[0].split()[1]) for line in listing.splitlines() if line.startswith("GPU ")]


def plan_workers(registry: Registry, gpus: list[int], cores: int, cpu_workers: int = 0) -> list[WorkerSpec]:
    """One worker per GPU for each CUDA model; on the CPU, ``cpu_workers`` (default:
    one per core) workers per CPU model, the cores divided among them."""
    plan: list[WorkerSpec] = []
    count = cpu_workers or cores
    for model in registry.models.values():
        if model.device == "cuda":
            plan += [WorkerSpec(model.name, gpu=gpu) for gpu in gpus]
        else:
            plan.append(WorkerSpec(model.name, count=count, threads=max(1, cores // count)))
    return plan
