"""`PromptSegmenter` on Hugging Face transformers: ``Sam2Model`` and ``Sam3TrackerModel``.

Both models share the SAM2 interface: the image is resized (not padded) to the model's square
input size ``S``, so a point ``(x, y)`` in pixels of an ``H x W`` image reaches the prompt
encoder as ``(x * S / W, y * S / H)`` (what ``Sam2Processor`` does). The image is encoded once
(`set_image`); each `predict` call decodes every object in one batched forward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from samgap_lib.data.types import check_image

from ...devices import autocast, autocast_dtype, resolve_device
from ..base import (
    CheckedPrompts,
    PromptResult,
    check_prompts,
    concat_results,
    objects_per_call,
    prompt_result,
    split_prompts,
)
from ..upsample import upsample_masks

__all__ = ["HFPromptSegmenter", "scale_coords"]


def scale_coords(coords: np.ndarray, image_hw: tuple[int, int], target: int) -> np.ndarray:
    """Scale ``(..., 2k)`` xy pixel coordinates of an ``image_hw`` image to a ``target`` square."""
    h, w = image_hw
    out = np.array(coords, dtype=np.float32, copy=True)
    out[..., 0::2] *= target / w
    out[..., 1::2] *= target / h
    return out


class HFPromptSegmenter:
    """Geometric prompts on a transformers ``Sam2Model`` or ``Sam3TrackerModel``.

    Parameters
    ----------
    model
        The model (eval mode is set here).
    processor
        Its processor (``Sam2Processor`` / ``Sam3TrackerProcessor``); its image processor turns
        images into ``pixel_values``.
    device
        ``"auto"`` (cuda, mps, cpu), or any torch device.
    use_autocast
        bfloat16 autocast on CUDA (the SAM models run in bf16 there); outputs are float32.
    name
        A label for reports ("sam2", "sam3-tracker").
    """

    backend = "transformers"

    def __init__(
        self,
        model: Any,
        processor: Any,
        device: str | torch.device = "auto",
        use_autocast: bool = True,
        name: str = "sam2",
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.name = name
        self.amp_dtype = autocast_dtype(self.device, use_autocast)
        # objects per mask-decoder call (CPU: small groups run faster than one big batch)
        self.objects_per_call = objects_per_call(self.device)
        pe = self.model.prompt_encoder
        self.input_size = int(pe.input_image_size)
        self.mask_input_size = tuple(int(s) for s in pe.mask_input_size)
        proc_size = processor.image_processor.size["height"]
        if proc_size != self.input_size:
            raise ValueError(
                f"processor resizes to {proc_size} px but the model's prompt encoder expects "
                f"{self.input_size}; save the processor with the model's image size."
            )
        self._embeddings: list[torch.Tensor] | None = None
        self._image_hw: tuple[int, int] | None = None

    # ------------------------------------------------------------------ image encoding

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``(B, 3, S, S)`` pixel values of RGB uint8 images (resize, rescale, normalise)."""
        checked = [check_image(im) for im in images]
        out = self.processor.image_processor(images=checked, return_tensors="pt")
        return out["pixel_values"].to(self.device)

    @torch.inference_mode()
    def encode(self, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Image embeddings (one tensor per feature level, batch first) of several images."""
        pixel_values = self.preprocess(images)
        with autocast(self.device, self.amp_dtype):
            emb = self.model.get_image_embeddings(pixel_values)
        return [e.float() for e in emb]

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` (``(H, W, 3)`` uint8 RGB) once for the following `predict` calls."""
        image = check_image(image)
        self._embeddings = self.encode([image])
        self._image_hw = (int(image.shape[0]), int(image.shape[1]))

    @property
    def image_embeddings(self) -> tuple[list[torch.Tensor], tuple[int, int]]:
        """The cached embeddings and image size (reuse them with `set_image_embeddings`)."""
        if self._embeddings is None or self._image_hw is None:
            raise RuntimeError("no image set: call set_image(image) first.")
        return self._embeddings, self._image_hw

    def set_image_embeddings(
        self, embeddings: list[torch.Tensor], image_hw: tuple[int, int]
    ) -> None:
        """Use embeddings computed before (e.g. cached on disk) instead of encoding again."""
        self._embeddings = [e.to(self.device) for e in embeddings]
        self._image_hw = (int(image_hw[0]), int(image_hw[1]))

    # ------------------------------------------------------------------ decoding

    def model_inputs(self, prompts: CheckedPrompts, image_hw: tuple[int, int]) -> dict[str, Any]:
        """The prompt tensors the model receives for ``prompts`` on an ``image_hw`` image.

        Objects go on the model's point-batch axis (one image embedding, decoded N times), or
        on the batch axis when mask inputs are given (the dense prompt is per object).
        """
        n, s, dev = prompts.n, self.input_size, self.device
        per_object_batch = prompts.mask_input is not None
        shape = (n, 1) if per_object_batch else (1, n)
        inputs: dict[str, Any] = {}
        if prompts.points is not None:
            pts = scale_coords(prompts.points, image_hw, s)
            inputs["input_points"] = torch.from_numpy(pts).to(dev).reshape(*shape, *pts.shape[1:])
            inputs["input_labels"] = (
                torch.from_numpy(prompts.labels).to(dev).reshape(*shape, prompts.labels.shape[1])
            )
        if prompts.boxes is not None:
            bxs = scale_coords(prompts.boxes, image_hw, s)
            inputs["input_boxes"] = torch.from_numpy(bxs).to(dev).reshape(*shape, 4)
        if per_object_batch:
            inputs["input_masks"] = torch.from_numpy(prompts.mask_input).to(dev)
        return inputs

    @torch.inference_mode()
    def _decode(
        self,
        embeddings: list[torch.Tensor],
        image_hw: tuple[int, int],
        prompts: CheckedPrompts,
        multimask: bool,
    ) -> PromptResult:
        if self.objects_per_call and prompts.n > self.objects_per_call:
            return concat_results(
                [
                    self._decode(embeddings, image_hw, p, multimask)
                    for p in split_prompts(prompts, self.objects_per_call)
                ]
            )
        inputs = self.model_inputs(prompts, image_hw)
        if "input_masks" in inputs:
            embeddings = [e.expand(prompts.n, *e.shape[1:]) for e in embeddings]
        with autocast(self.device, self.amp_dtype):
            out = self.model(image_embeddings=embeddings, multimask_output=multimask, **inputs)
        return self._postprocess(out, prompts.n, image_hw, multimask)

    def _postprocess(
        self, out: Any, n: int, image_hw: tuple[int, int], multimask: bool
    ) -> PromptResult:
        low = out.pred_masks.float()
        low = low.reshape(n, -1, *low.shape[-2:])  # (N, C, h, w)
        scores = out.iou_scores.float().reshape(n, -1)
        obj = out.object_score_logits.float().reshape(n, -1)[:, 0]
        masks_np = upsample_masks(low, image_hw)
        return prompt_result(masks_np, scores, low.clamp(-32.0, 32.0), multimask, obj)

    def predict(
        self,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
    ) -> PromptResult:
        """Masks for one or many objects on the image given to `set_image`.

        Parameters
        ----------
        points
            ``(P, 2)`` xy pixels for one object or ``(N, P, 2)`` for N objects.
        point_labels
            ``(P,)`` / ``(N, P)``: 1 foreground, 0 background, -1 padding (default all 1).
        boxes
            ``(4,)`` / ``(N, 4)`` xyxy pixels.
        mask_input
            Low-res logits from a previous result (``low_res_logits`` of one candidate).
        multimask
            Three candidate masks per object (True) or one (False).

        Returns
        -------
        PromptResult
            ``masks`` ``(N, C, H, W)`` (or ``(N, H, W)``), ``scores``, ``low_res_logits``.
        """
        embeddings, image_hw = self.image_embeddings
        prompts = check_prompts(points, point_labels, boxes, mask_input)
        return self._decode(embeddings, image_hw, prompts, multimask)

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        prompts: Sequence[Mapping[str, Any]],
        multimask: bool = True,
    ) -> list[PromptResult]:
        """Encode several images in one batch, then decode each image's prompts.

        Parameters
        ----------
        images
            RGB uint8 images (sizes may differ).
        prompts
            One mapping per image with the keyword arguments of `predict`
            (``points``, ``point_labels``, ``boxes``, ``mask_input``).
        """
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompt sets.")
        if not images:
            return []
        checked = [check_image(im, what=f"image {i}") for i, im in enumerate(images)]
        emb = self.encode(checked)
        results = []
        for i, (img, pr) in enumerate(zip(checked, prompts, strict=True)):
            unknown = set(pr) - {"points", "point_labels", "boxes", "mask_input"}
            if unknown:
                raise ValueError(f"prompts[{i}]: unknown keys {sorted(unknown)}.")
            p = check_prompts(**pr)
            results.append(self._decode([e[i : i + 1] for e in emb], img.shape[:2], p, multimask))
        return results
