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

from ...devices import autocast, autocast_dtype, resolve_device
from ..base import ConceptPrediction, Exemplars, concept_prompts
from ..postprocess import (
    postprocess_spec,
    select_instances,
    xyxy_to_cxcywh_norm,
)

__all__ = ["HFConceptSegmenter", "TEXT_MAX_LENGTH"]

TEXT_MAX_LENGTH = 32  # what Sam3Processor pads phrases to


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
