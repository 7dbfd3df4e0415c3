"""SAM2 fine-tuning on geometric prompts: prompt sampling, the loss step and validation.

Per object and step (as SAM2's own training, ``sam2/training/model/sam2.py``): a first prompt
drawn by the config's weights (the RITM first click, a uniform interior point, or a box jittered
with SAM2's noise), then with probability ``p_correction`` 1..``max_corrections`` correction
clicks from the RITM `Clicker` on the model's own previous prediction, whose low-resolution
logits are fed back as the mask prompt. The image is encoded once per step; every object is
decoded on the batch axis. A lone click asks for three candidate masks (best-of-3 mask loss).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...data import Sample
from ...evaluation import instance_ious, prompted_summary
from ...metrics import unit_sums
from ...models.dense import CONFIG_KEY, DensePromptSegmenter, draw_dense_prompts
from ...models.hf.sam2 import HFPromptSegmenter
from ...prompts import Clicker, boxes_from_masks, jitter_boxes, random_interior_points
from ...prompts.clicker import Click
from ..data import Pool, normalise
from ..losses import sam2_mask_loss

__all__ = [
    "ObjectPrompt",
    "Sam2Loss",
    "Sam2Task",
    "correction_rounds",
    "decode_objects",
    "first_prompt",
    "grouped_mask_loss",
    "sample_prompts",
]

PROMPT_KINDS = ("click", "point", "box")


@dataclass
class ObjectPrompt:
    """The prompts of one object: clicks (xy, label) and an optional box."""

    image: int
    target: np.ndarray  # (S, S) bool
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: np.ndarray | None = None
    corrections: int = 0
    clicker: Clicker | None = None
    draw: bool = True  # draw this object's prompts into the dense mask input


def first_prompt(
    m: np.ndarray, image: int, cfg: dict[str, Any], rng: np.random.Generator
) -> ObjectPrompt:
    """The first prompt of the object ``m`` on batch image ``image``: a kind drawn by the
    config's weights (the RITM first click, a uniform interior point, or a jittered box), whether
    it is drawn into the dense mask input, and how many correction clicks follow."""
    p = cfg["prompts"]
    kinds = list(PROMPT_KINDS)
    w = np.array([p["weights"][k] for k in kinds], float)
    w = w / w.sum()
    o = ObjectPrompt(image=image, target=m, clicker=Clicker(m))
    kind = kinds[int(rng.choice(len(kinds), p=w))]
    if kind == "click":
        c = o.clicker.next_click(None)
        o.points.append((c.x, c.y))
        o.labels.append(1)
    elif kind == "point":
        pts, _ = random_interior_points(m, 1, rng)
        x, y = int(pts[0, 0]), int(pts[0, 1])
        o.clicker.clicks.append(Click(True, y, x))
        o.points.append((x, y))
        o.labels.append(1)
    else:
        box = boxes_from_masks(m[None])
        o.box = jitter_boxes(box, m.shape, rng, p["box_noise"], p["box_noise_bound"])[0]
    o.draw = bool(p["dense"]) and rng.random() < p["dense_p"]
    if rng.random() < p["p_correction"]:
        o.corrections = int(rng.integers(1, p["max_corrections"] + 1))
    return o


def sample_prompts(
    pool: Pool, idx: np.ndarray, cfg: dict[str, Any], rng: np.random.Generator
) -> list[ObjectPrompt]:
    """First prompts of up to ``data.max_objects`` objects of each image in ``idx``
    (``prompts.per_object`` independent prompt sets per object)."""
    objs = []
    for b, i in enumerate(idx):
        masks = pool.masks[i]
        if not len(masks):
            continue
        chosen = rng.choice(
            len(masks), size=min(len(masks), cfg["data"]["max_objects"]), replace=False
        )
        for k in np.repeat(np.sort(chosen), cfg["prompts"]["per_object"]):
            objs.append(first_prompt(masks[k], b, cfg, rng))
    return objs


def _group_key(o: ObjectPrompt, has_prev: bool, multimask: bool) -> tuple:
    npts = len(o.points)
    mm = multimask and o.box is None and npts == 1
    return (o.box is not None, npts > 0, mm, o.draw, o.draw or has_prev)


def decode_objects(
    model: Any,
    embeddings: list[torch.Tensor],
    objs: list[ObjectPrompt],
    members: list[int],
    prev: list[np.ndarray | None],
    cfg: dict[str, Any],
    decode: Any = None,
) -> dict[int, tuple[torch.Tensor, ...]]:
    """Decode objects ``members``: index -> (logits ``(C, h, w)``, IoU predictions ``(C,)``,
    and whatever else ``decode`` returns per row). ``decode(embeddings, multimask, **prompts)``
    returns row-aligned tensors, logits and IoUs first; the default calls ``model`` (a
    ``Sam2Model``); ``embeddings`` are indexed by each object's ``image``."""
    p = cfg["prompts"]
    image_size = int(model.prompt_encoder.input_image_size)
    mask_hw = tuple(int(s) for s in model.prompt_encoder.mask_input_size)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i in members:
        groups[_group_key(objs[i], prev[i] is not None, p["multimask_single_click"])].append(i)
    dev = embeddings[0].device
    out: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for (has_box, has_pts, mm, draw, has_mask), group in groups.items():
        n = len(group)
        img = torch.as_tensor([objs[i].image for i in group], device=dev)
        kwargs: dict[str, Any] = {}
        pts = lab = bxs = None
        if has_pts:
            pmax = max(len(objs[i].points) for i in group)
            pts = np.zeros((n, pmax, 2), np.float32)
            lab = -np.ones((n, pmax), np.int64)
            for r, i in enumerate(group):
                k = len(objs[i].points)
                pts[r, :k] = objs[i].points
                lab[r, :k] = objs[i].labels
            kwargs["input_points"] = torch.from_numpy(pts).to(dev)[:, None]
            kwargs["input_labels"] = torch.from_numpy(lab).to(dev)[:, None]
        if has_box:
            bxs = np.stack([objs[i].box for i in group]).astype(np.float32)
            kwargs["input_boxes"] = torch.from_numpy(bxs).to(dev)[:, None]
        if has_mask:
            pv = None
            if all(prev[i] is not None for i in group):
                pv = np.stack([prev[i] for i in group])[:, None]
            if draw:
                m = draw_dense_prompts(
                    pts,
                    lab,
                    bxs,
                    pv,
                    (image_size, image_size),
                    mask_hw,
                    p["dense_radius"],
                    p["dense_logit"],
                    p["dense_first_radius"],
                )
            else:
                m = pv
            kwargs["input_masks"] = torch.from_numpy(m).to(dev)
        # index_select, not e[img]: several objects share an image, and the backward of advanced
        # indexing with repeated indices adds with thread atomics on CPU (runs would differ)
        emb = [e.index_select(0, img) for e in embeddings]
        if decode is None:
            res = model(image_embeddings=emb, multimask_output=mm, **kwargs)
            rows: tuple[torch.Tensor, ...] = (res.pred_masks[:, 0], res.iou_scores[:, 0])
        else:
            rows = tuple(decode(emb, mm, **kwargs))
        for r, i in enumerate(group):
            out[i] = tuple(x[r] for x in rows)
    return out


def correction_rounds(
    model: Any,
    embeddings: list[torch.Tensor],
    objs: list[ObjectPrompt],
    cfg: dict[str, Any],
    size: int,
    decode: Any = None,
) -> list[np.ndarray | None]:
    """Each object's correction clicks, without gradient: ``o.corrections`` rounds of decoding,
    each adding the RITM click on the error of the prediction with the highest predicted IoU
    (appended to ``o.points``). Returns each object's last low-resolution logits, the mask
    prompt of its final decoding (None for an object without corrections)."""
    prev: list[np.ndarray | None] = [None] * len(objs)
    rounds = max((o.corrections for o in objs), default=0)
    if not rounds:
        return prev
    with torch.no_grad():
        det = [e.detach() for e in embeddings]
        for r in range(rounds):
            active = [i for i, o in enumerate(objs) if o.corrections > r]
            res = decode_objects(model, det, objs, active, prev, cfg, decode)
            for i in active:
                logits, ious = res[i][:2]
                best = int(ious.argmax())
                low = logits[best].float()
                up = F.interpolate(
                    low[None, None], size=(size, size), mode="bilinear", align_corners=False
                )
                pred = (up[0, 0] > 0).cpu().numpy()
                c = objs[i].clicker.next_click(pred)
                objs[i].points.append((c.x, c.y))
                objs[i].labels.append(c.label)
                prev[i] = low.clamp(-32, 32).cpu().numpy()
    return prev


def image_embeddings(model: Any, pixel: torch.Tensor) -> list[torch.Tensor]:
    """``Sam2Model.get_image_embeddings`` with gradients (the transformers method is no_grad)."""
    b = pixel.shape[0]
    maps = list(model.get_image_features(pixel, return_dict=True).fpn_hidden_states)
    maps[-1] = maps[-1] + model.no_memory_embedding
    return [
        f.permute(1, 2, 0).view(b, -1, *size)
        for f, size in zip(maps, model.backbone_feature_sizes, strict=True)
    ]


def grouped_mask_loss(
    rows: list[tuple[torch.Tensor, torch.Tensor]],
    targets: list[np.ndarray],
    cfg: dict[str, Any],
    size: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SAM2's mask loss (`sam2_mask_loss`) of objects decoded with different numbers of
    candidates: ``rows[i]`` = (logits ``(C, h, w)``, IoU predictions ``(C,)``) against the
    ``(size, size)`` bool ``targets[i]``; objects grouped by C, each group weighted by its share
    of the objects. Returns the loss and its terms (floats)."""
    by_c: dict[int, list[int]] = defaultdict(list)
    for i, (logits, _) in enumerate(rows):
        by_c[logits.shape[0]].append(i)
    lc = cfg["loss"]
    loss_size = lc["mask_loss_size"] or size
    device = rows[0][0].device
    total = torch.zeros((), device=device)
    sums: dict[str, float] = defaultdict(float)
    for _, members in by_c.items():
        logits = torch.stack([rows[i][0] for i in members]).float()
        ious = torch.stack([rows[i][1] for i in members]).float()
        logits = F.interpolate(
            logits, size=(loss_size, loss_size), mode="bilinear", align_corners=False
        )
        tgt = torch.from_numpy(np.stack([targets[i] for i in members])).to(device).float()
        if loss_size != tgt.shape[-1]:  # loss.mask_loss_size: targets area-averaged
            tgt = F.interpolate(tgt[:, None], size=(loss_size, loss_size), mode="area")[:, 0]
        terms = sam2_mask_loss(logits, ious, tgt, lc, lc["focal_alpha"], lc["focal_gamma"])
        frac = len(members) / len(rows)
        total = total + terms["loss"] * frac
        for k, v in terms.items():
            sums[k] += float(v.detach()) * frac
    return total, dict(sums)


class Sam2Loss(torch.nn.Module):
    """One micro-batch of SAM2 training as a module (so DistributedDataParallel can wrap it)."""

    def __init__(self, model: Any, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg

    def forward(
        self, pixel: torch.Tensor, objs: list[ObjectPrompt]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        model, cfg = self.model, self.cfg
        emb = image_embeddings(model, pixel)
        size = pixel.shape[-1]
        if not objs:  # no image of this batch has an instance
            return emb[-1].sum() * 0.0, {"loss": 0.0}
        prev = correction_rounds(model, emb, objs, cfg, size)
        res = decode_objects(model, emb, objs, list(range(len(objs))), prev, cfg)
        rows = [res[i][:2] for i in range(len(objs))]
        return grouped_mask_loss(rows, [o.target for o in objs], cfg, size)


class Sam2Task:
    """What the generic trainer needs for SAM2: batches, the loss module and validation."""

    kind = "sam2"
    metric = "click_mIoU@1"

    def __init__(self, cfg: dict[str, Any], model: Any, processor: Any) -> None:
        self.cfg = cfg
        self.processor = processor
        ip = processor.image_processor
        self.mean, self.std = ip.image_mean, ip.image_std
        if cfg["prompts"]["dense"]:
            setattr(
                model.config,
                CONFIG_KEY,
                {
                    "radius": float(cfg["prompts"]["dense_radius"]),
                    "logit": float(cfg["prompts"]["dense_logit"]),
                    **(
                        {"first_radius": float(cfg["prompts"]["dense_first_radius"])}
                        if cfg["prompts"]["dense_first_radius"] is not None
                        else {}
                    ),
                },
            )
        elif hasattr(model.config, CONFIG_KEY):
            delattr(model.config, CONFIG_KEY)

    def loss_module(self, model: Any) -> torch.nn.Module:
        return Sam2Loss(model, self.cfg)

    def filter_pool(self, pool: Pool) -> Pool:
        """Only images with instances: a geometric prompt needs an object."""
        keep = [i for i, m in enumerate(pool.masks) if len(m)]
        return Pool(
            pool.images[keep],
            [pool.masks[i] for i in keep],
            [pool.attributes[i] for i in keep],
            [pool.categories[i] for i in keep] if pool.categories else [],
        )

    def batch(
        self, pool: Pool, idx: np.ndarray, rng: np.random.Generator, device: torch.device
    ) -> tuple:
        pixel = torch.from_numpy(normalise(pool.images[idx], self.mean, self.std)).to(device)
        return pixel, sample_prompts(pool, idx, self.cfg, rng)

    def segmenter(self, model: Any, device: torch.device) -> Any:
        """``model`` as the `PromptSegmenter` validation prompts (dense prompts drawn if trained so)."""
        seg: Any = HFPromptSegmenter(model, self.processor, device=device, use_autocast=True)
        return DensePromptSegmenter(seg) if self.cfg["prompts"]["dense"] else seg

    def evaluate(self, model: Any, samples: list[Sample], device: torch.device) -> dict[str, float]:
        return self.validate(model, samples, device)[0]

    def validate(
        self, model: Any, samples: list[Sample], device: torch.device
    ) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
        """`evaluate` and, from the same pass of the prompts over ``samples``, its mean IoUs per
        image: ``{metric: (summed IoUs, apples)}``, each ``(len(samples),)``, for intervals over
        images (`samgap_lib.metrics.bootstrap_ratio`)."""
        clicks = int(self.cfg["eval"]["clicks"])
        per = instance_ious(self.segmenter(model, device), samples, clicks)
        n = len(samples)
        out = {"box_mIoU": unit_sums(per["model"], per["image"], n)}
        for k in range(clicks):
            out[f"click_mIoU@{k + 1}"] = unit_sums(per["click"][:, k], per["image"], n)
        return prompted_summary(per, clicks), out
