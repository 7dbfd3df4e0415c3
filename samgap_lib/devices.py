"""Devices: which torch device a setting means, and bf16 autocast where it helps.

`resolve_device` turns ``"auto"`` into cuda, mps or cpu and refuses an accelerator that is not
there; `autocast_dtype` / `autocast` give bfloat16 autocast on CUDA devices that support it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["autocast", "autocast_dtype", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``device``; ``"auto"`` picks cuda, then mps, then cpu.

    Raises
    ------
    RuntimeError
        When an explicitly requested accelerator is not available.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device!r} requested but CUDA is not available here; use device='auto' or 'cpu'."
        )
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise RuntimeError(
            f"device {device!r} requested but MPS is not available; use 'auto' or 'cpu'."
        )
    return dev


def autocast_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """bfloat16 on CUDA devices that support it, else None (full precision)."""
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
