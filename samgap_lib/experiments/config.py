"""Run configurations: profile defaults, YAML files and overrides, validated before any compute.

A configuration is a nested dict::

    profile: smoke                 # smoke | paper
    seed: 0
    device: auto                   # auto | cpu | cuda | mps
    output: results                # results/<profile>/<name>/
    data: {n_images, size, data_root, split}
    models:
      sam2: {source, backend}      # source: hub id, folder, "orchard-tiny" or "tiny-random"
      sam3: {source, backend}
      sam3_tracker: {source, backend}
    clicks: {max_clicks, refine}
    concepts: {phrases, n_exemplars, threshold}

``phrases`` is ``"orchard"`` (the orchard phrase set, restricted to what the data labels) or a
list of category names.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from ..io import cache_root

__all__ = [
    "PROFILE_DEFAULTS",
    "load_config",
    "resolve_checkpoint",
    "checkpoint_fingerprint",
    "ConfigError",
]

EXPERIMENTS = ("sam2-baseline", "sam3-tracker", "sam3-concept", "hybrid", "compare")

_COMMON: dict[str, Any] = {
    "seed": 0,
    "output": "results",
    "clicks": {"max_clicks": 20, "refine": True},
    "concepts": {"phrases": "orchard", "n_exemplars": 1, "threshold": 0.5},
}
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": {
        **_COMMON,
        "profile": "smoke",
        "device": "cpu",
        "data": {"n_images": 12, "size": [256, 256], "data_root": None, "split": "test"},
        "models": {
            "sam2": {"source": "orchard-tiny", "backend": "transformers"},
            "sam3": {"source": "orchard-tiny", "backend": "transformers"},
            # the SAM3 tracker is not trained by the orchard-tiny recipe: random tiny weights
            "sam3_tracker": {"source": "tiny-random", "backend": "transformers"},
        },
    },
    "paper": {
        **_COMMON,
        "profile": "paper",
        "device": "auto",
        "data": {"n_images": 100, "size": [256, 256], "data_root": None, "split": "test"},
        "models": {
            "sam2": {"source": "facebook/sam2.1-hiera-large", "backend": "transformers"},
            "sam3": {"source": "facebook/sam3", "backend": "transformers"},
            "sam3_tracker": {"source": "facebook/sam3", "backend": "transformers"},
        },
    },
}


class ConfigError(ValueError):
    """A configuration that cannot run: unknown keys, wrong types, missing values."""


def _merge(base: dict, update: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, val in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise ConfigError(f"unknown configuration key {where!r}; allowed here: {sorted(base)}.")
        if isinstance(base[key], dict):
            if not isinstance(val, dict):
                raise ConfigError(
                    f"{where!r} must be a mapping with keys {sorted(base[key])}, got {val!r}."
                )
            out[key] = _merge(base[key], val, where + ".")
        else:
            expected = type(base[key])
            if (
                base[key] is not None
                and val is not None
                and not isinstance(val, expected)
                and not (expected is float and isinstance(val, int))
            ):
                raise ConfigError(
                    f"{where!r} must be {expected.__name__}, got {type(val).__name__} ({val!r})."
                )
            out[key] = val
    return out


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value.")
    key, raw = item.split("=", 1)
    return key.split("."), yaml.safe_load(raw)


def load_config(
    path: str | os.PathLike | None = None,
    profile: str | None = None,
    overrides: list[str] | dict | None = None,
) -> dict:
    """Profile defaults, updated by the YAML file at ``path`` and then by ``overrides``
    (``["clicks.max_clicks=5"]`` or a nested dict). The profile comes from ``profile``, else the
    file's ``profile``, else ``smoke``. Raises `ConfigError` naming any bad key or type."""
    file_cfg: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: configuration file not found.")
        file_cfg = yaml.safe_load(p.read_text()) or {}
        if not isinstance(file_cfg, dict):
            raise ConfigError(f"{p}: expected a YAML mapping at the top level.")
    prof = profile or file_cfg.get("profile") or "smoke"
    if prof not in PROFILE_DEFAULTS:
        raise ConfigError(f"profile must be one of {sorted(PROFILE_DEFAULTS)}, got {prof!r}.")
    cfg = _merge(PROFILE_DEFAULTS[prof], {**file_cfg, "profile": prof})
    if isinstance(overrides, dict):
        cfg = _merge(cfg, overrides)
    else:
        for item in overrides or []:
            keys, val = _parse_override(item)
            nested: dict = {}
            cur = nested
            for k in keys[:-1]:
                cur = cur.setdefault(k, {})
            cur[keys[-1]] = val
            cfg = _merge(cfg, nested)
    if cfg["profile"] == "paper" and not cfg["data"]["data_root"]:
        raise ConfigError(
            "profile 'paper' needs data.data_root: the MinneApple folder (see data/README.md)."
        )
    if cfg["clicks"]["max_clicks"] < 1:
        raise ConfigError("clicks.max_clicks must be >= 1.")
    return cfg


def resolve_checkpoint(source: str, which: str) -> str:
    """Turn the special sources into folders: ``orchard-tiny`` (trained from scratch on the
    synthetic orchard, cached; see `samgap_lib.training.recipes`) and ``tiny-random`` (random
    tiny checkpoints); anything else (hub id, folder, file) is returned unchanged."""
    folders = {"sam2": "hf-sam2", "sam3": "hf-sam3", "sam3_tracker": "hf-sam3-tracker"}
    if which not in folders:
        raise ValueError(f"which must be one of {sorted(folders)}, got {which!r}.")
    if source == "orchard-tiny":
        from ..training.recipes import ensure_orchard_tiny

        trained = ensure_orchard_tiny()
        if which not in trained:
            raise ConfigError(
                f"the orchard-tiny recipe trains no {which} model; use source 'tiny-random' or a checkpoint."
            )
        return str(trained[which])
    if source == "tiny-random":
        from ..models.tiny import write_tiny_checkpoints

        root = cache_root() / "tiny-random"
        if not (root / folders[which] / "config.json").exists():
            write_tiny_checkpoints(root, seed=0)
        return str(root / folders[which])
    return source


def checkpoint_fingerprint(source: str) -> dict[str, Any]:
    """Source and, for a local folder or file, a SHA-256 over its weight and config files."""
    p = Path(source)
    if not p.exists():
        return {"source": source, "sha256": None}
    files = (
        [p]
        if p.is_file()
        else sorted(
            f
            for f in p.rglob("*")
            if f.is_file() and f.suffix in (".safetensors", ".bin", ".pt", ".json")
        )
    )
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return {"source": source, "sha256": h.hexdigest()}
