"""SAM2's memory path on transformers' ``Sam2VideoModel``, differentiable: one clip, N objects.

transformers' video inference (``propagate_in_video_iterator``) runs under ``inference_mode``,
one object at a time, and stores memories in bfloat16, so it cannot train. This module holds the
same steps as functions over a batch of N objects, with gradients, and is used twice: by
`samgap_lib.training.tasks.sam2_video` (the loss) and by `MemoryTracker` (inference, the
orchard-tiny SAM2 tracker). Each step follows ``transformers.models.sam2_video``:

- `clip_features`: the image encoder once per frame (levels 0 and 1 projected by the mask
  decoder's ``conv_s0`` / ``conv_s1``, as ``Sam2VideoModel.get_image_features``);
- a conditioning frame (prompts) is decoded from its own features plus ``no_memory_embedding``;
  any other frame from features conditioned on the `MemoryBank` by ``memory_attention`` (the
  steps of ``Sam2VideoModel._prepare_memory_conditioned_features``, with the helpers it uses to
  select memories: the conditioning frames at temporal slot 0, the last ``num_maskmem - 1``
  frames and the object pointers; its final reshape holds for one object only, so it is redone);
- `head`: prompt encoder and mask decoder, masks set to -1024 where the object score says the
  object is absent (``_single_frame_forward``);
- `encode_memory`: the memory encoder over the frame's features and the chosen mask (sigmoid in
  training; binarised at inference for frames decoded from prompts), plus the occlusion
  embedding where the object is absent (``_encode_new_memory``); kept in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...devices import resolve_device
from ..base import VideoResult, check_frames, check_prompts, video_object_ids
from ..dense import dense_spec, draw_dense_prompts

__all__ = [
    "NO_OBJ_SCORE",
    "HeadOut",
    "MaskletTracker",
    "MemoryBank",
    "MemoryTracker",
    "clip_features",
    "encode_memory",
    "frame_maps",
    "head",
    "memory_maps",
    "object_pointer",
]

NO_OBJ_SCORE = -1024.0  # transformers' and Meta's logit for "object absent"


@dataclass
class HeadOut:
    """One decoding of N objects: ``logits`` ``(N, C, h, w)`` low-resolution masks, ``ious``
    ``(N, C)``, ``tokens`` ``(N, C, D)`` SAM output tokens, ``obj`` ``(N, 1)`` object-score
    logits (C = 3 candidates with multimask output, else 1)."""

    logits: torch.Tensor
    ious: torch.Tensor
    tokens: torch.Tensor
    obj: torch.Tensor

    def best(self) -> torch.Tensor:
        """``(N,)`` index of the candidate with the highest predicted IoU."""
        return self.ious.argmax(dim=1)

    def chosen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The chosen mask logits ``(N, h, w)`` and SAM output token ``(N, D)``."""
        rows = torch.arange(self.logits.shape[0], device=self.logits.device)
        b = self.best()
        return self.logits[rows, b], self.tokens[rows, b]


def clip_features(model: Any, pixel: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Image features of ``(T, 3, S, S)`` frames: per level ``(HW, T, C)`` (levels 0 and 1
    projected for the mask decoder) and the positional encodings in the same layout."""
    out = model.get_image_features(pixel, return_dict=True)
    return list(out.fpn_hidden_states), list(out.fpn_position_encoding)


def _frame(levels: list[torch.Tensor], t: int, n: int) -> list[torch.Tensor]:
    return [f[:, t : t + 1].expand(-1, n, -1) for f in levels]


def _maps(model: Any, seq: list[torch.Tensor]) -> list[torch.Tensor]:
    """Sequence-first ``(HW, N, C)`` levels as ``(N, C, h, w)`` maps."""
    return [
        f.permute(1, 2, 0).reshape(f.shape[1], f.shape[2], *size)
        for f, size in zip(seq, model.backbone_feature_sizes[: len(seq)], strict=True)
    ]


def frame_maps(model: Any, feats: list[torch.Tensor], t: int, n: int) -> list[torch.Tensor]:
    """Decoder inputs of a conditioning frame ``t`` for ``n`` objects: its own features, the
    last level plus ``no_memory_embedding`` (as in ``_prepare_memory_conditioned_features``)."""
    seq = _frame(feats, t, n)
    seq[-1] = seq[-1] + model.no_memory_embedding
    return _maps(model, seq)


def memory_maps(
    model: Any,
    bank: MemoryBank,
    feats: list[torch.Tensor],
    pos: list[torch.Tensor],
    t: int,
    n: int,
) -> list[torch.Tensor]:
    """Decoder inputs of a tracked frame ``t``: the last level conditioned on ``bank`` by
    memory attention, the higher-resolution levels as they are."""
    seq = _frame(feats, t, n)
    cur, cur_pos = seq[-1], _frame(pos, t, n)[-1]
    # Steps 2-5 of Sam2VideoModel._prepare_memory_conditioned_features, whose final reshape
    # holds for one object only: the memories, the object pointers, memory attention.
    dev = cur.device
    frames = model._gather_memory_frame_outputs(bank, 0, t)
    memories, memory_pos = model._build_memory_attention_inputs(frames, dev)
    offsets, pointers, max_ptrs = model._get_object_pointers(bank, 0, t, bank.num_frames, dev)
    n_ptr = 0
    if pointers:
        ptr, ptr_pos = model._process_object_pointers(
            offsets, pointers, max_ptrs, n, model.hidden_dim, dev
        )
        memories.append(ptr)
        memory_pos.append(ptr_pos)
        n_ptr = ptr.shape[0]
    out = model.memory_attention(
        current_vision_features=cur,
        current_vision_position_embeddings=cur_pos,
        memory=torch.cat(memories, dim=0),
        memory_posision_embeddings=torch.cat(memory_pos, dim=0),
        num_object_pointer_tokens=n_ptr,
    )  # (1, N, HW, C)
    h, w = model.backbone_feature_sizes[-1]
    cond = out.reshape(n, h * w, -1).transpose(1, 2).reshape(n, -1, h, w)
    return _maps(model, seq[:-1]) + [cond]


def head(
    model: Any,
    maps: list[torch.Tensor],
    multimask: bool,
    input_points: torch.Tensor | None = None,
    input_labels: torch.Tensor | None = None,
    input_boxes: torch.Tensor | None = None,
    input_masks: torch.Tensor | None = None,
) -> HeadOut:
    """Prompt encoder and mask decoder on ``maps`` (one row per object). Points ``(N, 1, P,
    2)``, labels ``(N, 1, P)``, boxes ``(N, 1, 4)``, dense masks ``(N, 1, h, w)``; with no
    point and no box a padding point is sent, as ``Sam2VideoModel._single_frame_forward`` does."""
    n = maps[-1].shape[0]
    dev, dtype = maps[-1].device, maps[-1].dtype
    pe = model.get_image_wide_positional_embeddings().repeat(n, 1, 1, 1)
    if input_points is None and input_boxes is None:
        input_points = torch.zeros(n, 1, 1, 2, dtype=dtype, device=dev)
        input_labels = -torch.ones(n, 1, 1, dtype=torch.int32, device=dev)
    sparse, dense = model.prompt_encoder(
        input_points=input_points,
        input_labels=input_labels,
        input_boxes=input_boxes,
        input_masks=input_masks,
    )
    low, ious, tokens, obj = model.mask_decoder(
        image_embeddings=maps[-1],
        image_positional_embeddings=pe,
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
        high_resolution_features=maps[:-1],
    )
    obj = obj[:, 0]  # (N, 1)
    low = torch.where(obj[:, :, None, None] > 0, low[:, 0], NO_OBJ_SCORE)
    return HeadOut(logits=low, ious=ious[:, 0], tokens=tokens[:, 0], obj=obj)


def object_pointer(model: Any, token: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    """The object pointer of each object ``(N, D)``: the projected SAM token where the object
    is present, the learned ``no_object_pointer`` where it is not."""
    ptr = model.object_pointer_proj(token)
    present = (obj > 0).to(ptr.dtype)
    return present * ptr + (1 - present) * model.no_object_pointer


def encode_memory(
    model: Any,
    feats: list[torch.Tensor],
    t: int,
    logits: torch.Tensor,
    obj: torch.Tensor,
    binarize: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Memory of frame ``t`` for N objects from their chosen low-resolution ``logits`` ``(N, h,
    w)``: ``(HW', N, M)`` features and positional encodings."""
    n = logits.shape[0]
    cfg = model.config
    size = int(model.image_size)
    high = F.interpolate(
        logits[:, None].float(), size=(size, size), mode="bilinear", align_corners=False
    )
    mh, mw = (4 * int(s) for s in model.prompt_encoder.mask_input_size)
    if high.shape[-2:] != (mh, mw):
        high = F.interpolate(
            high, size=(mh, mw), mode="bilinear", align_corners=False, antialias=True
        )
    mask = (high > 0).to(high.dtype) if binarize else torch.sigmoid(high)
    mask = mask * cfg.sigmoid_scale_for_mem_enc + cfg.sigmoid_bias_for_mem_enc
    last = feats[-1][:, t : t + 1].expand(-1, n, -1)
    h, w = model.backbone_feature_sizes[-1]
    pix = last.permute(1, 2, 0).reshape(n, -1, h, w)
    feat, pos = model.memory_encoder(pix, mask)
    occl = model.occlusion_spatial_embedding_parameter
    if occl is not None:
        absent = 1.0 - (obj > 0).to(feat.dtype).view(n, 1, 1, 1)
        feat = feat + absent * occl.view(1, -1, 1, 1)
    return feat.flatten(2).permute(2, 0, 1), pos.to(feat.dtype).flatten(2).permute(2, 0, 1)


class MemoryBank:
    """The memories of N objects tracked together through one clip, in the layout
    ``Sam2VideoModel._prepare_memory_conditioned_features`` reads (one "object" whose batch
    axis holds the N objects)."""

    dtype = torch.float32

    def __init__(self, n_frames: int) -> None:
        self.num_frames = int(n_frames)
        self.output_dict_per_obj: dict[int, dict[str, dict[int, dict[str, torch.Tensor]]]] = {
            0: {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        }

    def store(
        self, t: int, cond: bool, memory: tuple[torch.Tensor, torch.Tensor], pointer: torch.Tensor
    ) -> None:
        """Keep frame ``t``'s memory and object pointers (a conditioning frame when ``cond``)."""
        key = "cond_frame_outputs" if cond else "non_cond_frame_outputs"
        self.output_dict_per_obj[0][key][t] = {
            "maskmem_features": memory[0],
            "maskmem_pos_enc": memory[1],
            "object_pointer": pointer,
        }


class MemoryTracker:
    """Geometric prompts on the first frame, propagated by a ``Sam2VideoModel`` through its
    memory, all objects at once (the orchard-tiny SAM2 tracker; the role of
    `HFSam2VideoPropagator`, whose transformers inference cannot draw the dense prompts the
    miniature was trained with).

    Parameters
    ----------
    model, processor
        A ``Sam2VideoModel`` and its ``Sam2Processor`` (normalisation and resizing).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    After `propagate`, ``logits`` holds the low-resolution mask logits ``(T, N, h, w)`` of that
    call (objects in id order), for inspection.
    """

    backend = "transformers"

    def __init__(self, model: Any, processor: Any, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.spec = dense_spec(model)
        self.logits: torch.Tensor | None = None

    def _pixels(self, frames: list[np.ndarray]) -> torch.Tensor:
        ip = self.processor.image_processor
        px = ip(images=frames, return_tensors="pt")["pixel_values"]
        return px.to(self.device, torch.float32)

    @torch.inference_mode()
    def propagate(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        frame_idx: int = 0,
        obj_ids: Sequence[int] | None = None,
    ) -> VideoResult:
        """Track N objects prompted on frame ``frame_idx`` (only 0: forward propagation) to the
        end of the video; prompts in pixels of the frames, as `PromptSegmenter.predict`."""
        frames = check_frames(frames)
        if frame_idx != 0:
            raise ValueError(
                "MemoryTracker propagates forward from frame 0; got frame_idx "
                f"{frame_idx}. Cut the video to start at the prompted frame."
            )
        p = check_prompts(points, point_labels, boxes)
        ids = video_object_ids(obj_ids, p.n)
        model = self.model
        hw = frames[0].shape[:2]
        size = int(model.image_size)
        sx, sy = size / hw[1], size / hw[0]
        n = p.n
        pts = lab = bxs = None
        kwargs: dict[str, Any] = {}
        if p.points is not None:
            pts = (p.points * np.array([sx, sy], np.float32)).astype(np.float32)
            lab = p.labels.astype(np.int64)
            kwargs["input_points"] = torch.from_numpy(pts).to(self.device)[:, None]
            kwargs["input_labels"] = torch.from_numpy(lab).to(self.device)[:, None]
        if p.boxes is not None:
            bxs = (p.boxes * np.array([sx, sy, sx, sy], np.float32)).astype(np.float32)
            kwargs["input_boxes"] = torch.from_numpy(bxs).to(self.device)[:, None]
        if self.spec:
            mask_hw = tuple(int(s) for s in model.prompt_encoder.mask_input_size)
            dense = draw_dense_prompts(
                pts,
                lab,
                bxs,
                None,
                (size, size),
                mask_hw,
                self.spec.get("radius", 1.5),
                self.spec.get("logit", 10.0),
                self.spec.get("first_radius"),
            )
            kwargs["input_masks"] = torch.from_numpy(dense).to(self.device)
        multimask = bxs is None and pts is not None and pts.shape[1] == 1
        feats, pos = clip_features(model, self._pixels(frames))
        bank = MemoryBank(len(frames))
        masks = np.zeros((len(frames), n, *hw), bool)
        lows = []
        scores = np.zeros((len(frames), n), np.float32)
        for t in range(len(frames)):
            if t == 0:
                out = head(model, frame_maps(model, feats, 0, n), multimask, **kwargs)
            else:
                out = head(model, memory_maps(model, bank, feats, pos, t, n), True)
            low, token = out.chosen()
            bank.store(
                t,
                t == 0,
                encode_memory(model, feats, t, low, out.obj, binarize=t == 0),
                object_pointer(model, token, out.obj),
            )
            lows.append(low.float().cpu())
            up = F.interpolate(low[:, None].float(), size=hw, mode="bilinear", align_corners=False)
            masks[t] = (up[:, 0] > 0).cpu().numpy()
            scores[t] = out.obj[:, 0].float().cpu().numpy()
        order = np.argsort(ids, kind="stable")  # VideoResult keeps objects in id order
        self.logits = torch.stack(lows)[:, torch.from_numpy(order)]
        return VideoResult(
            object_ids=[ids[k] for k in order],
            masks=masks[:, order],
            scores=scores[:, order],
            processed=list(range(len(frames))),
        )


class MaskletTracker:
    """SAM 3's tracker role played by a SAM2 video model: masklets handed from frame to frame,
    each with its own memory (`samgap_lib.evaluation.detect_then_track` calls `propagate`).

    A masklet's mask on frame ``t - 1`` that the tracker did not predict itself (a new
    detection, or a detection that re-prompts it) is drawn into the dense mask input of frame
    ``t - 1``, as the miniature was trained to read a previous mask, decoded without memory, and
    stored as a conditioning frame; frame ``t`` is then decoded from that memory and the
    masklet's earlier frames.

    Parameters
    ----------
    model, processor, device
        As `MemoryTracker`.
    frames
        The video ``(T, H, W, 3)``; every frame is encoded once, up front.
    """

    backend = "transformers"

    def __init__(
        self,
        model: Any,
        processor: Any,
        frames: Sequence[np.ndarray] | np.ndarray,
        device: str | torch.device = "auto",
    ) -> None:
        self._inner = MemoryTracker(model, processor, device)
        self.model = self._inner.model
        self.frames = check_frames(frames)
        self.hw = self.frames[0].shape[:2]
        with torch.inference_mode():
            self.feats, self.pos = clip_features(self.model, self._inner._pixels(self.frames))
        self.banks: dict[Any, MemoryBank] = {}
        self.last: dict[Any, tuple[int, np.ndarray]] = {}

    def _mask_logits(self, mask: np.ndarray) -> torch.Tensor:
        h, w = (int(s) for s in self.model.prompt_encoder.mask_input_size)
        m = torch.from_numpy(np.asarray(mask, np.float32))[None, None].to(self._inner.device)
        m = F.interpolate(m, size=(h, w), mode="area")
        logit = float((self._inner.spec or {}).get("logit", 10.0))
        return torch.where(m > 0.5, logit, -logit)

    @torch.inference_mode()
    def propagate(self, key: Any, mask: np.ndarray, t: int) -> np.ndarray:
        """Masklet ``key``'s mask on frame ``t`` from its ``mask`` on frame ``t - 1``."""
        model = self.model
        bank = self.banks.setdefault(key, MemoryBank(len(self.frames)))
        prev = self.last.get(key)
        if prev is None or prev[0] != t - 1 or not np.array_equal(prev[1], mask):
            out = head(
                model,
                frame_maps(model, self.feats, t - 1, 1),
                False,
                input_masks=self._mask_logits(mask),
            )
            _, token = out.chosen()
            present = torch.ones_like(out.obj)  # the given mask says the object is there
            bank.store(
                t - 1,
                True,
                encode_memory(
                    model, self.feats, t - 1, self._mask_logits(mask)[:, 0], present, binarize=True
                ),
                object_pointer(model, token, present),
            )
        out = head(model, memory_maps(model, bank, self.feats, self.pos, t, 1), True)
        low, token = out.chosen()
        bank.store(
            t,
            False,
            encode_memory(model, self.feats, t, low, out.obj, binarize=False),
            object_pointer(model, token, out.obj),
        )
        up = F.interpolate(low[:, None].float(), size=self.hw, mode="bilinear", align_corners=False)
        pred = (up[0, 0] > 0).cpu().numpy()
        self.last[key] = (t, pred)
        return pred
