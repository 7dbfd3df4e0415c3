"""Architecture facts (chapter 2): parameter counts per component and per-stage latency.

`parameter_counts` builds the full-size configurations on torch's ``meta`` device (shapes only,
no memory, well under a second) and counts parameters per component. `stage_latency` times the
stages of a loaded role object on the running machine and says which device it measured.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..models.archs import released_sam2_config, released_sam3_config

__all__ = ["parameter_counts", "stage_latency"]


def _count(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _own(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters(recurse=False)))


def _sam2_components(m: Any) -> dict[str, int]:
    counts = {
        "image_encoder.trunk": _count(m.vision_encoder.backbone),
        "image_encoder.neck": _count(m.vision_encoder.neck),
        "prompt_encoder": _count(m.prompt_encoder) + _count(m.shared_image_embedding),
        "mask_decoder": _count(m.mask_decoder),
    }
    if hasattr(m, "memory_attention"):
        counts["memory_attention"] = _count(m.memory_attention)
        counts["memory_encoder"] = _count(m.memory_encoder) + _count(m.mask_downsample)
        counts["object_pointers"] = _count(m.object_pointer_proj) + _count(
            m.temporal_positional_encoding_projection_layer
        )
    counts["other"] = _count(m) - sum(counts.values())
    return counts


def _sam3_components(m: Any) -> dict[str, int]:
    det, trk = m.detector_model, m.tracker_model
    dec = det.detr_decoder
    presence = sum(
        _count(getattr(dec, n)) for n in ("presence_token", "presence_head", "presence_layer_norm")
    )
    counts = {
        "vision_encoder.backbone": _count(det.vision_encoder.backbone),
        "vision_encoder.neck": _count(det.vision_encoder.neck),
        "text_encoder": _count(det.text_encoder) + _count(det.text_projection),
        "geometry_exemplar_encoder": _count(det.geometry_encoder),
        "detr_encoder": _count(det.detr_encoder),
        "detr_decoder": _count(dec) - presence,
        "presence_head": presence,
        "mask_decoder": _count(det.mask_decoder),
        "scoring": _count(det.dot_product_scoring),
        "tracker.neck": _count(m.tracker_neck),
        "tracker.prompt_encoder": _count(trk.prompt_encoder) + _count(trk.shared_image_embedding),
        "tracker.mask_decoder": _count(trk.mask_decoder),
        "tracker.memory_attention": _count(trk.memory_attention),
        "tracker.memory_encoder": _count(trk.memory_encoder) + _count(trk.mask_downsample),
        "tracker.object_pointers": _count(trk.object_pointer_proj)
        + _count(trk.temporal_positional_encoding_projection_layer)
        + _own(trk),
    }
    counts["other"] = _count(m) - sum(counts.values())
    return counts


def parameter_counts(name: str) -> dict[str, int]:
    """Parameters per component of a full-size model, built without weights.

    Parameters
    ----------
    name
        ``"sam2.1-hiera-tiny"``, ``"-small"``, ``"-base-plus"``, ``"-large"`` (or ``tiny``,
        ``small``, ``b+``, ``large``; a ``facebook/`` prefix is fine) or ``"sam3"``.

    Returns
    -------
    dict[str, int]
        Component -> count, plus ``"total"``. SAM2 counts are of the full model with its
        memory (``Sam2VideoModel``); SAM3 of ``Sam3VideoModel`` (detector + tracker).
    """
    from transformers import Sam2VideoModel, Sam3VideoModel

    key = name.removeprefix("facebook/")
    with torch.device("meta"):
        if key == "sam3":
            model = Sam3VideoModel(released_sam3_config(video=True))
            counts = _sam3_components(model)
        else:
            model = Sam2VideoModel(released_sam2_config(key, video=True))
            counts = _sam2_components(model)
    counts["total"] = _count(model)
    return counts


# ----------------------------------------------------------------------------- latency


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _time(fn: Callable[[], Any], repeats: int, device: torch.device) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()  # warm-up
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def stage_latency(
    model_role: Any,
    image: np.ndarray,
    *,
    points: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    phrases: Sequence[str] = ("apple",),
    repeats: int = 5,
) -> dict[str, Any]:
    """Per-stage latency (best of ``repeats``, seconds) of a role object on this machine.

    Prompt segmenters (transformers or Meta): ``image_encoder`` (preprocessing + encoder),
    ``prompt_decode`` (prompt encoding + mask decoding + upsampling for the given prompts).
    Concept segmenters (transformers): ``image_encoder``, ``text_encoder``, ``detector``
    (geometry + DETR encoder/decoder + mask head on cached image and text features) and
    ``postprocess``; Meta: ``image_encoder`` and ``prompts`` (text + detector + post-processing).

    Returns
    -------
    dict
        Stage -> seconds, plus ``"device"`` (what measured it) and ``"backend"``.
    """
    device = torch.device(getattr(model_role, "device", "cpu"))
    out: dict[str, Any] = {"device": _device_label(device), "backend": model_role.backend}
    if hasattr(model_role, "predict"):
        if points is None and boxes is None:
            h, w = image.shape[:2]
            points = np.array([[[w / 2, h / 2]]], np.float32)
        out["image_encoder"] = _time(lambda: model_role.set_image(image), repeats, device)
        out["prompt_decode"] = _time(
            lambda: model_role.predict(points=points, boxes=boxes), repeats, device
        )
        return out
    out["image_encoder"] = _time(lambda: model_role.set_image(image), repeats, device)
    if model_role.backend == "transformers":
        from ..models.postprocess import select_instances

        model = model_role.model
        with torch.inference_mode():
            tokens = model_role.tokenize(list(phrases))
            out["text_encoder"] = _time(lambda: model.get_text_features(**tokens), repeats, device)
            text = model.get_text_features(**tokens)
            vision = model_role._expanded_vision(len(phrases))

            def run() -> Any:
                mask = tokens["attention_mask"]
                return model(vision_embeds=vision, text_embeds=text, attention_mask=mask)

            out["detector"] = _time(run, repeats, device)
            res = run()
            hw = model_role._image_hw

            def post() -> None:
                for i, p in enumerate(phrases):
                    select_instances(
                        p,
                        res.pred_logits[i],
                        res.presence_logits[i],
                        res.pred_boxes[i],
                        res.pred_masks[i],
                        hw,
                        model_role.threshold,
                        model_role.mask_threshold,
                        model_role.mask_in_box,
                        model_role.nms_iou,
                    )

            out["postprocess"] = _time(post, repeats, device)
    else:
        out["prompts"] = _time(lambda: model_role.segment(phrases=list(phrases)), repeats, device)
    return out
