"""Training state on disk: atomic resume files and Hugging Face model folders.

A resume file (``<out_dir>/checkpoints/last.pt``) holds the model, optimizer, scheduler and
scaler states, the RNG states (python, numpy, torch CPU and CUDA), the step reached (the data
position: the sampler is a function of the step), the best validation value, and the config
with its fingerprint. It is written to a temporary file and renamed, so a run killed at any
moment leaves the previous complete file.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samgap_lib.io import atomic_write

from .config import config_hash

__all__ = [
    "RESUME_IGNORE",
    "ResumeError",
    "fingerprint",
    "rng_state",
    "set_rng_state",
    "save_state",
    "load_state",
    "check_resume",
    "save_hf_folder",
]

# Config keys that may change between a run and its resumption without changing the result.
RESUME_IGNORE = (
    "train.out_dir",
    "train.progress",
    "train.num_threads",
    "train.steps",
    "train.checkpoint_every",
    "train.log_every",
    "train.eval_every",
    "train.device",
)
FORMAT = "samgap-train-state/1"


class ResumeError(ValueError):
    """A resume file that does not belong to this model or config."""


def fingerprint(cfg: Mapping[str, Any], model: torch.nn.Module | None = None) -> dict[str, Any]:
    """What must match for a resume: model kind, config hash, parameter names and shapes."""
    fp: dict[str, Any] = {"model": cfg["model"], "config": config_hash(cfg, RESUME_IGNORE)}
    if model is not None:
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
        fp["params"] = config_hash(shapes)
    return fp


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU, CUDA) RNG states."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 - the global state is what we restore
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """``torch.save`` a resume state atomically."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    data = buf.getvalue()
    return atomic_write(path, lambda f: f.write(data))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a resume file, with clear errors for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise ResumeError(f"{path}: no such resume file.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not ours"
        raise ResumeError(f"{path}: not a readable samgap training state ({e}).") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ResumeError(f"{path}: not a samgap training state (expected format {FORMAT}).")
    return state


def _diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        if key in RESUME_IGNORE:
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += _diff(va, vb, key + ".")
        elif va != vb:
            out.append(f"{key}: {va!r} -> {vb!r}")
    return out


def check_resume(state: Mapping[str, Any], cfg: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Refuse a resume file written by another model or config (before any compute)."""
    fp = state.get("fingerprint", {})
    if fp.get("model") != cfg["model"]:
        raise ResumeError(
            f"{path}: this resume file comes from a {fp.get('model')!r} run, not {cfg['model']!r}. "
            "Point --resume at a checkpoint of the same model, or start a new out_dir."
        )
    if fp.get("config") != fingerprint(cfg)["config"]:
        changes = _diff(state.get("config", {}), cfg)
        raise ResumeError(
            f"{path}: the config differs from the run that wrote this resume file "
            f"({'; '.join(changes[:6]) or 'unknown change'}). Resuming would not reproduce that "
            "run; restore the original config or start a new out_dir."
        )


def _replace_dir(tmp: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save_hf_folder(
    target: str | os.PathLike,
    model: Any,
    processor: Any,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """``save_pretrained`` model and processor into a temporary folder, then rename it over
    ``target``: a reader never sees a half-written checkpoint folder."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
