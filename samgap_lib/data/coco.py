"""COCO instance form and SA-Co concept form, with masks as COCO RLE (pycocotools).

* `to_coco` / `from_coco`: one COCO "image" per image, one annotation per instance, instance
  attributes kept under each annotation's ``"attributes"``. Lossless round trip.
* `to_saco` / `from_saco`: SAM3's concept form (SA-Co): one COCO "image" per (image, noun phrase)
  pair with ``text_input`` and ``is_instance_exhaustive``, annotations for the instances the
  phrase denotes, and negative phrases as pairs with no annotations. This is the ground-truth
  format that ``sam3.eval.cgf1_eval.CGF1Evaluator`` reads.

Boxes are written in COCO ``[x, y, w, h]`` computed by ``pycocotools.mask.toBbox`` from the RLE,
so they agree exactly with what COCO tools compute.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from .types import Concept, Instance, Sample, as_concepts

__all__ = [
    "mask_to_rle",
    "masks_to_rles",
    "pair_id",
    "rle_to_mask",
    "segmentation_to_rle",
    "to_coco",
    "from_coco",
    "to_saco",
    "from_saco",
]


def mask_to_rle(mask: np.ndarray) -> dict:
    """Encode an ``(H, W)`` bool mask as COCO RLE with a JSON-ready (str) ``counts``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask_to_rle expects an (H, W) mask, got shape {mask.shape}.")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "size": [int(rle["size"][0]), int(rle["size"][1])],
        "counts": rle["counts"].decode("ascii"),
    }


def rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode COCO RLE (compressed ``counts`` as str/bytes, or uncompressed list) to bool."""
    rle = dict(rle)
    if isinstance(rle.get("counts"), list):
        h, w = rle["size"]
        rle = mask_utils.frPyObjects(rle, h, w)
    elif isinstance(rle.get("counts"), str):
        rle["counts"] = rle["counts"].encode("ascii")
    return mask_utils.decode(rle).astype(bool)


def masks_to_rles(masks: np.ndarray) -> list[dict]:
    """Compressed, JSON-ready RLEs of an ``(N, H, W)`` mask stack (one ``encode`` call)."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"expected an (N, H, W) mask stack, got shape {masks.shape}.")
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def segmentation_to_rle(segm: Any, height: int, width: int) -> dict:
    """Compressed RLE of a COCO ``segmentation`` field, exactly as ``pycocotools.COCO.annToRLE``:
    polygons (list of lists) are rasterised and merged, uncompressed RLE (``counts`` a list) is
    compressed, a compressed RLE is returned unchanged."""
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


def _bbox(rle: dict) -> list[float]:
    r = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return [float(v) for v in mask_utils.toBbox(r)]


def _image_entry(sample: Sample, image_id: int) -> dict:
    return {
        "id": image_id,
        "file_name": str(sample.meta.get("file_name", f"{sample.image_id}.png")),
        "height": sample.height,
        "width": sample.width,
        "samgap_image_id": sample.image_id,
    }


def _annotation(inst: Instance, ann_id: int, image_id: int, category_id: int) -> dict:
    rle = mask_to_rle(inst.mask)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": rle,
        "bbox": _bbox(rle),
        "area": int(inst.area),
        "iscrowd": 0,
        "instance_id": int(inst.instance_id),
        "attributes": dict(inst.attributes),
    }


def to_coco(samples: Sequence[Sample], categories: Sequence[str] | None = None) -> dict:
    """Export samples to a COCO instance-segmentation dict.

    Parameters
    ----------
    samples
        The samples; their ``image_id`` is kept as ``samgap_image_id`` and COCO ids are 1..N.
    categories
        Category names in id order (1-based); by default the sorted categories present, or
        ``["apple"]`` when there are none.

    Returns
    -------
    dict
        ``{"images", "annotations", "categories", "info"}``, JSON-serialisable.
    """
    present = sorted({inst.category for s in samples for inst in s.instances})
    names = list(categories) if categories is not None else (present or ["apple"])
    missing = set(present) - set(names)
    if missing:
        raise ValueError(f"instances have categories {sorted(missing)} not in categories={names}.")
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    images, anns = [], []
    for k, s in enumerate(samples, start=1):
        images.append(_image_entry(s, k))
        for inst in s.instances:
            anns.append(_annotation(inst, len(anns) + 1, k, cat_id[inst.category]))
    return {
        "info": {"description": "exported by samgap_lib.data.to_coco"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": i, "name": n} for n, i in cat_id.items()],
    }


def _check_coco(coco: Mapping[str, Any], what: str) -> None:
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise ValueError(f"{what}: not a COCO dict, key {key!r} is missing.")


def from_coco(
    coco: Mapping[str, Any], images: Mapping[Any, np.ndarray] | Callable[[dict], np.ndarray]
) -> list[Sample]:
    """Rebuild samples from a COCO dict written by `to_coco` (or any COCO file with RLE/polygons).

    Parameters
    ----------
    coco
        The COCO dict.
    images
        The pixels: a mapping from image id (``samgap_image_id`` when present, else the COCO id)
        to an RGB array, or a callable taking the COCO image entry and returning the array.
    """
    _check_coco(coco, "from_coco")
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    by_image = defaultdict(list)
    for a in coco["annotations"]:
        by_image[a["image_id"]].append(a)
    out = []
    for entry in coco["images"]:
        key = entry.get("samgap_image_id", entry["id"])
        img = images(entry) if callable(images) else images[key]
        instances = []
        for a in by_image[entry["id"]]:
            m = rle_to_mask(segmentation_to_rle(a["segmentation"], entry["height"], entry["width"]))
            instances.append(
                Instance(
                    mask=m,
                    attributes=dict(a.get("attributes", {})),
                    category=cats[a["category_id"]],
                    instance_id=int(a.get("instance_id", a["id"])),
                )
            )
        out.append(
            Sample(
                image=img,
                instances=instances,
                image_id=key,
                meta={"file_name": entry.get("file_name")},
            )
        )
    return out


def pair_id(sample_index: int, concept_index: int, n_concepts: int) -> int:
    """The COCO image id of the (image, phrase) pair of ``samples[sample_index]`` and
    ``concepts[concept_index]`` in `to_saco`'s export of ``n_concepts`` concepts:
    ``sample_index * n_concepts + concept_index + 1``. A COCO results list scored against that
    export names its pairs by these ids."""
    return sample_index * n_concepts + concept_index + 1


def to_saco(
    samples: Sequence[Sample], concepts: Sequence[Concept | str], exhaustive: bool = True
) -> dict:
    """Export samples to SA-Co concept form: one COCO image per (image, noun phrase) pair.

    Parameters
    ----------
    samples
        The samples.
    concepts
        The noun phrases, as `Concept` objects (attribute phrases, negatives) or bare category
        names. Each sample yields one pair per concept; a concept that denotes no instance in a
        sample yields a negative pair (no annotations).
    exhaustive
        Value of ``is_instance_exhaustive`` on every pair (True for generated data, where every
        instance is annotated).

    Returns
    -------
    dict
        COCO dict whose ``images`` are pairs with ``text_input``, ``is_instance_exhaustive``,
        ``original_img_id`` (index into ``samples``, 1-based) and ``samgap_image_id``; one
        category ``{"id": 1, "name": "object"}`` as SA-Co uses. Pair ids are `pair_id`.
    """
    concepts = as_concepts(concepts)
    texts = [c.text for c in concepts]
    if len(set(texts)) != len(texts):
        raise ValueError(f"to_saco: duplicate noun phrases in {texts}; each phrase must be unique.")
    images, anns = [], []
    for si, s in enumerate(samples):
        for ci, c in enumerate(concepts):
            pid = pair_id(si, ci, len(concepts))
            entry = _image_entry(s, pid)
            entry.update(
                text_input=c.text,
                is_instance_exhaustive=int(bool(exhaustive)),
                original_img_id=si + 1,
            )
            entry["concept"] = {"category": c.category, "attributes": dict(c.attributes)}
            images.append(entry)
            for inst in s.select(c):
                anns.append(_annotation(inst, len(anns) + 1, pid, 1))
    return {
        "info": {"description": "SA-Co concept form exported by samgap_lib.data.to_saco"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "object"}],
    }


def from_saco(
    saco: Mapping[str, Any], images: Mapping[Any, np.ndarray] | Callable[[dict], np.ndarray]
) -> tuple[list[Sample], list[Concept]]:
    """Rebuild samples and concepts from a dict written by `to_saco`.

    Instances denoted by several phrases appear once, identified by ``instance_id``; an instance
    that no phrase denotes cannot be recovered (SA-Co stores only what phrases denote), so the
    round trip is lossless when the concepts cover every instance (e.g. include "apple").
    """
    _check_coco(saco, "from_saco")
    concepts: dict[str, Concept] = {}
    pairs_by_image: dict[int, list[dict]] = defaultdict(list)
    for entry in saco["images"]:
        if "text_input" not in entry:
            raise ValueError(
                f"from_saco: image entry {entry.get('id')} has no 'text_input'; not SA-Co form."
            )
        spec = entry.get("concept", {"category": entry["text_input"], "attributes": {}})
        concepts.setdefault(
            entry["text_input"], Concept(entry["text_input"], spec["category"], spec["attributes"])
        )
        pairs_by_image[entry["original_img_id"]].append(entry)
    anns_by_pair = defaultdict(list)
    for a in saco["annotations"]:
        anns_by_pair[a["image_id"]].append(a)
    samples = []
    for orig_id in sorted(pairs_by_image):
        entries = pairs_by_image[orig_id]
        first = entries[0]
        key = first.get("samgap_image_id", orig_id)
        img = images(first) if callable(images) else images[key]
        seen: dict[int, Instance] = {}
        for e in entries:
            cat = concepts[e["text_input"]].category
            for a in anns_by_pair[e["id"]]:
                iid = int(a.get("instance_id", a["id"]))
                if iid not in seen:
                    seen[iid] = Instance(
                        mask=rle_to_mask(a["segmentation"]),
                        attributes=dict(a.get("attributes", {})),
                        category=cat,
                        instance_id=iid,
                    )
        instances = [seen[k] for k in sorted(seen)]
        samples.append(
            Sample(
                image=img,
                instances=instances,
                image_id=key,
                meta={"file_name": first.get("file_name")},
            )
        )
    return samples, list(concepts.values())
