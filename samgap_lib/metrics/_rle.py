"""Private RLE helpers around ``pycocotools.mask`` (to be merged with ``samgap_lib.data.coco``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["mask_to_rle", "masks_to_rles", "rle_to_mask", "segmentation_to_rle"]


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE (``counts`` as ``str``, JSON-ready) of one ``(H, W)`` bool mask."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def masks_to_rles(masks: np.ndarray) -> list[dict[str, Any]]:
    """Compressed RLEs of an ``(N, H, W)`` mask stack (one ``encode`` call)."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"expected an (N, H, W) mask stack, got shape {masks.shape}.")
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """``(H, W)`` bool mask of a compressed or uncompressed COCO RLE."""
    if isinstance(rle.get("counts"), list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    return mask_utils.decode(rle).astype(bool)


def segmentation_to_rle(segm: Any, height: int, width: int) -> dict[str, Any]:
    """Compressed RLE of a COCO ``segmentation`` field, exactly as ``pycocotools.COCO.annToRLE``.

    Polygons (list of lists) are rasterised and merged, uncompressed RLE (``counts`` a list) is
    compressed, and a compressed RLE is returned unchanged.
    """
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    if isinstance(segm, dict) and isinstance(segm.get("counts"), list):
        return mask_utils.frPyObjects(segm, height, width)
    if isinstance(segm, dict) and "counts" in segm and "size" in segm:
        return segm
    raise ValueError(
        f"unsupported segmentation of type {type(segm).__name__}: expected a COCO polygon list "
        "or an RLE dict with 'size' and 'counts'."
    )
