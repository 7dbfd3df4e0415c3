"""The orchard-tiny cards' held-out protocol: which images, which prompts, which metrics.

`evaluate_checkpoint` scores a checkpoint folder, loaded as a user loads it
(`samgap_lib.models.load_sam2` / `load_sam3`), on the synthetic orchard's ``test`` split
(`held_out_samples`): SAM2 on box prompts and RITM clicks (`evaluate_prompted`), SAM3 on the
phrases of `SAM3_EVAL_PHRASES` (`score_concepts`), with and without the post-processing the
checkpoint asks for beyond SAM3's own (`sam3_held_out`).
"""

from __future__ import annotations

import os
from typing import Any

from ..data import synthetic_orchard
from ..data.profiles import SPLIT_START
from ..models import load_sam2, load_sam3
from ..models.postprocess import postprocess_prediction
from .concepts import predict_concepts, score_concepts
from .prompted import evaluate_prompted

__all__ = [
    "HELD_OUT",
    "HELD_OUT_SIZE",
    "SAM3_EVAL_PHRASES",
    "evaluate_checkpoint",
    "held_out_samples",
    "sam3_held_out",
]

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
        seg = load_sam2(folder, device="cpu")  # draws prompts into the mask input if trained so
        return evaluate_prompted(seg, samples, clicks=3)
    return sam3_held_out(folder, samples, (postprocess,))[0]


def sam3_held_out(
    folder: str | os.PathLike, samples: list[Any], postprocess: tuple[bool, ...] = (True, False)
) -> list[dict[str, float]]:
    """`evaluate_checkpoint`'s SAM3 metrics on ``samples``, one summary per entry of
    ``postprocess``: with the post-processing the checkpoint asks for (True) or with SAM3's own
    alone (False). The model runs once; the post-processing is applied to its predictions
    (`samgap_lib.models.postprocess.postprocess_prediction`), as `load_sam3`'s segmenter would."""
    seg = load_sam3(folder, device="cpu")
    spec = (seg.mask_in_box, seg.nms_iou)
    seg.mask_in_box, seg.nms_iou = False, None
    raw = predict_concepts(seg, samples, SAM3_EVAL_PHRASES)
    out = []
    for on in postprocess:
        preds = (
            {p: [postprocess_prediction(x, *spec) for x in xs] for p, xs in raw.items()}
            if on
            else raw
        )
        out.append(score_concepts(preds, samples, SAM3_EVAL_PHRASES)["summary"])
    return out


def held_out_samples(model: str, n_images: int | None = None, seed: int = 0) -> list[Any]:
    """The held-out images `evaluate_checkpoint` scores ``model`` on: the synthetic orchard's
    ``test`` split, 128 px for SAM2 and 224 px for SAM3 (``HELD_OUT[model]`` images)."""
    size = HELD_OUT_SIZE[model]
    n = n_images or HELD_OUT[model]
    return synthetic_orchard(n, seed=seed, size=(size, size), start=SPLIT_START["test"])
