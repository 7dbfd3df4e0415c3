"""Dataset statistics that matter for the SAM2-to-SAM3 gap, for any list of samples.

Plain records (lists of dicts) so they feed a pandas DataFrame, a plot or a JSON file alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage

from .types import Concept, Sample, as_concepts

__all__ = [
    "instance_records",
    "image_records",
    "pair_records",
    "dataset_statistics",
    "prompt_effort",
]

_CROSS = ndimage.generate_binary_structure(2, 1)


def _touching(masks: np.ndarray) -> np.ndarray:
    """For each mask of an ``(N, H, W)`` stack: does it touch (4-connected) another mask?"""
    n = len(masks)
    out = np.zeros(n, bool)
    if n < 2:
        return out
    ids = np.zeros(masks.shape[1:], np.int32)
    for k, m in enumerate(masks, start=1):
        ids[m] = k
    for k, m in enumerate(masks, start=1):
        ys, xs = np.nonzero(m)
        y0, y1, x0, x1 = max(ys.min() - 1, 0), ys.max() + 2, max(xs.min() - 1, 0), xs.max() + 2
        ring = ndimage.binary_dilation(m[y0:y1, x0:x1], _CROSS) & ~m[y0:y1, x0:x1]
        near = ids[y0:y1, x0:x1][ring]
        out[k - 1] = bool(((near != 0) & (near != k)).any())
    return out


def instance_records(samples: Iterable[Sample]) -> list[dict]:
    """One record per instance.

    Fields: ``image_id``, ``instance_id``, ``area`` (visible pixels), ``area_frac`` (of the image),
    ``diameter`` (equivalent-circle diameter in pixels, ``2 sqrt(area / pi)``), ``touching``
    (shares a 4-connected border with another instance), ``fragments`` (connected components
    of the visible mask: > 1 when an occluder splits it), ``visible_fraction`` (visible / amodal
    area when the data knows it, else NaN), and every attribute.
    """
    out = []
    for s in samples:
        masks = s.masks
        touch = _touching(masks)
        for inst, t in zip(s.instances, touch, strict=True):
            area = inst.area
            rec = {
                "image_id": s.image_id,
                "instance_id": inst.instance_id,
                "area": area,
                "area_frac": area / (s.height * s.width),
                "diameter": 2.0 * float(np.sqrt(area / np.pi)),
                "touching": bool(t),
                "fragments": int(ndimage.label(inst.mask, _CROSS)[1]),
                "visible_fraction": float(inst.attributes.get("visible_fraction", np.nan)),
            }
            rec.update({k: v for k, v in inst.attributes.items() if k not in rec})
            out.append(rec)
    return out


def pair_records(samples: Iterable[Sample], concepts: Sequence[Concept | str]) -> list[dict]:
    """One record per (image, noun phrase) pair, the unit SAM3 is trained and scored on.

    Fields: ``image_id``, ``phrase``, ``n_instances`` (instances the phrase denotes) and
    ``negative`` (True when it denotes none).
    """
    concepts = as_concepts(concepts)
    out = []
    for s in samples:
        for c in concepts:
            n = len(s.select(c))
            out.append(
                {"image_id": s.image_id, "phrase": c.text, "n_instances": n, "negative": n == 0}
            )
    return out


def image_records(samples: Iterable[Sample], concepts: Sequence[Concept | str] = ()) -> list[dict]:
    """One record per image: ``n_instances``, ``height``, ``width``, and when concepts are given,
    ``n_pairs``, ``n_positive_pairs`` and ``n_negative_pairs`` that the image yields in SA-Co form."""
    concepts = as_concepts(concepts)
    out = []
    for s in samples:
        rec = {
            "image_id": s.image_id,
            "height": s.height,
            "width": s.width,
            "n_instances": len(s.instances),
        }
        if concepts:
            pos = sum(1 for c in concepts if s.select(c))
            rec.update(
                n_pairs=len(concepts), n_positive_pairs=pos, n_negative_pairs=len(concepts) - pos
            )
        out.append(rec)
    return out


def dataset_statistics(samples: Sequence[Sample], concepts: Sequence[Concept | str] = ()) -> dict:
    """Summary of a dataset: images, instances, instances per image (mean, median, max),
    share of empty images, size quantiles, share touching / fragmented / partly occluded,
    and, with concepts, pairs and negative pairs per image."""
    imgs = image_records(samples, concepts)
    inst = instance_records(samples)
    per = np.array([r["n_instances"] for r in imgs], float)
    area = np.array([r["area"] for r in inst], float)
    vis = np.array([r["visible_fraction"] for r in inst], float)
    summary = {
        "images": len(imgs),
        "instances": len(inst),
        "instances_per_image_mean": float(per.mean()) if len(per) else float("nan"),
        "instances_per_image_median": float(np.median(per)) if len(per) else float("nan"),
        "instances_per_image_max": int(per.max()) if len(per) else 0,
        "empty_images_frac": float((per == 0).mean()) if len(per) else float("nan"),
        "area_p10": float(np.percentile(area, 10)) if len(area) else float("nan"),
        "area_median": float(np.median(area)) if len(area) else float("nan"),
        "area_p90": float(np.percentile(area, 90)) if len(area) else float("nan"),
        "touching_frac": float(np.mean([r["touching"] for r in inst])) if inst else float("nan"),
        "fragmented_frac": float(np.mean([r["fragments"] > 1 for r in inst]))
        if inst
        else float("nan"),
        "occluded_frac": float(np.mean(vis[~np.isnan(vis)] < 0.95))
        if np.isfinite(vis).any()
        else float("nan"),
    }
    if concepts:
        summary["pairs_per_image"] = float(np.mean([r["n_pairs"] for r in imgs])) if imgs else 0.0
        summary["negative_pairs_frac"] = float(
            np.sum([r["n_negative_pairs"] for r in imgs])
            / max(1, np.sum([r["n_pairs"] for r in imgs]))
        )
    return summary


def prompt_effort(
    samples: Iterable[Sample], concepts: Sequence[Concept | str], clicks_per_instance: int = 1
) -> list[dict]:
    """Prompts needed to ask each model for every instance of each concept, per (image, phrase).

    SAM2 needs ``clicks_per_instance`` clicks (or one box) *on each instance the phrase denotes*,
    so its effort grows with the instance count and presumes someone already found them; SAM3
    needs one phrase per (image, concept) whatever the count, zero instances included.

    Returns records with ``image_id``, ``phrase``, ``n_instances``, ``sam2_clicks``,
    ``sam2_boxes`` and ``sam3_phrases`` (always 1).
    """
    if clicks_per_instance < 1:
        raise ValueError(f"clicks_per_instance must be >= 1, got {clicks_per_instance}.")
    out = []
    for rec in pair_records(samples, concepts):
        n = rec["n_instances"]
        out.append(
            {**rec, "sam2_clicks": n * clicks_per_instance, "sam2_boxes": n, "sam3_phrases": 1}
        )
    return out
