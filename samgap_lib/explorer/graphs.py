"""The explorer's graphs as torch modules, each self-contained so the browser does nothing that
could differ between browsers.

Six graphs (`build_graphs`), all batch 1, all fed the explorer's square RGB image as shipped
(``uint8 (S, S, 3)``, `EXPLORER_SIZE` px):

``sam2_encoder``
    image -> the three SAM2 image embeddings. Once per image.
``sam2_decoder``
    embeddings + clicks (pixels of the image, labels 1/0) + the previous low-resolution logits
    (zeros and ``has_prev = 0`` at the first click) -> four candidates' low-resolution logits,
    predicted IoU and logits at image size. Once per click.
``sam2_box_decoder``
    the same for one box prompt (no clicks).
``sam3_vision``
    image -> SAM3's two FPN levels the detector reads. Once per image.
``sam3_text``
    token ids + attention mask of one phrase -> text features. Once per phrase (any image).
``sam3_detector``
    FPN levels + text features + attention mask -> every query's score, box in pixels and mask
    at image size (cut to its box). Once per (image, phrase).

Image pre-processing happens in-graph and equals the transformers image processor bit for bit
(`ProcessorInput`: its uint8 antialiased bilinear resize in the same fixed-point arithmetic,
then its fused rescale-and-normalise). The clicks and the box are drawn into SAM2's dense mask
prompt in-graph (`draw_dense_prompts_torch`, the twin of
`samgap_lib.models.dense.draw_dense_prompts`); masks are resized with the weights of
`samgap_lib.models.upsample.bilinear_matrix`, as `upsample_masks` resizes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..models.upsample import bilinear_matrix

__all__ = [
    "EXPLORER_SIZE",
    "ProcessorInput",
    "Sam2BoxDecoder",
    "Sam2Decoder",
    "Sam2Encoder",
    "Sam3Detector",
    "Sam3Text",
    "Sam3Vision",
    "build_graphs",
    "draw_dense_prompts_torch",
    "uint8_resize_weights",
]

EXPLORER_SIZE = 224  # px: SAM3's input size; SAM2's graphs resize to its 256 in-graph


# ----------------------------------------------------------------------------- image input


def _aa_bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` float64 weights of torch's antialiased bilinear resize (PIL's filter)."""
    scale = n_in / n_out
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        taps = np.array([max(0.0, 1.0 - abs((j - center + 0.5) * inv)) for j in range(lo, hi)])
        if taps.sum() > 0:
            w[i, lo:hi] = taps / taps.sum()
    return w


def uint8_resize_weights(n_in: int, n_out: int) -> tuple[np.ndarray, int]:
    """Fixed-point weights of torch's uint8 antialiased bilinear resize along one axis.

    torch (and so the transformers image processor, through torchvision) resizes uint8 images
    with int16 weights ``round(w * 2**p)`` and rounds each output as
    ``(sum(w_int * x) + 2**(p-1)) >> p``, clamped to 0..255, the horizontal pass first. Returns
    the integer weights ``(n_out, n_in)`` (as float64) and ``p``. Every product and sum is an
    integer below 2**24, so float32 matrix products reproduce it exactly.
    """
    w = _aa_bilinear_weights(n_in, n_out)
    w_max = float(w.max())
    precision = 0
    while precision < 22 and int(0.5 + w_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    v = w * (1 << precision)
    return np.where(v < 0, np.trunc(v - 0.5), np.trunc(v + 0.5)), precision


class ProcessorInput(nn.Module):
    """``uint8 (H, W, 3)`` image -> ``(1, 3, S, S)`` float32 pixel values, equal to what the
    transformers image processor saved with the model gives (resize, rescale, normalise)."""

    def __init__(self, image_hw: tuple[int, int], image_processor: Any) -> None:
        super().__init__()
        size = image_processor.size
        self.out_hw = (int(size["height"]), int(size["width"]))
        self.resize_h = self.out_hw[0] != image_hw[0]
        self.resize_w = self.out_hw[1] != image_hw[1]
        wy, py = uint8_resize_weights(image_hw[0], self.out_hw[0])
        wx, px = uint8_resize_weights(image_hw[1], self.out_hw[1])
        self.register_buffer("wy", torch.tensor(wy, dtype=torch.float32))
        self.register_buffer("wx_t", torch.tensor(wx.T.copy(), dtype=torch.float32))
        self.py, self.px = float(1 << py), float(1 << px)
        # the processor's fused rescale + normalise: (x - mean / r) / (std / r), in float32
        r = float(image_processor.rescale_factor)
        mean = torch.tensor(image_processor.image_mean) * (1.0 / r)
        std = torch.tensor(image_processor.image_std) * (1.0 / r)
        self.register_buffer("mean", mean.float().reshape(3, 1, 1))
        self.register_buffer("std", std.float().reshape(3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(2, 0, 1).to(torch.float32)  # (3, H, W)
        if self.resize_w:  # horizontal pass first, rounded to uint8 as torch does
            x = torch.floor((x @ self.wx_t + self.px / 2) / self.px).clamp(0.0, 255.0)
        if self.resize_h:
            x = torch.floor((self.wy @ x + self.py / 2) / self.py).clamp(0.0, 255.0)
        return ((x - self.mean) / self.std).unsqueeze(0)


def _upsample(logits: torch.Tensor, ay: torch.Tensor, ax_t: torch.Tensor) -> torch.Tensor:
    """``(..., h, w)`` logits -> ``(..., H, W)``: bilinear, align_corners=False, as
    `upsample_masks` computes it (``Ay @ (L @ Ax.T)``)."""
    return ay @ (logits @ ax_t)


# ----------------------------------------------------------------------------- SAM2


def draw_dense_prompts_torch(
    points: torch.Tensor | None,
    labels: torch.Tensor | None,
    boxes: torch.Tensor | None,
    prev_logits: torch.Tensor | None,
    has_prev: torch.Tensor | None,
    image_hw: tuple[int, int],
    mask_hw: tuple[int, int],
    radius: float = 1.5,
    logit: float = 10.0,
    first_radius: float | None = None,
) -> torch.Tensor:
    """Torch twin of `samgap_lib.models.dense.draw_dense_prompts`, without Python loops over
    clicks (any number of clicks in one exported graph).

    Parameters are as there, as tensors, plus ``has_prev`` ``(N,)`` float: where it is > 0.5
    the base is ``prev_logits`` clipped to +-``logit`` (as when the numpy function is given
    them), else the filled box or zeros (as when it is given None). Labels other than 1 and 0
    paint nothing. Where several clicks cover a pixel the last one wins, as the numpy loop paints
    them in order. Returns ``(N, 1, h, w)`` float32.

    Equal to the numpy function for clicks at integer (or half-integer) pixels: the disc test
    runs in float32 here, in float64 there, and for such clicks no pixel centre lies within
    float32 rounding of a disc's edge.
    """
    h, w = mask_hw
    sy, sx = h / image_hw[0], w / image_hw[1]
    ref = next(t for t in (points, boxes, prev_logits) if t is not None)
    n = ref.shape[0]
    dev = ref.device
    yy = (torch.arange(h, dtype=torch.float32, device=dev) + 0.5).reshape(1, h, 1)
    xx = (torch.arange(w, dtype=torch.float32, device=dev) + 0.5).reshape(1, 1, w)
    sx_t = torch.tensor(sx, dtype=torch.float32, device=dev)
    sy_t = torch.tensor(sy, dtype=torch.float32, device=dev)
    pos = torch.tensor(logit, dtype=torch.float32, device=dev)
    if boxes is not None:
        b = boxes.to(torch.float32).reshape(n, 4, 1, 1)
        inside = (
            (xx >= b[:, 0] * sx_t)
            & (xx <= b[:, 2] * sx_t)
            & (yy >= b[:, 1] * sy_t)
            & (yy <= b[:, 3] * sy_t)
        )
        base = torch.where(inside, pos, -pos)
    else:
        base = torch.zeros(n, h, w, dtype=torch.float32, device=dev)
    if prev_logits is not None:
        prev = prev_logits.to(torch.float32).reshape(n, h, w).clamp(-logit, logit)
        if has_prev is None:
            base = prev
        else:
            base = torch.where(has_prev.reshape(n, 1, 1) > 0.5, prev, base)
    if points is not None:
        pts = points.to(torch.float32)
        lab = labels.to(torch.float32)
        k = torch.arange(pts.shape[1], device=dev)
        r = torch.full(k.shape, radius, dtype=torch.float32, device=dev)
        if first_radius is not None:
            r = torch.where(k == 0, torch.tensor(first_radius, dtype=torch.float32), r)
        cx = ((pts[..., 0] + 0.5) * sx_t)[..., None, None]  # (N, P, 1, 1)
        cy = ((pts[..., 1] + 0.5) * sy_t)[..., None, None]
        d2 = (xx[:, None] - cx) ** 2 + (yy[:, None] - cy) ** 2  # (N, P, h, w)
        paints = ((lab == 1.0) | (lab == 0.0))[..., None, None]
        disc = (d2 <= (r * r)[None, :, None, None]) & paints
        # the last click covering a pixel: argmax of (k + 1) over the covering clicks
        order = (k + 1).to(torch.float32)[None, :, None, None]
        last = torch.argmax(disc.to(torch.float32) * order, dim=1, keepdim=True)  # (N,1,h,w)
        lab_last = torch.gather(lab[..., None, None].expand(-1, -1, h, w), 1, last)[:, 0]
        value = torch.where(lab_last == 1.0, pos, -pos)
        base = torch.where(disc.any(dim=1), value, base)
    return base.reshape(n, 1, h, w)


class Sam2Encoder(nn.Module):
    """``image`` uint8 ``(S, S, 3)`` -> ``emb_s0``, ``emb_s1``, ``emb`` (the three tensors of
    ``Sam2Model.get_image_embeddings``)."""

    def __init__(self, model: Any, image_processor: Any, image_hw: tuple[int, int]) -> None:
        super().__init__()
        self.pre = ProcessorInput(image_hw, image_processor)
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        emb = self.model.get_image_embeddings(self.pre(image))
        return emb[0], emb[1], emb[2]


class Sam2Decoder(nn.Module):
    """One object's prompt -> four candidates, as `DensePromptSegmenter.predict` decodes it.

    Inputs: ``emb_s0, emb_s1, emb``, ``points`` ``(1, P, 2)`` float32 xy pixels
    of the image, ``labels`` ``(1, P)`` float32 (1 foreground, 0 background),
    ``prev_low_res`` ``(1, 1, h, w)`` and ``has_prev`` ``(1,)`` (1.0: draw the clicks on
    ``prev_low_res``; 0.0: on zeros).

    Outputs: ``low_res`` ``(1, 4, h, w)`` logits clamped to +-32 (what the next click feeds back),
    ``iou`` ``(1, 4)`` predicted IoU and ``mask_logits`` ``(1, 4, S, S)``. Slot 0 is the mask
    SAM2 answers with ``multimask_output=False``, slots 1..3 its three candidates
    (``multimask_output=True``); the mask decoder runs once for each, as the library asks.
    """

    def __init__(self, segmenter: Any, image_hw: tuple[int, int]) -> None:
        super().__init__()
        inner = segmenter.inner
        model = inner.model
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.register_buffer("pos", model.get_image_wide_positional_embeddings().detach())
        self.image_hw = image_hw
        self.input_size = int(inner.input_size)
        self.mask_hw = tuple(int(s) for s in inner.mask_input_size)
        self.radius, self.logit = float(segmenter.radius), float(segmenter.logit)
        self.first_radius = segmenter.first_radius
        h, w = image_hw
        # scale_coords: float32 coordinates times a float32 factor
        self.register_buffer(
            "scale",
            torch.tensor([self.input_size / w, self.input_size / h], dtype=torch.float32),
        )
        self.register_buffer("ay", bilinear_matrix(self.mask_hw[0], h).clone())
        self.register_buffer("ax_t", bilinear_matrix(self.mask_hw[1], w).T.contiguous())

    def _decode(self, sparse: torch.Tensor, dense: torch.Tensor, feats: list[torch.Tensor]):
        outs = []
        for multimask in (False, True):
            masks, iou, _, _ = self.mask_decoder(
                image_embeddings=feats[2],
                image_positional_embeddings=self.pos,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
                high_resolution_features=feats[:2],
            )
            outs.append((masks, iou))
        low = torch.cat([outs[0][0], outs[1][0]], dim=2)[:, 0]  # (1, 4, h, w)
        iou = torch.cat([outs[0][1], outs[1][1]], dim=2)[:, 0]  # (1, 4)
        return low.clamp(-32.0, 32.0), iou, _upsample(low, self.ay, self.ax_t)

    def _draw(self, points, labels, box, prev, has_prev) -> torch.Tensor:
        return draw_dense_prompts_torch(
            points,
            labels,
            box,
            prev,
            has_prev,
            self.image_hw,
            self.mask_hw,
            self.radius,
            self.logit,
            self.first_radius,
        )

    def forward(self, emb_s0, emb_s1, emb, points, labels, prev_low_res, has_prev):
        sparse, dense = self.prompt_encoder(
            input_points=(points * self.scale).unsqueeze(1),
            input_labels=labels.round().to(torch.int64).unsqueeze(1),
            input_boxes=None,
            input_masks=self._draw(points, labels, None, prev_low_res, has_prev),
        )
        return self._decode(sparse, dense, [emb_s0, emb_s1, emb])


class Sam2BoxDecoder(Sam2Decoder):
    """`Sam2Decoder` for one box prompt: ``box`` ``(1, 4)`` xyxy pixels replaces ``points`` and
    ``labels`` (SAM2's box protocol: slot 0, the single mask)."""

    def forward(self, emb_s0, emb_s1, emb, box, prev_low_res, has_prev):
        scaled = (box.reshape(1, 2, 2) * self.scale).reshape(1, 1, 4)
        sparse, dense = self.prompt_encoder(
            input_points=None,
            input_labels=None,
            input_boxes=scaled,
            input_masks=self._draw(None, None, box, prev_low_res, has_prev),
        )
        return self._decode(sparse, dense, [emb_s0, emb_s1, emb])


# ----------------------------------------------------------------------------- SAM3


class Sam3Vision(nn.Module):
    """``image`` uint8 ``(S, S, 3)`` -> ``fpn0``, ``fpn1``: the FPN levels SAM3's detector
    reads (``get_vision_features(...).fpn_hidden_states[:-1]``)."""

    def __init__(self, model: Any, image_processor: Any, image_hw: tuple[int, int]) -> None:
        super().__init__()
        self.pre = ProcessorInput(image_hw, image_processor)
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fpn = self.model.get_vision_features(pixel_values=self.pre(image)).fpn_hidden_states
        return fpn[0], fpn[1]


class Sam3Text(nn.Module):
    """``input_ids``, ``attention_mask`` int32 ``(1, L)`` -> ``text_features`` ``(1, L, D)``."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model.get_text_features(
            input_ids=input_ids.to(torch.int64), attention_mask=attention_mask.to(torch.int64)
        )
        return out.pooler_output


class Sam3Detector(nn.Module):
    """FPN levels + one phrase's text features -> every query's outputs, post-processed as far
    as nothing depends on the other queries.

    Outputs: ``scores`` ``(1, Q)`` = ``sigmoid(logit) x sigmoid(presence_logit)``;
    ``presence`` ``(1,)``; ``boxes`` ``(1, Q, 4)`` xyxy pixels of the image; ``masks``
    ``(1, Q, S, S)`` uint8: mask logit resized to the image > 0 (probability > 0.5), and, when
    the checkpoint asks for it (``mask_in_box``), only on pixels its own box touches; and the raw
    ``logits`` ``(1, Q)``, ``presence_logit`` ``(1, 1)``, ``low_res_masks`` ``(1, Q, h, w)``.
    """

    def __init__(
        self, model: Any, image_hw: tuple[int, int], mask_in_box: bool, mask_threshold: float
    ) -> None:
        super().__init__()
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        self.model = model
        self._vision_out = Sam3VisionEncoderOutput
        self._text_out = BaseModelOutputWithPooling
        self.mask_in_box = bool(mask_in_box)
        self.cut = float(np.log(mask_threshold / (1.0 - mask_threshold)))
        cfg = model.config.vision_config
        neck = model.vision_encoder.neck
        p = cfg.backbone_config.patch_size
        side = cfg.backbone_config.image_size
        side = side[0] if isinstance(side, (list, tuple)) else side
        grid = int(side) // int(p)
        dim = int(cfg.fpn_hidden_size)
        # the FPN position encodings depend on the feature shapes only: constants of the graph
        shapes = [(1, dim, int(grid * s), int(grid * s)) for s in cfg.scale_factors[:-1]]
        for i, shape in enumerate(shapes):
            pe = neck.position_encoding(torch.Size(shape), torch.device("cpu"), torch.float32)
            self.register_buffer(f"pe{i}", pe.detach().clone())
        h, w = image_hw
        # the mask head answers at the first FPN level's resolution
        self.register_buffer("ay", bilinear_matrix(shapes[0][2], h).clone())
        self.register_buffer("ax_t", bilinear_matrix(shapes[0][3], w).T.contiguous())
        self.register_buffer("size", torch.tensor([w, h, w, h], dtype=torch.float32))
        self.register_buffer("xs", torch.arange(w, dtype=torch.float32))
        self.register_buffer("ys", torch.arange(h, dtype=torch.float32))
        self.image_hw = image_hw

    def forward(self, fpn0, fpn1, text_features, attention_mask):
        vision = self._vision_out(
            fpn_hidden_states=(fpn0, fpn1, fpn1),  # the detector drops the last level
            fpn_position_encoding=(self.pe0, self.pe1, self.pe1),
        )
        out = self.model(
            vision_embeds=vision,
            text_embeds=self._text_out(pooler_output=text_features),
            attention_mask=attention_mask.to(torch.int64),
        )
        logits = out.pred_logits.float()  # (1, Q)
        presence_logit = out.presence_logits.float().reshape(1, 1)
        presence = torch.sigmoid(presence_logit).reshape(1)
        scores = torch.sigmoid(logits) * presence
        boxes = out.pred_boxes.float() * self.size  # (1, Q, 4)
        low = out.pred_masks.float()  # (1, Q, h, w)
        on = _upsample(low, self.ay, self.ax_t) > self.cut
        if self.mask_in_box:
            b = boxes[..., None]  # (1, Q, 4, 1)
            cols = (self.xs + 1.0 > b[:, :, 0]) & (self.xs < b[:, :, 2])  # (1, Q, W)
            rows = (self.ys + 1.0 > b[:, :, 1]) & (self.ys < b[:, :, 3])  # (1, Q, H)
            on = on & rows[..., :, None] & cols[..., None, :]
        return scores, presence, boxes, on.to(torch.uint8), logits, presence_logit, low


# ----------------------------------------------------------------------------- all graphs


def build_graphs(sam2: Any, sam3: Any, size: int = EXPLORER_SIZE) -> dict[str, nn.Module]:
    """The six explorer graphs (eval mode) of a loaded ``DensePromptSegmenter`` and
    ``HFConceptSegmenter`` (`samgap_lib.models.load_sam2` / `load_sam3` on CPU)."""
    hw = (size, size)
    graphs = {
        "sam2_encoder": Sam2Encoder(sam2.inner.model, sam2.inner.processor.image_processor, hw),
        "sam2_decoder": Sam2Decoder(sam2, hw),
        "sam2_box_decoder": Sam2BoxDecoder(sam2, hw),
        "sam3_vision": Sam3Vision(sam3.model, sam3.processor.image_processor, hw),
        "sam3_text": Sam3Text(sam3.model),
        "sam3_detector": Sam3Detector(sam3.model, hw, sam3.mask_in_box, sam3.mask_threshold),
    }
    return {k: g.eval() for k, g in graphs.items()}
