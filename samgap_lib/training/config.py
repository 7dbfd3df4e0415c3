"""Training configs: the packaged YAML defaults, user overrides, and strict validation.

A user config is a partial YAML file merged over the packaged default of its model
(``samgap_lib/configs/train_sam2.yml`` or ``train_sam3.yml``). Unknown keys, wrong types and
impossible values raise `ConfigError` naming the key, before any data or model is touched.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import ConfigError, Schema, check, merge, packaged_yaml, read_yaml

__all__ = [
    "ConfigError",
    "MODELS",
    "default_config",
    "load_config",
    "merge",
    "config_hash",
    "init_configs",
    "validate",
]

MODELS = ("sam2", "sam3")

# Keys whose default is null, and the types they may hold otherwise.
_NULLABLE: dict[str, tuple[type, ...]] = {
    "init.checkpoint": (str,),
    "init.num_queries": (int,),
    "data.root": (str,),
    "data.render_size": (int,),
    "train.num_threads": (int,),
    "loss.max_matched_queries": (int,),
    "loss.mask_loss_size": (int,),
    "prompts.dense_first_radius": (float, int),
    "eval.nms_iou": (float, int),
}
_CHOICES: dict[str, tuple[Any, ...]] = {
    "model": MODELS,
    "init.backend": ("transformers", "meta"),
    "data.source": ("synthetic", "minneapple"),
    "train.precision": ("auto", "bf16", "fp32"),
    "train.progress": ("auto", True, False),
    "loss.class_loss": ("iabce", "focal"),
}
_UNION: dict[str, tuple[type, ...]] = {"train.progress": (str, bool)}
_POSITIVE = (
    "train.steps",
    "train.batch_images",
    "train.grad_accum",
    "data.n_train",
    "data.image_size",
    "optim.lr",
)


def _config_path(model: str) -> Any:
    return resources.files("samgap_lib") / "configs" / f"train_{model}.yml"


def default_config(model: str) -> dict[str, Any]:
    """The packaged default config of ``model`` (``"sam2"`` or ``"sam3"``) as a dict."""
    if model not in MODELS:
        raise ConfigError(f"model must be one of {MODELS}, got {model!r}.")
    return packaged_yaml(f"train_{model}.yml")


def _check_video(v: Mapping[str, Any], source: str, where: str) -> None:
    """The ``video`` section of a SAM2 config (``frames: 0`` = image training)."""
    if v["frames"] == 1 or v["frames"] < 0:
        raise ConfigError(
            f"{where}: video.frames must be 0 (train on images) or at least 2 (clips), "
            f"got {v['frames']}."
        )
    if not v["frames"]:
        return
    pan = v["pan"]
    if len(pan) != 2 or not 0 <= pan[0] <= pan[1]:
        raise ConfigError(
            f"{where}: video.pan must be [low, high] px per frame with 0 <= low <= high, got {pan}."
        )
    if not 0 <= v["p_correct_frame"] <= 1:
        raise ConfigError(
            f"{where}: video.p_correct_frame must be in [0, 1], got {v['p_correct_frame']}."
        )
    for key in ("num_maskmem", "memory_layers", "max_object_pointers"):
        if v[key] < 1:
            raise ConfigError(f"{where}: video.{key} must be >= 1, got {v[key]}.")
    if source != "synthetic":
        raise ConfigError(
            f"{where}: video training reads synthetic orchard clips (data.source: synthetic); "
            f"{source} has no videos."
        )


def validate(cfg: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """Check a full config against the packaged schema of its model; return it as a dict."""
    model = cfg.get("model")
    if model not in MODELS:
        raise ConfigError(f"{where}: 'model' must be one of {MODELS}, got {model!r}.")
    schema = Schema(
        default_config(model),
        nullable=_NULLABLE,
        choices={k: v for k, v in _CHOICES.items() if k != "model"},
        union=_UNION,
        positive=_POSITIVE,
    )
    check(cfg, schema, where)
    if cfg["init"]["backend"] == "meta":
        raise ConfigError(
            f"{where}: init.backend 'meta' is not supported for training; samgap trains the "
            "transformers models (Sam2Model / Sam3Model). Use backend: transformers, or Meta's "
            "own training code (sam2/training, sam3 README_TRAIN.md) for Meta checkpoints."
        )
    if cfg["data"]["source"] == "minneapple" and not cfg["data"]["root"]:
        raise ConfigError(
            f"{where}: data.source 'minneapple' needs data.root (see data/README.md)."
        )
    if model == "sam2":
        w = cfg["prompts"]["weights"]
        if any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
            raise ConfigError(f"{where}: prompts.weights must be >= 0 and not all 0, got {w}.")
        r = cfg["prompts"]["dense_first_radius"]
        if r is not None and r <= 0:
            raise ConfigError(f"{where}: prompts.dense_first_radius must be > 0 or null, got {r}.")
        a = cfg["loss"]["all_candidates"]
        if a < 0:
            raise ConfigError(f"{where}: loss.all_candidates must be >= 0 (0 = off), got {a}.")
        _check_video(cfg["video"], cfg["data"]["source"], where)
    r = cfg["data"]["render_size"]
    if r is not None and r < 16:
        raise ConfigError(
            f"{where}: data.render_size must be >= 16 px or null (render at data.image_size), "
            f"got {r}."
        )
    if r is not None and cfg["data"]["source"] != "synthetic":
        raise ConfigError(
            f"{where}: data.render_size sets the side synthetic images are rendered at; "
            f"{cfg['data']['source']} images are read as they are. Set it to null."
        )
    m = cfg["loss"]["mask_loss_size"]
    if m is not None and m <= 0:
        raise ConfigError(f"{where}: loss.mask_loss_size must be > 0 or null, got {m}.")
    if model == "sam3":
        q = cfg["init"]["num_queries"]
        if q is not None and q <= 0:
            raise ConfigError(f"{where}: init.num_queries must be > 0 or null, got {q}.")
        if q is not None and cfg["init"]["checkpoint"]:
            raise ConfigError(
                f"{where}: init.num_queries sizes a model built from scratch, but init.checkpoint "
                "brings its own queries; set one of them, not both."
            )
        t = cfg["eval"]["nms_iou"]
        if t is not None and not 0 < t <= 1:
            raise ConfigError(f"{where}: eval.nms_iou must be in (0, 1] or null, got {t}.")
        lc = cfg["loss"]
        if lc["o2m_weight"] < 0:
            raise ConfigError(
                f"{where}: loss.o2m_weight must be >= 0 (0 = off), got {lc['o2m_weight']}."
            )
        if not 0 <= lc["o2m_alpha"] <= 1:
            raise ConfigError(f"{where}: loss.o2m_alpha must be in [0, 1], got {lc['o2m_alpha']}.")
        if lc["o2m_topk"] < 1:
            raise ConfigError(f"{where}: loss.o2m_topk must be >= 1, got {lc['o2m_topk']}.")
        pc = cfg["prompts"]
        for key in ("exemplar_p", "negative_p", "drop_phrase_p"):
            if not 0 <= pc[key] <= 1:
                raise ConfigError(
                    f"{where}: prompts.{key} is a probability and must be in [0, 1], got {pc[key]}."
                )
        if pc["max_positives"] < 1:
            raise ConfigError(
                f"{where}: prompts.max_positives must be >= 1 (a pair given exemplars gets at "
                f"least one positive box), got {pc['max_positives']}."
            )
    if len(cfg["optim"]["betas"]) != 2:
        raise ConfigError(
            f"{where}: optim.betas must hold two numbers, got {cfg['optim']['betas']}."
        )
    return dict(cfg)


def load_config(
    source: str | os.PathLike | Mapping[str, Any] | None = None,
    model: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Load, merge over the packaged default, and validate a training config.

    Parameters
    ----------
    source
        A YAML file, a dict, or None (the default alone).
    model
        ``"sam2"`` or ``"sam3"``; must agree with the file's ``model`` when both are given.
    overrides
        A nested dict applied last (e.g. ``{"train": {"steps": 10}}``).

    Raises
    ------
    ConfigError
        Unknown keys, wrong types, impossible values, model mismatch, unreadable file.
    """
    where = "config"
    if source is None:
        user: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        user = dict(source)
    else:
        where = str(source)
        user = read_yaml(source, "write one with `samgap train --init DIR`")
    file_model = user.get("model")
    if model and file_model and model != file_model:
        raise ConfigError(
            f"{where}: the file trains model {file_model!r}, but {model!r} was asked for."
        )
    m = model or file_model
    if m not in MODELS:
        raise ConfigError(
            f"{where}: say which model to train: 'model' must be one of {MODELS}, got {m!r}."
        )
    cfg = merge(default_config(m), {**user, "model": m})
    if overrides:
        cfg = merge(cfg, overrides)
    return validate(cfg, where)


def config_hash(cfg: Mapping[str, Any], ignore: tuple[str, ...] = ()) -> str:
    """SHA-256 (16 hex) of a config's canonical JSON, leaving out dotted keys in ``ignore``."""
    c = copy.deepcopy(dict(cfg))
    for dotted in ignore:
        *parents, last = dotted.split(".")
        cur = c
        for p in parents:
            cur = cur.get(p, {})
        if isinstance(cur, dict):
            cur.pop(last, None)
    blob = json.dumps(c, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def init_configs(folder: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Copy the packaged ``train_sam2.yml`` and ``train_sam3.yml`` into ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for m in MODELS:
        target = out / f"train_{m}.yml"
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; remove it or pass overwrite=True (--force).")
        with resources.as_file(_config_path(m)) as src:
            shutil.copyfile(src, target)
        written.append(target)
    return written
