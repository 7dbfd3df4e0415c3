"""`PromptSegmenter` on Meta's ``sam2`` package (``SAM2ImagePredictor``), plus loading.

Meta's predictor already decodes several objects in one call (``B x 4`` boxes, ``B x P x 2``
points); this wrapper feeds it all objects at once, keeps numpy in/out and the samgap result
types. Checkpoints are Meta ``.pt`` files (``{"model": state_dict}``) built from a hydra config;
a ``<name>.samgap.json`` beside a file records the config and overrides (tiny checkpoints).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
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
from ..loading import CheckpointMismatchError, CheckpointNotFoundError, is_hub_id, resolve_source
from ..upsample import upsample_masks

__all__ = [
    "MetaSam2PromptSegmenter",
    "load_meta_sam2",
    "build_meta_sam2",
    "reduced_resolution_overrides",
]

# file-name stems of Meta's released checkpoints -> hydra config
_CONFIG_BY_STEM = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2_hiera_tiny": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_small": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_base_plus": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_large": "configs/sam2/sam2_hiera_l.yaml",
}
SIDE_CAR = ".samgap.json"


def reduced_resolution_overrides(size: int) -> list[str]:
    """Run a released config at ``size`` px (REFERENCE "fast test variant"), e.g. 256."""
    feat = size // 16
    mem = "++model.memory_attention.layer"
    return [
        f"++model.image_size={size}",
        f"{mem}.self_attention.feat_sizes=[{feat},{feat}]",
        f"{mem}.cross_attention.feat_sizes=[{feat},{feat}]",
    ]


def build_meta_sam2(
    config: str,
    ckpt_path: str | os.PathLike | None,
    device: str | torch.device = "cpu",
    overrides: Sequence[str] = (),
    video: bool = False,
) -> Any:
    """Meta ``build_sam2`` (or the video predictor) with checkpoint errors made clear."""
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    builder = build_sam2_video_predictor if video else build_sam2
    try:
        return builder(
            config,
            None if ckpt_path is None else os.fspath(ckpt_path),
            device=str(device),
            hydra_overrides_extra=list(overrides),
        )
    except RuntimeError as exc:
        raise CheckpointMismatchError(
            f"{ckpt_path}: the weights do not fit config {config} with overrides {list(overrides)} "
            f"({str(exc)[:300]}). Pass the config the checkpoint was trained with (config=...)."
        ) from exc
    except KeyError as exc:
        raise CheckpointMismatchError(
            f"{ckpt_path} is not a Meta SAM2 checkpoint (no 'model' entry: {exc}); for transformers "
            "folders use backend='transformers'."
        ) from exc


def _find_pt(folder: Path) -> Path:
    pts = sorted(folder.glob("*.pt"))
    if len(pts) != 1:
        raise CheckpointNotFoundError(
            f"{folder}: expected exactly one Meta .pt checkpoint, found {[p.name for p in pts]}. Set "
            "the path to the .pt file itself."
        )
    return pts[0]


def load_meta_sam2(
    source: str | os.PathLike,
    device: str | torch.device = "auto",
    *,
    config: str | None = None,
    overrides: Sequence[str] = (),
    revision: str | None = None,
    token: str | bool | None = None,
    video: bool = False,
) -> Any:
    """Build Meta's SAM2 (``SAM2Base``, or ``SAM2VideoPredictor`` with ``video``) from a source.

    The hydra config comes from ``config=``, a ``.samgap.json`` beside the checkpoint, the hub
    id or the file name of a released checkpoint, in that order.
    """
    dev = resolve_device(device)
    extra = list(overrides)
    if is_hub_id(source):
        from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

        repo = os.fspath(source)
        if repo not in HF_MODEL_ID_TO_FILENAMES:
            raise CheckpointNotFoundError(
                f"{repo} is not a Meta SAM2 checkpoint on the hub; choose one of "
                f"{sorted(HF_MODEL_ID_TO_FILENAMES)} or set the path to a .pt file."
            )
        default_cfg, filename = HF_MODEL_ID_TO_FILENAMES[repo]
        ckpt = resolve_source(repo, filename=filename, revision=revision, token=token).path
        config = config or default_cfg
    else:
        path = resolve_source(source, what="Meta SAM2 checkpoint").path
        ckpt = _find_pt(path) if path.is_dir() else path
        side = ckpt.with_name(ckpt.stem + SIDE_CAR)
        if side.is_file():
            meta = json.loads(side.read_text())
            config = config or meta["config"]
            extra = list(meta.get("overrides", [])) + extra
        config = config or _CONFIG_BY_STEM.get(ckpt.stem)
        if config is None:
            raise CheckpointMismatchError(
                f"cannot tell which SAM2 config {ckpt.name} was trained with; pass config= (e.g. "
                "'configs/sam2.1/sam2.1_hiera_l.yaml') or keep Meta's file name."
            )
    return build_meta_sam2(config, ckpt, dev, extra, video=video)


def _feat_sizes(image_size: int) -> list[tuple[int, int]]:
    return [(image_size // 4,) * 2, (image_size // 8,) * 2, (image_size // 16,) * 2]


def decode_low_res(
    pred: Any,
    prompts: CheckedPrompts,
    multimask: bool,
    img_idx: int = -1,
    fill_holes: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Meta's own ``_prep_prompts`` + ``_predict`` on a SAM2-style image predictor (SAM2's
    ``SAM2ImagePredictor``, SAM3's tracker predictor), with the mask logits left at low
    resolution: ``(logits, scores, clamped low-res logits)``.

    For this one call the predictor's ``postprocess_masks`` runs at the logits' own size, where
    its resize is the identity, so only its hole filling / sprinkle removal acts (when
    ``fill_holes``; None: when the predictor is configured for it). Meta fills before it
    resizes, so `upsample_masks` on the result gives Meta's masks, resized crop by crop.
    """
    post = pred._transforms
    if fill_holes is None:
        fill_holes = post.max_hole_area > 0 or post.max_sprinkle_area > 0

    def low_res(masks: torch.Tensor, orig_hw: Any) -> torch.Tensor:
        if not fill_holes:
            return masks
        return type(post).postprocess_masks(post, masks, tuple(masks.shape[-2:]))

    post.postprocess_masks = low_res
    try:
        mask_t, coords, labels, box = pred._prep_prompts(
            prompts.points, prompts.labels, prompts.boxes, prompts.mask_input, True, img_idx=img_idx
        )
        return pred._predict(
            coords,
            labels,
            box,
            mask_t,
            multimask_output=multimask,
            return_logits=True,
            img_idx=img_idx,
        )
    finally:
        post.__dict__.pop("postprocess_masks", None)


class MetaSam2PromptSegmenter:
    """Geometric prompts on Meta's ``SAM2ImagePredictor``.

    Parameters
    ----------
    model
        ``SAM2Base`` from `load_meta_sam2` (any image size; the predictor's feature sizes are
        set from ``model.image_size``).
    use_autocast
        bfloat16 autocast on CUDA.
    """

    backend = "meta"

    def __init__(self, model: Any, use_autocast: bool = True, mask_threshold: float = 0.0) -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.model = model.eval()
        self.predictor = SAM2ImagePredictor(model, mask_threshold=mask_threshold)
        self.predictor._bb_feat_sizes = _feat_sizes(int(model.image_size))
        self.device = self.predictor.device
        self.amp_dtype = autocast_dtype(self.device, use_autocast)
        self.input_size = int(model.image_size)
        self.name = "sam2"
        self.objects_per_call = objects_per_call(self.device)

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` (``(H, W, 3)`` uint8 RGB) once."""
        image = check_image(image)
        with torch.inference_mode(), autocast(self.device, self.amp_dtype):
            self.predictor.set_image(image)

    def _decode(self, prompts: CheckedPrompts, multimask: bool, img_idx: int = -1) -> PromptResult:
        sparse = prompts.points is not None or prompts.boxes is not None
        # mask-only prompts go one by one: Meta's decoder repeats the image only for sparse ones
        group = (self.objects_per_call or prompts.n) if sparse else 1
        if prompts.n > group:
            return concat_results(
                [self._decode(p, multimask, img_idx) for p in split_prompts(prompts, group)]
            )
        pred = self.predictor
        with torch.inference_mode(), autocast(self.device, self.amp_dtype):
            masks, scores, low = decode_low_res(pred, prompts, multimask, img_idx)
        masks_np = upsample_masks(masks, pred._orig_hw[img_idx], pred.mask_threshold)
        return prompt_result(masks_np, scores, low, multimask)

    def predict(
        self,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
    ) -> PromptResult:
        """Same contract as `HFPromptSegmenter.predict` (all objects in one decoder call)."""
        if not self.predictor._is_image_set or self.predictor._is_batch:
            raise RuntimeError("no image set: call set_image(image) first.")
        return self._decode(check_prompts(points, point_labels, boxes, mask_input), multimask)

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        prompts: Sequence[Mapping[str, Any]],
        multimask: bool = True,
    ) -> list[PromptResult]:
        """Encode the images as one batch (``set_image_batch``), then decode each image's prompts."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompt sets.")
        if not images:
            return []
        checked = [check_image(im, what=f"image {i}") for i, im in enumerate(images)]
        with torch.inference_mode(), autocast(self.device, self.amp_dtype):
            self.predictor.set_image_batch(checked)
        try:
            return [
                self._decode(check_prompts(**pr), multimask, img_idx=i)
                for i, pr in enumerate(prompts)
            ]
        finally:
            self.predictor.reset_predictor()
