"""Does a from-scratch SAM2 learn from prompt tokens alone? A bounded experiment.

The orchard-tiny SAM2 draws every click and box into the dense mask prompt ("trick e"). This
module trains the same recipe without it (``prompts.dense = false``), for the orchard-tiny step
budget and for twice that ("longer training"), and with the prompts drawn for only half of the
objects ("mixed", evaluated *without* drawing: does the token route learn when the dense route
is there half the time?). `recorded_runs` reads the recorded run (``samgap_lib/results/token_only.json``, with its
provenance); the appendix on the miniature reads it.

Run it (about 4 x the orchard-tiny SAM2 training time)::

    python -m samgap_lib.studies.token_only --out token_only.json
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..config import merge
from ..evaluation import evaluate_checkpoint, evaluate_prompted, held_out_samples
from ..io import recorded_result, write_json
from ..models import DensePromptSegmenter, load_sam2
from ..training import ORCHARD_TINY, train
from ..training.orchard_tiny import orchard_tiny_config

__all__ = [
    "VARIANTS",
    "load_tokens_only",
    "recipe_summary",
    "recorded_runs",
    "run_token_only",
    "main",
]

# The reference (prompts drawn, orchard-tiny itself) is read from the orchard-tiny card.json.
VARIANTS: dict[str, dict[str, Any]] = {
    "tokens only": {"prompts": {"dense": False}},
    "tokens only, 2x steps": {
        "prompts": {"dense": False},
        "train": {"steps": 2 * ORCHARD_TINY["sam2"]["train"]["steps"]},
    },
    "half drawn, evaluated tokens only": {"prompts": {"dense_p": 0.5}},
}


def recorded_runs() -> dict[str, Any]:
    """The recorded run of the variants (``samgap_lib/results/token_only.json``): its
    ``provenance``, the ``recipe`` the variants change, each variant's held-out numbers and the
    ``conclusion`` drawn from them."""
    return recorded_result("token_only")


def recipe_summary() -> dict[str, Any]:
    """What the variants start from: the orchard-tiny SAM2 recipe's size, steps, batch (images,
    apples per image), loss, lr and prompt sampling (the half-drawn variant draws as the recipe
    does)."""
    r = ORCHARD_TINY["sam2"]
    return {
        "image_size": r["data"]["image_size"],
        "steps": r["train"]["steps"],
        "batch_images": r["train"]["batch_images"],
        "max_objects": r["data"]["max_objects"],
        "loss": dict(r["loss"]),
        "lr": r["optim"]["lr"],
        "prompts": dict(r["prompts"]),
    }


def load_tokens_only(folder: str | os.PathLike) -> Any:
    """The SAM2 checkpoint at ``folder`` prompted through its tokens alone.

    `samgap_lib.models.load_sam2` draws the prompts into the dense mask input of every checkpoint
    trained that way (even partly, ``prompts.dense_p < 1``); this returns the plain segmenter
    underneath, so nothing is drawn.
    """
    seg = load_sam2(folder, device="cpu")
    return seg.inner if isinstance(seg, DensePromptSegmenter) else seg


def _evaluate_tokens_only(folder: Path, n_images: int) -> dict[str, float]:
    return evaluate_prompted(load_tokens_only(folder), held_out_samples("sam2", n_images), clicks=3)


def run_token_only(
    variants: dict[str, dict[str, Any]] | None = None,
    n_images: int = 50,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Train and evaluate each variant; returns ``{"variants": {name: {...}}, ...}``."""
    import torch

    variants = variants or VARIANTS
    out: dict[str, Any] = {
        "n_held_out_images": n_images,
        "recipe": recipe_summary(),
        "torch_threads": num_threads or torch.get_num_threads(),
        "variants": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, over in variants.items():
            cfg = orchard_tiny_config(
                "sam2", Path(tmp) / name.replace(" ", "_"), num_threads=num_threads
            )
            cfg = merge(cfg, over)
            t0 = time.perf_counter()
            res = train(cfg)
            wall = time.perf_counter() - t0
            drawn = cfg["prompts"]["dense"] and cfg["prompts"]["dense_p"] >= 1.0
            m = (
                evaluate_checkpoint("sam2", res.final, n_images)
                if drawn
                else _evaluate_tokens_only(res.final, n_images)
            )
            out["variants"][name] = {
                "steps": cfg["train"]["steps"],
                "train_s": round(wall, 1),
                "click_mIoU@1": round(m["click_mIoU@1"], 4),
                "click_mIoU@3": round(m["click_mIoU@3"], 4),
                "box_mIoU": round(m["box_mIoU"], 4),
            }
            print(name, out["variants"][name], flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="token_only.json")
    p.add_argument("--images", type=int, default=50)
    p.add_argument("--variant", choices=list(VARIANTS), help="run only this variant")
    args = p.parse_args(argv)
    chosen = {args.variant: VARIANTS[args.variant]} if args.variant else None
    threads = int(os.environ.get("OMP_NUM_THREADS", "0")) or None
    res = run_token_only(chosen, n_images=args.images, num_threads=threads)
    res["command"] = "python -m samgap_lib.studies.token_only"
    write_json(res, args.out, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
