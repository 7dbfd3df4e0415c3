"""`ConceptSegmenter` on Hugging Face transformers' ``Sam3Model`` (the SAM3 detector).

One image encoding is shared by every phrase; the phrases (with or without exemplar boxes) run
through the text encoder, DETR encoder/decoder and mask head as one batch, the image features
broadcast (``expand``, no copy) over the batch. Scores are ``sigmoid(logit) x sigmoid(presence)``
as in SAM3; masks are the mask logits resized bilinearly to the image, then ``sigmoid > 0.5``.
A checkpoint whose config carries ``samgap_postprocess`` (orchard-tiny SAM3) may also have each
mask cut to the pixels its own predicted box touches (`clip_masks_to_boxes`) and duplicates
removed by mask non-maximum suppression (`mask_nms`); released checkpoints are post-processed
exactly as SAM3's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from samgap_lib.data.types import check_image
from samgap_lib.metrics.concept import mask_iou_matrix

from .base import ConceptPrediction, Exemplars, concept_prompts
from .loading import autocast, autocast_dtype, resolve_device
from .upsample import upsample_masks

__all__ = [
    "POSTPROCESS_KEY",
    "HFConceptSegmenter",
    "clip_masks_to_boxes",
    "empty_prediction",
    "mask_nms",
    "postprocess_prediction",
    "postprocess_spec",
    "select_instances",
]

TEXT_MAX_LENGTH = 32  # what Sam3Processor pads phrases to
POSTPROCESS_KEY = "samgap_postprocess"  # model-config entry written by samgap's SAM3 training


def postprocess_spec(model_or_config: Any) -> dict[str, Any]:
    """``{"mask_in_box": bool, "nms_iou": float | None}`` a checkpoint asks for (both off for
    a released SAM3)."""
    cfg = getattr(model_or_config, "config", model_or_config)
    spec = dict(getattr(cfg, POSTPROCESS_KEY, None) or {})
    nms = spec.get("nms_iou")
    return {
        "mask_in_box": bool(spec.get("mask_in_box", False)),
        "nms_iou": None if nms is None else float(nms),
    }


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices (ascending) kept by greedy non-maximum suppression on mask IoU: in order of
    decreasing score, a mask is dropped when its IoU with a kept one is ``>= iou_threshold``.

    DETR-style set prediction should need none, but a tiny detector trained for minutes still
    answers some apples with two queries. Visible apple masks never overlap, so two masks
    sharing half their pixels are one apple twice.
    """
    m = np.asarray(masks, bool)
    sc = np.asarray(scores, np.float64)
    if m.ndim != 3 or sc.shape != (len(m),):
        raise ValueError(
            f"mask_nms: masks must be (N, H, W) and scores (N,), got {m.shape} and {sc.shape}."
        )
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"mask_nms: iou_threshold must be in (0, 1], got {iou_threshold}.")
    iou = mask_iou_matrix(m, m)  # pycocotools RLE IoU; an empty mask overlaps nothing
    keep: list[int] = []
    for i in np.argsort(-sc, kind="stable"):
        if all(iou[i, j] < iou_threshold for j in keep):
            keep.append(int(i))
    return np.array(sorted(keep), dtype=np.int64)


def clip_masks_to_boxes(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``masks`` ``(N, H, W)`` with every pixel outside its box ``(N, 4)`` (xyxy pixels) off.

    A pixel ``[x, x + 1) x [y, y + 1)`` stays when it overlaps the box at all, so a box drawn
    exactly round a mask keeps the whole mask. Mask R-CNN's masks live in their box by
    construction; SAM3's do not, and a tiny SAM3 trained from scratch leaks a few mask pixels
    onto other apples of the same colour (chapter 4).
    """
    m = np.asarray(masks, bool)
    b = np.asarray(boxes, np.float64)
    if m.ndim != 3 or b.shape != (len(m), 4):
        raise ValueError(
            f"clip_masks_to_boxes: masks must be (N, H, W) and boxes (N, 4), got {m.shape} and "
            f"{b.shape}."
        )
    h, w = m.shape[1:]
    xs, ys = np.arange(w), np.arange(h)
    cols = (xs[None] + 1 > b[:, 0, None]) & (xs[None] < b[:, 2, None])
    rows = (ys[None] + 1 > b[:, 1, None]) & (ys[None] < b[:, 3, None])
    return m & rows[:, :, None] & cols[:, None, :]


def empty_prediction(phrase: str, image_hw: tuple[int, int], presence: float) -> ConceptPrediction:
    """A prediction with no instance."""
    h, w = image_hw
    return ConceptPrediction(
        phrase=phrase,
        masks=np.zeros((0, h, w), bool),
        boxes=np.zeros((0, 4), np.float32),
        scores=np.zeros((0,), np.float32),
        presence=float(presence),
    )


def select_instances(
    phrase: str,
    logits: torch.Tensor,
    presence_logit: torch.Tensor | None,
    boxes_xyxy_norm: torch.Tensor,
    mask_logits: torch.Tensor,
    image_hw: tuple[int, int],
    threshold: float,
    mask_threshold: float = 0.5,
    mask_in_box: bool = False,
    nms_iou: float | None = None,
) -> ConceptPrediction:
    """Turn one prompt's raw detector outputs into thresholded instances at image size.

    Parameters
    ----------
    logits
        ``(Q,)`` query logits.
    presence_logit
        Scalar presence logit (None: presence 1).
    boxes_xyxy_norm
        ``(Q, 4)`` boxes, xyxy normalised to [0, 1].
    mask_logits
        ``(Q, h, w)`` mask logits.
    mask_in_box
        Cut each mask to its own box (`clip_masks_to_boxes`).
    nms_iou
        Drop duplicates by `mask_nms` at this mask IoU (None: keep all, as SAM3).
    """
    presence = (
        torch.sigmoid(presence_logit.float()).reshape(()) if presence_logit is not None else None
    )
    scores = torch.sigmoid(logits.float())
    if presence is not None:
        scores = scores * presence
    pres = float(presence) if presence is not None else 1.0
    keep = torch.nonzero(scores > threshold).flatten()
    if keep.numel() == 0:
        return empty_prediction(phrase, image_hw, pres)
    keep = keep[torch.argsort(scores[keep], descending=True)]
    h, w = image_hw
    scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=boxes_xyxy_norm.device)
    boxes = boxes_xyxy_norm[keep].float() * scale
    cut = float(np.log(mask_threshold / (1.0 - mask_threshold)))  # sigmoid(x) > t <=> x > logit(t)
    masks = upsample_masks(mask_logits[keep], (h, w), cut)
    pred = ConceptPrediction(
        phrase=phrase,
        masks=masks,
        boxes=boxes.cpu().numpy(),
        scores=scores[keep].cpu().numpy().astype(np.float32),
        presence=pres,
    )
    return postprocess_prediction(pred, mask_in_box, nms_iou)


def postprocess_prediction(
    pred: ConceptPrediction, mask_in_box: bool = False, nms_iou: float | None = None
) -> ConceptPrediction:
    """samgap's post-processing beyond SAM3's, on one prompt's thresholded instances.

    ``mask_in_box`` cuts each mask to its own box (`clip_masks_to_boxes`); ``nms_iou`` then
    drops duplicates by `mask_nms` at that mask IoU (None: keep all, as SAM3). With both off
    ``pred`` comes back unchanged. `select_instances` ends with it, so a prediction made with
    both off and post-processed here equals one made with them on.
    """
    if not mask_in_box and nms_iou is None:
        return pred
    masks, boxes, scores = pred.masks, pred.boxes, pred.scores
    if mask_in_box:
        masks = clip_masks_to_boxes(masks, boxes)
    if nms_iou is not None:
        k = mask_nms(masks, scores, nms_iou)
        masks, boxes, scores = masks[k], boxes[k], scores[k]
    return ConceptPrediction(
        phrase=pred.phrase, masks=masks, boxes=boxes, scores=scores, presence=pred.presence
    )


def xyxy_to_cxcywh_norm(boxes: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """xyxy pixels -> cxcywh normalised by the image size (what SAM3's geometry encoder takes)."""
    h, w = image_hw
    b = np.asarray(boxes, np.float32) / np.array([w, h, w, h], np.float32)
    return np.stack(
        [(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1
    )


class HFConceptSegmenter:
    """Noun phrases and exemplar boxes on a transformers ``Sam3Model``.

    Parameters
    ----------
    model
        ``Sam3Model``.
    processor
        ``Sam3Processor`` (image processor + CLIP tokenizer).
    device
        ``"auto"`` or a torch device.
    threshold
        Keep instances with ``sigmoid(logit) x presence`` above it (SAM3 default 0.5).
    mask_threshold
        Mask probability threshold (0.5).
    max_batch
        At most this many prompts per forward (None: all at once).
    use_autocast
        bfloat16 autocast on CUDA.
    mask_in_box, nms_iou
        Post-processing beyond SAM3's (`select_instances`). None: as the checkpoint asks
        (`postprocess_spec`; both off for released SAM3 checkpoints).
    """

    backend = "transformers"

    def __init__(
        self,
        model: Any,
        processor: Any,
        device: str | torch.device = "auto",
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        max_batch: int | None = None,
        use_autocast: bool = True,
        mask_in_box: bool | None = None,
        nms_iou: float | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0 or not 0.0 < mask_threshold < 1.0:
            raise ValueError("threshold must be in [0, 1] and mask_threshold in (0, 1).")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.threshold = float(threshold)
        self.mask_threshold = float(mask_threshold)
        self.max_batch = max_batch
        spec = postprocess_spec(model)
        self.mask_in_box = bool(spec["mask_in_box"] if mask_in_box is None else mask_in_box)
        self.nms_iou = spec["nms_iou"] if nms_iou is None else float(nms_iou)
        self.amp_dtype = autocast_dtype(self.device, use_autocast)
        self.input_size = int(processor.image_processor.size["height"])
        model_size = self.model.config.vision_config.backbone_config.image_size
        model_size = model_size[0] if isinstance(model_size, (list, tuple)) else model_size
        if int(model_size) != self.input_size:
            raise ValueError(
                f"processor resizes to {self.input_size} px but the model expects {model_size}."
            )
        self._vision: Any = None
        self._image_hw: tuple[int, int] | None = None

    # ------------------------------------------------------------------ encoders

    @torch.inference_mode()
    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` once; `segment` without an image reuses it."""
        image = check_image(image)
        pv = self.processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
        with autocast(self.device, self.amp_dtype):
            self._vision = self.model.get_vision_features(pixel_values=pv.to(self.device))
        self._image_hw = (int(image.shape[0]), int(image.shape[1]))

    def tokenize(self, phrases: Sequence[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` of phrases, padded as ``Sam3Processor`` does."""
        tok = self.processor.tokenizer(
            list(phrases),
            padding="max_length",
            max_length=TEXT_MAX_LENGTH,
            truncation=True,
            return_tensors="pt",
        )
        return {
            "input_ids": tok["input_ids"].to(self.device),
            "attention_mask": tok["attention_mask"].to(self.device),
        }

    def _expanded_vision(self, b: int) -> Any:
        v = self._vision
        return type(v)(
            last_hidden_state=v.last_hidden_state.expand(b, *v.last_hidden_state.shape[1:]),
            fpn_hidden_states=tuple(x.expand(b, *x.shape[1:]) for x in v.fpn_hidden_states),
            fpn_position_encoding=tuple(x.expand(b, *x.shape[1:]) for x in v.fpn_position_encoding),
        )

    def model_inputs(self, group: Sequence[tuple[str, Exemplars | None]]) -> dict[str, Any]:
        """Text and exemplar tensors for a batch of prompts (exemplars padded with label -10)."""
        assert self._image_hw is not None
        inputs: dict[str, Any] = self.tokenize([p for p, _ in group])
        if any(ex is not None for _, ex in group):
            e_max = max(len(ex.boxes) for _, ex in group if ex is not None)
            boxes = np.zeros((len(group), e_max, 4), np.float32)
            labels = np.full((len(group), e_max), -10, np.int64)
            for i, (_, ex) in enumerate(group):
                if ex is not None:
                    boxes[i, : len(ex.boxes)] = xyxy_to_cxcywh_norm(ex.boxes, self._image_hw)
                    labels[i, : len(ex.boxes)] = ex.labels
            inputs["input_boxes"] = torch.from_numpy(boxes).to(self.device)
            inputs["input_boxes_labels"] = torch.from_numpy(labels).to(self.device)
        return inputs

    @torch.inference_mode()
    def _run(
        self, group: Sequence[tuple[str, Exemplars | None]], threshold: float
    ) -> list[ConceptPrediction]:
        assert self._image_hw is not None
        inputs = self.model_inputs(group)
        with autocast(self.device, self.amp_dtype):
            out = self.model(vision_embeds=self._expanded_vision(len(group)), **inputs)
        preds = []
        for i, (phrase, _) in enumerate(group):
            preds.append(
                select_instances(
                    phrase,
                    out.pred_logits[i],
                    out.presence_logits[i] if out.presence_logits is not None else None,
                    out.pred_boxes[i],
                    out.pred_masks[i],
                    self._image_hw,
                    threshold,
                    self.mask_threshold,
                    self.mask_in_box,
                    self.nms_iou,
                )
            )
        return preds

    def segment(
        self,
        image: np.ndarray | None = None,
        phrases: Sequence[str] | str | None = None,
        exemplars: Exemplars | Mapping[str, Exemplars] | None = None,
        threshold: float | None = None,
    ) -> dict[str, ConceptPrediction]:
        """All instances of each concept on ``image`` (or the image given to `set_image`).

        Parameters
        ----------
        image
            ``(H, W, 3)`` uint8 RGB; None reuses the last encoded image.
        phrases
            Noun phrases; all run in one batched forward sharing the image encoding.
        exemplars
            `Exemplars` for every phrase (or alone, as the phrase "visual"), or a mapping
            phrase -> `Exemplars`.
        threshold
            Overrides the segmenter's score threshold for this call.

        Returns
        -------
        dict[str, ConceptPrediction]
            Keyed by phrase, in the order given.
        """
        if image is not None:
            self.set_image(image)
        if self._vision is None:
            raise RuntimeError("no image: pass image= or call set_image(image) first.")
        prompts = concept_prompts(phrases, exemplars)
        # prompts with and without exemplars run in separate batches, so a batch never mixes
        # "no geometry" with padded geometry and equals the one-prompt-at-a-time result
        groups = [[p for p in prompts if p[1] is None], [p for p in prompts if p[1] is not None]]
        step = self.max_batch or len(prompts)
        thr = self.threshold if threshold is None else float(threshold)
        results: dict[str, ConceptPrediction] = {}
        for group in groups:
            for start in range(0, len(group), step):
                for pred in self._run(group[start : start + step], thr):
                    results[pred.phrase] = pred
        return {p: results[p] for p, _ in prompts}
