"""The official fine-tuning recipes as data, and orchard-tiny: SAM2 and SAM3 trained from
scratch on the synthetic orchard, cached by a hash of the training code and config.

`ensure_orchard_tiny()` returns the two checkpoint folders, training them first when the cache
has none (SAM2 about 3 minutes, SAM3 8 to 10, on 2 CPU cores). Training happens in a
temporary folder renamed at the end, under a file lock, so an interrupted run never leaves a
folder that looks finished.

The recipes train on the CPU in float32 on every machine, a GPU one included: that is where they
were tuned and where the book's numbers come from (on CUDA the trainer's default would be bf16
autocast, untried for these from-scratch models).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samgap_lib.io import cache_root as _io_cache_root
from samgap_lib.io import read_json, write_json
from samgap_lib.provenance import device_name

from .config import load_config, merge

__all__ = [
    "OFFICIAL_RECIPES",
    "ORCHARD_TINY",
    "WORKAROUNDS",
    "recipe_table",
    "orchard_tiny_config",
    "orchard_tiny_hash",
    "cache_root",
    "ensure_orchard_tiny",
    "evaluate_checkpoint",
    "held_out_samples",
    "sam3_held_out",
]

# What the released training configs do (REFERENCE.md; sam2 training/ and sam3 README_TRAIN.md).
OFFICIAL_RECIPES: dict[str, dict[str, str]] = {
    "SAM2.1 (MOSE fine-tune)": {
        "source": "sam2 training/, configs/sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml",
        "trained": "everything (image encoder, prompt encoder, mask decoder, memory); nothing frozen",
        "losses (weight)": "mask focal 20 (alpha 0.25, gamma 2), dice 1, IoU L1 1, object score 1",
        "multimask": "best-of-3 for the mask loss when one click; IoU loss on all candidates",
        "matching": "none: each prompt names its object",
        "learning rates": "base 5e-6, image encoder 3e-6, layer decay 0.9, cosine to lr/10",
        "optimizer": "AdamW, weight decay 0.1, grad clip 0.1",
        "resolution": "1024",
        "batch": "1 video x 8 frames, <= 3 objects",
        "prompts sampled": "points p 0.5 / boxes p 0.25 / masks; 7 correction clicks per frame",
        "text": "none",
    },
    "SAM3 (roboflow_v100 fine-tune)": {
        "source": "sam3 README_TRAIN.md, roboflow_v100 config",
        "trained": "detector + vision backbone; text encoder at a low lr; tracker not trained",
        "losses (weight)": "class 20 (IoU-aware BCE, IABCEMdetr: positives x10, soft IoU "
        "targets), box L1 5, GIoU 2, presence 20; the same class and box terms x2 on the "
        "one-to-many queries; masks off (focal 200 + dice 10 commented out)",
        "multimask": "no: 200 queries, one instance each",
        "matching": "Hungarian (class + L1 + GIoU) of queries to the phrase's instances; in "
        "training a copy of the queries without self-attention (DAC one-to-many) takes up to "
        "4 queries per instance (0.3 score + 0.7 box IoU > 0.4)",
        "learning rates": "transformer 8e-5, vision 2.5e-5, language 5e-6, layer decay 0.9",
        "optimizer": "AdamW",
        "resolution": "1008",
        "batch": "1 image, <= 200 annotations, 20 epochs",
        "prompts sampled": "noun phrases incl. negatives (phrases with no instance)",
        "text": "CLIP-style text encoder, lr 5e-6",
    },
}

# The tricks the from-scratch prototype needed (REFERENCE.md), recorded in each card.json.
WORKAROUNDS = {
    "sam2": [
        "PyTorch-default re-initialisation of every layer (transformers init leaves mask logits ~1e-4)",
        "image-grid and prompt positional encodings tied (one random Fourier matrix)",
        "mask_input_channels = 32 (8 leaves a LayerNorm over 2 channels that erases the mask prompt)",
        "dynamic_multimask_via_stability off",
        "dice weight 20 instead of the official 1 (with lr 2e-3): apples cover 1-3% of the image, "
        "so under focal 20 + dice 1 an empty mask wins at first and the model spends many of its "
        "first steps predicting nothing",
        "clicks and boxes drawn into the dense mask prompt (config key samgap_dense_prompt; "
        "load_sam2 applies samgap_lib.models.dense.DensePromptSegmenter): an object's first "
        "click as a disc of radius 3 mask-input pixels, corrections 1.5 (with 1.5 everywhere "
        "the first-click masks of large apples stay a small blob round the click)",
        "mask loss scored at half the image size, 128 px (predictions upsampled, targets "
        "area-averaged: loss.mask_loss_size), not at the 256 px image size as SAM2's loss does: "
        "for less time per step on a CPU (at the earlier 192 px input, 96 px gave the same "
        "held-out numbers as 192 within the seed spread)",
        "2 images per step with up to 12 apples each, not 8 with up to 4: each image is encoded "
        "once and each apple only decoded, and the time saved pays for the 256 px input "
        "(chapter 4, recipe changes)",
    ],
    "sam3": [
        "PyTorch-default re-initialisation of every layer",
        "64 queries (init.num_queries) with reference boxes spread on a regular 8x8 grid: the "
        "arch's 36 on 6x6 left medium and large apples unanswered (chapter 4, recipe changes)",
        "the decoder's box relative-position bias started as a locality prior "
        "(training.arch.init_box_rpb_locality); random, every query attends to the same tokens "
        "and the detector never learns",
        "SAM3's IoU-aware classification loss (IABCEMdetr, positives weighted 10 as in SAM3) "
        "instead of DETR's focal loss, which leaves the scores of found apples under 0.5 (the "
        "36-query recipes before this one weighted positives 20, which found more apples then)",
        "byte-level CLIP tokenizer (512 symbols, no BPE merges), text encoder trained from scratch",
        "ripe share varied per training image so attribute phrases are sometimes absent",
        "mask loss scored at 112 px (predictions upsampled, targets area-averaged: "
        "loss.mask_loss_size), not at the 224 px image size as SAM3's loss does; with the mask "
        "decoder run only on phrases that have instances, it buys steps on a CPU",
        "ViT absolute position embedding started as 2-D sine-cosine codes "
        "(training.arch.init_vit_sincos_positions); transformers' std 0.02 leaves the image "
        "tokens almost without position, and each query's mask spreads over every apple alike",
        "each mask cut to its own predicted box at inference: the tiny mask head still leaks "
        "pixels onto other apples of the same colour",
        "duplicate instances removed by mask NMS at IoU 0.5 at inference: some apples are "
        "still answered by two queries (both post-processing steps are saved in the checkpoint "
        "as samgap_postprocess; load_sam3 applies them)",
    ],
}

ORCHARD_TINY: dict[str, dict[str, Any]] = {
    "sam2": {
        "init": {"arch": "orchard-m", "seed": 0},
        "data": {"n_train": 1500, "n_val": 0, "image_size": 256, "seed": 0, "max_objects": 12},
        "prompts": {
            "weights": {"click": 0.35, "point": 0.15, "box": 0.5},
            "per_object": 2,
            "p_correction": 0.3,
            "max_corrections": 2,
            "dense_first_radius": 3.0,
        },
        "loss": {"focal": 20.0, "dice": 20.0, "iou": 1.0, "mask_loss_size": 128},
        "optim": {
            "lr": 2.0e-3,
            "weight_decay": 0.01,
            "warmup_steps": 50,
            "grad_clip": 10.0,
            "layer_decay": 1.0,
        },
        "train": {
            "steps": 700,
            "batch_images": 2,
            "eval_every": 0,
            "checkpoint_every": 100,
            "log_every": 20,
            "seed": 0,
            "device": "cpu",
            "precision": "fp32",
        },
    },
    "sam3": {
        "init": {"arch": "orchard-xs", "seed": 0, "num_queries": 64},
        "data": {
            "n_train": 1200,
            "n_val": 0,
            "image_size": 224,
            "seed": 0,
            "ripeness_mix": True,
            "phrases_per_image": 4,
        },
        "loss": {
            "segmentation": True,
            "class_loss": "iabce",
            "class": 20.0,
            "pos_weight": 10.0,
            "class_on_negatives": False,
            "bbox": 5.0,
            "giou": 2.0,
            "presence": 5.0,
            "mask_focal": 200.0,
            "mask_dice": 10.0,
            "semantic": 1.0,
            "semantic_on_negatives": False,
            "mask_loss_size": 112,
            "aux": True,
            "match_mask": 2.0,
            "o2m_weight": 0.0,  # tuned and recorded (seed_spread) without SAM3's o2m queries
        },
        "optim": {
            "lr": 1.0e-3,
            "weight_decay": 0.01,
            "warmup_steps": 50,
            "grad_clip": 10.0,
            "layer_decay": 1.0,
            "lr_mult": {"vision": 1.0, "text": 1.0, "detector": 1.0},
        },
        "train": {
            "steps": 2400,
            "batch_images": 4,
            "eval_every": 0,
            "checkpoint_every": 200,
            "log_every": 20,
            "seed": 0,
            "device": "cpu",
            "precision": "fp32",
        },
        "eval": {
            "phrases": ["ripe apple", "unripe apple", "apple", "pear", "leaf"],
            "mask_in_box": True,
            "nms_iou": 0.5,
        },
    },
}
HELD_OUT = {"sam2": 50, "sam3": 50}
HELD_OUT_SIZE = {"sam2": 128, "sam3": 224}  # px
SAM3_EVAL_PHRASES = [
    "ripe apple",
    "unripe apple",
    "turning apple",
    "apple",
    "pear",
    "leaf",
    "orange",
    "lemon",
]


def recipe_table() -> list[dict[str, str]]:
    """The official recipes as rows (one per aspect, a column per model) for a table."""
    names = list(OFFICIAL_RECIPES)
    aspects = list(OFFICIAL_RECIPES[names[0]])
    return [{"aspect": a, **{n: OFFICIAL_RECIPES[n][a] for n in names}} for a in aspects]


def orchard_tiny_config(
    model: str, out_dir: str | os.PathLike, **train_overrides: Any
) -> dict[str, Any]:
    """The validated orchard-tiny config of ``model`` writing into ``out_dir``."""
    over = merge(
        ORCHARD_TINY[model],
        {"train": {"out_dir": str(out_dir), "progress": "auto", **train_overrides}},
    )
    return load_config(over, model=model)


def _code_files() -> list[Path]:
    pkg = Path(__file__).resolve().parent.parent
    skip = {"token_only.py", "seed_spread.py", "bench.py", "cli.py"}  # not used to train it
    files = sorted(f for f in (pkg / "training").glob("*.py") if f.name not in skip)
    files += sorted((pkg / "configs").glob("train_*.yml"))
    # and what the card's held-out numbers run through (evaluate_sam2 clicks with clicking.py)
    extra = ("data/synthetic.py", "models/dense.py", "experiments/clicking.py")
    return files + [pkg / f for f in extra]


def orchard_tiny_hash() -> str:
    """16 hex digits over the training code, the packaged configs, the data generator, the
    dense prompt drawing, the RITM clicks of the held-out evaluation and ORCHARD_TINY: any
    change retrains."""
    h = hashlib.sha256()
    for f in _code_files():
        h.update(f.name.encode())
        h.update(f.read_bytes())
    h.update(repr(sorted(ORCHARD_TINY.items(), key=str)).encode())
    return h.hexdigest()[:16]


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The orchard-tiny cache root (see `samgap_lib.io.cache_root`)."""
    return _io_cache_root(cache_dir)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def evaluate_checkpoint(
    model: str,
    folder: str | os.PathLike,
    n_images: int | None = None,
    seed: int = 0,
    postprocess: bool = True,
) -> dict[str, float]:
    """Held-out metrics of a checkpoint folder, loaded through `samgap_lib.models`.

    SAM2: box mIoU and RITM click mIoU@1..3 / NoC on the synthetic orchard's ``test`` split at
    128 px, whatever the model's input size (prompts drawn into the dense input when the
    checkpoint asks for it). SAM3: recall,
    precision, attribute selectivity, detections per image, cgF1 and AP on the ``test`` split at
    224 px for `SAM3_EVAL_PHRASES`; ``postprocess=False`` switches off the post-processing the
    checkpoint asks for beyond SAM3's own (masks cut to their boxes, mask NMS).
    """
    samples = held_out_samples(model, n_images, seed)
    if model == "sam2":
        from samgap_lib.models import load_sam2

        from .sam2_task import evaluate_sam2

        seg = load_sam2(folder, device="cpu")  # draws prompts into the mask input if trained so
        return evaluate_sam2(seg, samples, clicks=3)
    return sam3_held_out(folder, samples, (postprocess,))[0]


def sam3_held_out(
    folder: str | os.PathLike, samples: list[Any], postprocess: tuple[bool, ...] = (True, False)
) -> list[dict[str, float]]:
    """`evaluate_checkpoint`'s SAM3 metrics on ``samples``, one summary per entry of
    ``postprocess``: with the post-processing the checkpoint asks for (True) or with SAM3's own
    alone (False). The model runs once; the post-processing is applied to its predictions
    (`samgap_lib.models.hf_sam3.postprocess_prediction`), as `load_sam3`'s segmenter would."""
    from samgap_lib.models import load_sam3
    from samgap_lib.models.hf_sam3 import postprocess_prediction

    from .sam3_task import predict_sam3, score_sam3

    seg = load_sam3(folder, device="cpu")
    spec = (seg.mask_in_box, seg.nms_iou)
    seg.mask_in_box, seg.nms_iou = False, None
    raw = predict_sam3(seg, samples, SAM3_EVAL_PHRASES)
    out = []
    for on in postprocess:
        preds = (
            {p: [postprocess_prediction(x, *spec) for x in xs] for p, xs in raw.items()}
            if on
            else raw
        )
        out.append(score_sam3(preds, samples, SAM3_EVAL_PHRASES)["summary"])
    return out


def held_out_samples(model: str, n_images: int | None = None, seed: int = 0) -> list[Any]:
    """The held-out images `evaluate_checkpoint` scores ``model`` on: the synthetic orchard's
    ``test`` split, 128 px for SAM2 and 224 px for SAM3 (``HELD_OUT[model]`` images)."""
    from samgap_lib.data import synthetic_orchard

    from ..data.profiles import SPLIT_START

    size = HELD_OUT_SIZE[model]
    n = n_images or HELD_OUT[model]
    return synthetic_orchard(n, seed=seed, size=(size, size), start=SPLIT_START["test"])


def _train_one(model: str, target: Path, log: Any) -> Path:
    import torch

    from .trainer import train

    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{model}.tmp-"))
    try:
        cfg = orchard_tiny_config(model, tmp / "run")
        log(f"orchard-tiny: training {model} ({cfg['train']['steps']} steps) into {target} ...")
        t0 = time.perf_counter()
        res = train(cfg)
        wall = time.perf_counter() - t0
        final = res.final
        extra = {}
        if model == "sam3":  # and the same predictions with SAM3's own post-processing alone
            both = sam3_held_out(final, held_out_samples(model))
            metrics, extra["metrics_sam3_postprocessing"] = both
        else:
            metrics = evaluate_checkpoint(model, final)
        d = cfg["data"]
        card = {
            "name": f"orchard-tiny-{model}",
            "model": model,
            "arch": cfg["init"]["arch"],
            "params": res.n_params,
            "data": {
                "source": "synthetic orchard (samgap_lib.data.synthetic_orchard)",
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
                "images": HELD_OUT[model],
                "split": "test (start 200000)",
                "metrics": metrics,
                **extra,
            },
            "measured_by": f"samgap_lib.training.recipes.evaluate_checkpoint('{model}', <folder>)",
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
    return (
        f"ripe apple R/P {m['recall[ripe apple]']:.2f}/{m['precision[ripe apple]']:.2f}, "
        f"unripe apple R/P {m['recall[unripe apple]']:.2f}/{m['precision[unripe apple]']:.2f}, cgF1 {m['cgF1']:.3f}"
    )


def ensure_orchard_tiny(
    cache_dir: str | os.PathLike | None = None,
    models: tuple[str, ...] = ("sam2", "sam3"),
    verbose: bool = True,
) -> dict[str, Path]:
    """Folders of the orchard-tiny SAM2 and SAM3 checkpoints, trained first if not cached.

    Parameters
    ----------
    cache_dir
        Cache root (default: `cache_root`); checkpoints live in
        ``<root>/orchard-tiny/<hash>/{sam2,sam3}`` with a ``card.json`` each.
    models
        Which to ensure.
    verbose
        Print one line per training.

    Returns
    -------
    dict
        ``{"sam2": Path, "sam3": Path}``: pass them to `samgap_lib.models.load_sam2` /
        `load_sam3`.
    """
    base = cache_root(cache_dir) / "orchard-tiny" / orchard_tiny_hash()
    base.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def log(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    for model in models:
        target = base / model
        if not (target / "card.json").is_file():
            with _lock(base / f".{model}.lock"):
                if not (target / "card.json").is_file():
                    if target.exists():  # a folder without its card is not a finished checkpoint
                        shutil.rmtree(target)
                    _train_one(model, target, log)
        out[model] = target
    return out


def read_card(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``card.json`` beside an orchard-tiny checkpoint."""
    return read_json(Path(folder) / "card.json")
