"""orchard-tiny: SAM2 and SAM3 trained from scratch on the synthetic orchard, cached by a hash of
the code and configs that make them.

`ensure_orchard_tiny()` returns the checkpoint folders, training them first when the cache has
none (SAM2 about 3 to 6 minutes, SAM3 8 to 17, on 2 CPU cores; SAM2 video, fine-tuned from that
SAM2 on clips, 2 to 4). Training happens in a
temporary folder renamed at the end, under a file lock, so an interrupted run never leaves a
folder that looks finished. The cache lives in the user's cache folder
(`samgap_lib.io.cache_root`: ``$SAMGAP_CACHE``, else ``$XDG_CACHE_HOME/samgap`` or
``~/.cache/samgap``), under ``orchard-tiny/<hash>/``, so every checkout and install of the same
code shares one training.

The recipes (``samgap_lib/configs/orchard_tiny.yml``) are frozen. They train on the CPU in
float32 on every machine, a GPU one included: that is where they were tuned and where the
book's numbers come from (on CUDA the trainer's default would be bf16 autocast, untried for
these from-scratch models).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..config import merge, packaged_yaml
from ..evaluation import held_out
from ..io import cache_root, file_lock, read_json, write_json
from ..provenance import device_name
from .config import load_config

__all__ = [
    "FAMILY",
    "HASHED",
    "MODELS",
    "STARTS_FROM",
    "ORCHARD_TINY",
    "WORKAROUNDS",
    "ensure_orchard_tiny",
    "orchard_tiny_config",
    "orchard_tiny_hash",
    "read_card",
]

_RECIPES = packaged_yaml("orchard_tiny.yml")
# The recipes: each model's overrides of its packaged train_<model>.yml.
ORCHARD_TINY: dict[str, dict[str, Any]] = {m: v["recipe"] for m, v in _RECIPES.items()}
# The packaged config each recipe overrides (sam2_video: train_sam2.yml with a video section).
FAMILY: dict[str, str] = {m: v.get("family", m) for m, v in _RECIPES.items()}
# A recipe that starts from another one's checkpoint (sam2_video from sam2).
STARTS_FROM: dict[str, str] = {
    m: v["starts_from"] for m, v in _RECIPES.items() if "starts_from" in v
}
MODELS = tuple(_RECIPES)
# What training from scratch needed that the released recipes do not, recorded in each card.
WORKAROUNDS: dict[str, list[str]] = {m: v["workarounds"] for m, v in _RECIPES.items()}
# What the cache key covers: every package and module that can change the checkpoints or their
# cards (training code and configs, the data, prompts, models, metrics and evaluation under them).
HASHED = (
    "configs",
    "data",
    "prompts",
    "metrics",
    "models",
    "evaluation",
    "training",
    "config.py",
    "devices.py",
    "io.py",
    "provenance.py",
)


def orchard_tiny_config(
    model: str,
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    **train_overrides: Any,
) -> dict[str, Any]:
    """The validated orchard-tiny config of ``model`` (``sam2``, ``sam3``, ``sam2_video``)
    writing into ``out_dir``; ``checkpoint``: the folder a recipe that starts from another
    model's checkpoint (`STARTS_FROM`) starts from."""
    over = merge(
        ORCHARD_TINY[model],
        {"train": {"out_dir": str(out_dir), "progress": "auto", **train_overrides}},
    )
    if model in STARTS_FROM:
        if checkpoint is None:
            raise ValueError(
                f"orchard-tiny {model} starts from the {STARTS_FROM[model]} checkpoint; pass it."
            )
        over = merge(over, {"init": {"checkpoint": str(checkpoint)}})
    return load_config(over, model=FAMILY[model])


def _hashed_files() -> list[Path]:
    pkg = Path(__file__).resolve().parent.parent
    files: list[Path] = []
    for name in HASHED:
        path = pkg / name
        if path.is_file():
            files.append(path)
        else:
            files += [
                f
                for f in path.rglob("*")
                if f.is_file()
                and f.suffix in (".py", ".yml", ".json")
                and "__pycache__" not in f.parts
            ]
    return sorted(files, key=lambda f: f.relative_to(pkg).as_posix())


def orchard_tiny_hash() -> str:
    """16 hex digits over every file of `HASHED` (path and bytes): any change to the code or
    configs that train or score orchard-tiny retrains it."""
    pkg = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for f in _hashed_files():
        h.update(f.relative_to(pkg).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _train_one(model: str, target: Path, log: Any) -> Path:
    import torch

    from .trainer import train

    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{model}.tmp-"))
    try:
        start = target.parent / STARTS_FROM[model] if model in STARTS_FROM else None
        cfg = orchard_tiny_config(model, tmp / "run", start)
        log(f"orchard-tiny: training {model} ({cfg['train']['steps']} steps) into {target} ...")
        t0 = time.perf_counter()
        res = train(cfg)
        wall = time.perf_counter() - t0
        final = res.final
        extra = {}
        if model == "sam3":  # and the same predictions with SAM3's own post-processing alone
            both = held_out.sam3_held_out(final, held_out.held_out_samples(model))
            metrics, extra["metrics_sam3_postprocessing"] = both
        elif model == "sam2_video":  # and the same clips with the first mask copied forward
            metrics, extra["metrics_first_mask_copied"] = held_out.sam2_video_held_out(final)
        else:
            metrics = held_out.evaluate_checkpoint(model, final)
        d = cfg["data"]
        card = {
            "name": f"orchard-tiny-{model}",
            "model": model,
            **({"starts_from": str(start)} if start else {}),
            "arch": cfg["init"]["arch"],
            "params": res.n_params,
            "data": {
                "source": (
                    f"synthetic orchard clips of {cfg['video']['frames']} frames "
                    "(samgap_lib.data.synthetic_orchard_clips)"
                    if cfg.get("video", {}).get("frames")
                    else "synthetic orchard (samgap_lib.data.synthetic_orchard)"
                ),
                "images": d["n_train"],
                "seed": d["seed"],
                "size": [d["image_size"], d["image_size"]],
                "ripeness_mix": bool(d.get("ripeness_mix", False)),
            },
            "steps": cfg["train"]["steps"],
            "batch_images": cfg["train"]["batch_images"],
            "wall_time_s": round(wall, 1),
            "device": res.device,
            "device_name": device_name(res.device),  # a CPU run repeats exactly on its kernels
            "torch_threads": torch.get_num_threads(),
            "held_out": {
                **(
                    {"clips": dict(held_out.HELD_OUT_CLIPS)}
                    if model == "sam2_video"
                    else {"images": held_out.HELD_OUT[model]}
                ),
                "split": "test (start 200000)",
                "metrics": metrics,
                **extra,
            },
            "measured_by": (
                "samgap_lib.evaluation.sam2_video_held_out(<folder>)"
                if model == "sam2_video"
                else f"samgap_lib.evaluation.evaluate_checkpoint('{model}', <folder>)"
            ),
            "workarounds": WORKAROUNDS[model],
            "code_hash": orchard_tiny_hash(),
            "command": "samgap train --recipe orchard-tiny",
        }
        write_json(card, final / "card.json", indent=2)
        shutil.copy(res.out_dir / "log.jsonl", final / "train_log.jsonl")
        os.rename(final, target)
        log(f"orchard-tiny: {model} done in {wall:.0f} s: {_headline(model, metrics)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _headline(model: str, m: dict[str, float]) -> str:
    if model == "sam2":
        return f"click mIoU@1 {m['click_mIoU@1']:.3f}, box mIoU {m['box_mIoU']:.3f}"
    if model == "sam2_video":
        return f"held-out clips J&F {m['J&F']:.3f} ({m['J&F_low']:.3f}-{m['J&F_high']:.3f}), decay {m['decay']:.3f}"
    return (
        f"ripe apple R/P {m['recall[ripe apple]']:.2f}/{m['precision[ripe apple]']:.2f}, "
        f"unripe apple R/P {m['recall[unripe apple]']:.2f}/{m['precision[unripe apple]']:.2f}, cgF1 {m['cgF1']:.3f}"
    )


def ensure_orchard_tiny(
    cache_dir: str | os.PathLike | None = None,
    models: tuple[str, ...] | None = None,
    verbose: bool = True,
) -> dict[str, Path]:
    """Folders of the orchard-tiny SAM2 and SAM3 checkpoints, trained first if not cached.

    Parameters
    ----------
    cache_dir
        Cache root (default: `samgap_lib.io.cache_root`); checkpoints live in
        ``<root>/orchard-tiny/<hash>/{sam2,sam3,sam2_video}`` with a ``card.json`` each.
    models
        Which to ensure (default: every recipe; a recipe that starts from another model's
        checkpoint brings that one too).
    verbose
        Print one line per training.

    Returns
    -------
    dict
        ``{"sam2": Path, "sam3": Path, "sam2_video": Path}``: pass them to
        `samgap_lib.models.load_sam2` / `load_sam3` (``sam2_video`` with ``role="video"``).
    """
    base = cache_root(cache_dir) / "orchard-tiny" / orchard_tiny_hash()
    base.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def log(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    models = tuple(ORCHARD_TINY) if models is None else tuple(models)
    wanted = [STARTS_FROM[m] for m in models if m in STARTS_FROM] + list(models)
    for model in dict.fromkeys(wanted):
        target = base / model
        if not (target / "card.json").is_file():
            with file_lock(base / f".{model}.lock"):
                if not (target / "card.json").is_file():
                    if target.exists():  # a folder without its card is not a finished checkpoint
                        shutil.rmtree(target)
                    _train_one(model, target, log)
        if model in models:
            out[model] = target
    return out


def read_card(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``card.json`` beside an orchard-tiny checkpoint."""
    return read_json(Path(folder) / "card.json")
