"""Training logs: a JSONL file, TensorBoard scalars and a tqdm bar (rank 0 only)."""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

import torch

from samgap_lib.io import atomic_write

__all__ = ["RunLogger", "peak_memory_mb", "progress_enabled", "read_jsonl"]


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated (cuda) or peak resident set size of the process (cpu)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def progress_enabled(setting: Any) -> bool:
    """tqdm on for ``True``; for ``"auto"`` only on a terminal and without ``TQDM_DISABLE``."""
    if setting is True or setting is False:
        return setting
    if os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false"):
        return False
    return sys.stderr.isatty()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a JSONL log (a truncated last line, from a kill, is skipped)."""
    out = []
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


class RunLogger:
    """Writes records to ``<out_dir>/log.jsonl`` and TensorBoard under ``<out_dir>/tb``.

    Parameters
    ----------
    out_dir
        Run folder.
    resume_step
        When resuming from a state saved after step ``k``, records of later steps (written by
        the interrupted run) are dropped from the JSONL file and TensorBoard purges them.
    enabled
        False on ranks other than 0: nothing is written.
    tensorboard
        Also write TensorBoard event files.
    """

    def __init__(
        self, out_dir: Path, resume_step: int = 0, enabled: bool = True, tensorboard: bool = True
    ):
        self.enabled = enabled
        self.path = Path(out_dir) / "log.jsonl"
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = (
            [r for r in read_jsonl(self.path) if r.get("step", 0) <= resume_step]
            if resume_step
            else []
        )
        data = "".join(json.dumps(r) + "\n" for r in kept).encode()
        atomic_write(self.path, lambda f: f.write(data))
        self._f = open(self.path, "a")  # noqa: SIM115 - closed in close()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(
                    str(Path(out_dir) / "tb"), purge_step=resume_step + 1 if resume_step else None
                )
            except ImportError:  # pragma: no cover - tensorboard is in the lock file
                print(
                    "samgap train: tensorboard is not installed, so the run is logged to "
                    f"{self.path} only; pip install 'samgap[train]' adds it.",
                    file=sys.stderr,
                )

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (must hold ``step``); numbers also go to TensorBoard."""
        if not self.enabled:
            return
        record = {k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()}
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()
        if self._tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, int | float) and not isinstance(v, bool):
                    self._tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        if not self.enabled:
            return
        self._f.close()
        if self._tb is not None:
            self._tb.close()
