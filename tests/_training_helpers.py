"""Tiny training configs shared by the training tests (fast on one CPU thread)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "sam2": {
        "model": "sam2",
        "init": {"arch": "orchard-s"},
        "data": {"n_train": 12, "n_val": 2, "image_size": 64, "max_objects": 2},
        "prompts": {"p_correction": 0.5, "max_corrections": 1},
        "optim": {"warmup_steps": 2},
        "train": {
            "steps": 4,
            "batch_images": 2,
            "log_every": 1,
            "eval_every": 0,
            "checkpoint_every": 2,
            "num_threads": 1,
            "progress": False,
        },
        "eval": {"clicks": 2, "max_images": 2},
    },
    "sam2_video": {
        "model": "sam2",
        "init": {"arch": "orchard-m"},
        "data": {"n_train": 6, "n_val": 2, "image_size": 64, "max_objects": 2},
        "prompts": {"p_correction": 0.5, "max_corrections": 1},
        "optim": {"warmup_steps": 2},
        "video": {"frames": 3, "min_area": 4, "p_correct_frame": 0.5, "memory_layers": 1},
        "train": {
            "steps": 4,
            "batch_images": 1,
            "log_every": 1,
            "eval_every": 0,
            "checkpoint_every": 2,
            "num_threads": 1,
            "progress": False,
        },
        "eval": {"clicks": 2, "max_images": 2},
    },
    "sam3": {
        "model": "sam3",
        "init": {"arch": "orchard-xs"},
        "data": {"n_train": 8, "n_val": 2, "image_size": 112, "phrases_per_image": 3},
        "loss": {"match_mask": 1.0, "semantic": 1.0, "max_matched_queries": 2},
        "optim": {"warmup_steps": 2},
        "train": {
            "steps": 3,
            "batch_images": 2,
            "log_every": 1,
            "eval_every": 0,
            "checkpoint_every": 2,
            "num_threads": 1,
            "progress": False,
        },
        "eval": {"phrases": ["ripe apple", "apple", "pear"], "max_images": 2},
    },
}


def tiny_config(model: str, out_dir: Path | str, **sections: dict[str, Any]) -> dict[str, Any]:
    """A tiny config dict for ``model`` writing into ``out_dir``; ``sections`` merge in."""
    from samgap_lib.training.config import merge

    cfg = merge(TINY[model], {"train": {"out_dir": str(out_dir)}})
    for key, value in sections.items():
        cfg = merge(cfg, {key: value})
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {"OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    )
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def samgap(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m samgap_lib.cli ARGS`` in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "samgap_lib.cli", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=REPO,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"samgap {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return proc
