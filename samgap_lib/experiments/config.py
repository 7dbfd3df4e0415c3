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

import hashlib
import os
from pathlib import Path
from typing import Any

from ..config import ConfigError, Schema, check, merge, packaged_yaml, parse_overrides, read_yaml
from ..io import cache_root

__all__ = [
    "EXPERIMENTS",
    "PROFILE_DEFAULTS",
    "load_config",
    "resolve_checkpoint",
    "checkpoint_fingerprint",
    "ConfigError",
]

EXPERIMENTS = ("sam2-baseline", "sam3-tracker", "sam3-concept", "hybrid", "compare")

# the profiles' configurations (samgap_lib/configs/experiments.yml)
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    k: v for k, v in packaged_yaml("experiments.yml").items() if k in ("smoke", "paper")
}
_MODEL_KEYS = ("sam2", "sam3", "sam3_tracker")


def _schema(defaults: dict[str, Any]) -> Schema:
    return Schema(
        defaults,
        nullable={"data.data_root": (str,)},
        union={"concepts.phrases": (str, list)},
        choices={
            "profile": tuple(PROFILE_DEFAULTS),
            **{f"models.{k}.backend": ("transformers", "meta") for k in _MODEL_KEYS},
        },
        positive=("data.n_images", "clicks.max_clicks"),
    )


def load_config(
    path: str | os.PathLike | None = None,
    profile: str | None = None,
    overrides: list[str] | dict | None = None,
) -> dict:
    """Profile defaults, updated by the YAML file at ``path`` and then by ``overrides``
    (``["clicks.max_clicks=5"]`` or a nested dict). The profile comes from ``profile``, else the
    file's ``profile``, else ``smoke``. Raises `ConfigError` naming any bad key or type."""
    file_cfg = read_yaml(path) if path is not None else {}
    prof = profile or file_cfg.get("profile") or "smoke"
    if prof not in PROFILE_DEFAULTS:
        raise ConfigError(f"profile must be one of {sorted(PROFILE_DEFAULTS)}, got {prof!r}.")
    where = str(path) if path is not None else "configuration"
    schema = _schema(PROFILE_DEFAULTS[prof])
    cfg = check(merge(PROFILE_DEFAULTS[prof], {**file_cfg, "profile": prof}), schema, where)
    if overrides:
        over = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
        cfg = check(merge(cfg, over), schema, "override")
    if cfg["profile"] == "paper" and not cfg["data"]["data_root"]:
        raise ConfigError(
            "profile 'paper' needs data.data_root: the MinneApple folder (see data/README.md)."
        )
    return cfg


def resolve_checkpoint(source: str, which: str) -> str:
    """Turn the special sources into folders: ``orchard-tiny`` (trained from scratch on the
    synthetic orchard, cached; see `samgap_lib.training.recipes`) and ``tiny-random`` (random
    tiny checkpoints); anything else (hub id, folder, file) is returned unchanged."""
    folders = {"sam2": "hf-sam2", "sam3": "hf-sam3", "sam3_tracker": "hf-sam3-tracker"}
    if which not in folders:
        raise ValueError(f"which must be one of {sorted(folders)}, got {which!r}.")
    if source == "orchard-tiny":
        from ..training import ensure_orchard_tiny

        trained = ensure_orchard_tiny()
        if which not in trained:
            raise ConfigError(
                f"the orchard-tiny recipe trains no {which} model; use source 'tiny-random' or a checkpoint."
            )
        return str(trained[which])
    if source == "tiny-random":
        from ..models.testing import write_tiny_checkpoints

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
