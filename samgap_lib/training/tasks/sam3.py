"""SAM3 detector fine-tuning on concept prompts (image x noun phrase), DETR style.

A step takes ``batch_images`` images and ``phrases_per_image`` phrases per image (the fixed ones,
plus ones drawn from ``phrases_sampled``, negatives included): one (image, phrase) pair is one
SA-Co "image" (`samgap_lib.data.to_saco`). Each image is encoded once and shared by its
phrases; the text encoder runs once per distinct phrase. Queries are matched to the instances
a phrase denotes (Hungarian, scipy; the costs of every decoder layer and pair in one pass),
then: classification on every query (SAM3's IoU-aware BCE, or the sigmoid focal loss:
``loss.class_loss``), L1 + GIoU on matched boxes, BCE on the presence logit, optionally on
every decoder layer (auxiliary), and with segmentation on, focal + dice on matched masks (at
most ``max_matched_queries`` per pair, scored at the image's size or at ``mask_loss_size``).
With ``loss.o2m_weight > 0`` SAM3's one-to-many (DAC) queries are trained too: the decoder's
queries again without self-attention, matched several to an instance, scored with the same
classification and box terms x ``o2m_weight`` (official 2).

With ``prompts.exemplar_p > 0`` a share of the pairs whose phrase denotes instances is prompted
with exemplar boxes too (`sample_exemplars`): positive boxes of instances the phrase denotes,
sometimes a negative box of one it does not, and the phrase sometimes replaced by ``"visual"``
(exemplars only, as SAM3 prompts boxes without text). The boxes go through the model's geometry
encoder and join the text tokens as the prompt, as ``Sam3Model.forward`` joins them at inference;
the targets stay every instance the phrase denotes, the exemplars' own included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...data import Concept, Sample
from ...evaluation import evaluate_concepts
from ...models.hf.sam3 import HFConceptSegmenter
from ...models.postprocess import POSTPROCESS_KEY, xyxy_to_cxcywh_norm
from ...prompts import boxes_from_masks, concept_of
from ..data import Pool, normalise
from ..losses import (
    detr_terms,
    dice_loss,
    hungarian_match_many,
    iabce_loss,
    one_to_many_match_many,
    sigmoid_focal_loss,
)

__all__ = [
    "EXEMPLAR_ONLY",
    "Pair",
    "Sam3Loss",
    "Sam3Task",
    "sample_exemplars",
    "sam3_outputs",
    "with_exemplars",
    "without_self_attention",
]

TEXT_MAX_LENGTH = 32
EXEMPLAR_ONLY = "visual"  # SAM3's text of a prompt of exemplar boxes alone
PAD_LABEL = -10  # transformers Sam3Model: input_boxes_labels of padding boxes


@dataclass
class Pair:
    """One (image, phrase) pair of a batch."""

    image: int
    phrase: str  # the text prompt: the concept's phrase, or EXEMPLAR_ONLY
    gt: np.ndarray  # indices into the pool image's instances
    exemplars: np.ndarray | None = None  # (e,) instance indices given as exemplar boxes
    labels: np.ndarray | None = None  # (e,) 1 positive, 0 negative


def sample_exemplars(
    denoted: np.ndarray, n_instances: int, prompts: dict[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """Exemplar boxes for one (image, phrase) pair, or None (a text prompt alone).

    Follows SAM3's ``TextQueryToVisual`` (``sam3/train/transforms/filter_query_transforms.py``):
    a pair whose phrase denotes instances is chosen with probability ``prompts["exemplar_p"]``
    and given a positive box drawn uniformly from them; its text becomes ``"visual"`` unless
    kept. Beyond it (simplified from the paper's interactive exemplars, whose sampling is not
    released): 1 to ``max_positives`` positives (uniform count, without replacement) and, with
    probability ``negative_p``, one negative: an instance of the image the phrase does not
    denote (an unripe apple for "ripe apple"), when there is one.

    Parameters
    ----------
    denoted
        Indices of the image's instances the phrase denotes (all of them, before any cap).
    n_instances
        How many instances the image has.
    prompts
        The config's ``prompts`` section.
    rng
        The batch's Generator; a pair without instances draws nothing from it.

    Returns
    -------
    tuple or None
        ``(instances (e,), labels (e,) 1/0, keep_phrase)``: positives first.
    """
    if not len(denoted) or prompts["exemplar_p"] <= 0:
        return None
    if rng.random() >= prompts["exemplar_p"]:
        return None
    n_pos = int(rng.integers(1, min(prompts["max_positives"], len(denoted)) + 1))
    pos = rng.choice(denoted, size=n_pos, replace=False)
    others = np.setdiff1d(np.arange(n_instances), denoted)
    neg = np.zeros(0, np.int64)
    if len(others) and rng.random() < prompts["negative_p"]:
        neg = rng.choice(others, size=1)
    keep_phrase = bool(rng.random() >= prompts["drop_phrase_p"])
    inst = np.concatenate([pos, neg]).astype(np.int64)
    labels = np.concatenate([np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)])
    return inst, labels, keep_phrase


def _denoted(pool: Pool, i: int, concept: Concept) -> np.ndarray:
    out = []
    for k, attrs in enumerate(pool.attributes[i]):
        cat = pool.categories[i][k] if pool.categories else "apple"
        if cat != concept.category:
            continue
        if all(attrs.get(a) == v for a, v in concept.attributes.items()):
            out.append(k)
    return np.asarray(out, dtype=np.int64)


def sam3_outputs(
    model: Any,
    pixel: torch.Tensor,
    pair_image: torch.Tensor,
    tokens: dict,
    pair_text: torch.Tensor,
    masks: bool = True,
    mask_pairs: torch.Tensor | None = None,
    o2m: bool = False,
    exemplars: dict[str, torch.Tensor] | None = None,
) -> dict:
    """Sam3Model's forward with every decoder layer's scores and boxes kept (for aux losses).

    The image features of ``pixel`` are computed once and indexed per pair; the text features
    once per distinct phrase. Same computation as ``Sam3Model.forward`` for text prompts, which
    always runs the mask decoder; ``masks=False`` skips it (``"masks"`` and ``"semantic"`` are
    then None), so boxes-only training keeps none of its activations. ``mask_pairs`` (indices
    of pairs) runs the mask decoder on those pairs only: row ``r`` of ``"masks"`` and
    ``"semantic"`` then belongs to pair ``mask_pairs[r]``. Its pixel decoder works per pair at
    the finest feature size and is most of a training step's cost; pairs without instances have
    no mask to learn. ``o2m=True`` adds SAM3's one-to-many (DAC) queries as
    ``"logits_o2m"`` and ``"boxes_o2m"``: the decoder run a second time with its
    self-attention left out (`without_self_attention`), as SAM3's decoder treats the copy of its
    queries it appends in training (``sam3/model/decoder.py``, ``dac=True``; the copy's
    presence token is not used). ``exemplars`` (`with_exemplars`) adds exemplar boxes to the
    prompts of some pairs.
    """
    from transformers.models.sam3.modeling_sam3 import box_cxcywh_to_xyxy, inverse_sigmoid

    vision = model.get_vision_features(pixel_values=pixel)
    # index_select, not x[idx]: the backward of advanced indexing with repeated indices adds with
    # atomics on CPU threads (run-to-run differences); index_select's (index_add) adds in order
    # the last FPN level is dropped, as in Sam3Model.forward; the DETR encoder reads the coarsest
    # kept level for every pair, the mask decoder all kept levels for its pairs (below)
    feats = vision.fpn_hidden_states[:-1]
    coarse = feats[-1].index_select(0, pair_image)
    coarse_pos = vision.fpn_position_encoding[:-1][-1].index_select(0, pair_image)
    text = model.get_text_features(
        input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], return_dict=True
    )
    text_features = text.pooler_output.index_select(0, pair_text)
    text_mask = tokens["attention_mask"][pair_text].bool()
    if exemplars is not None:
        text_features, text_mask = with_exemplars(
            model, text_features, text_mask, coarse, coarse_pos, exemplars
        )
    enc = model.detr_encoder(
        vision_features=[coarse],
        text_features=text_features,
        vision_pos_embeds=[coarse_pos],
        text_mask=text_mask,
    )

    def decode() -> tuple[Any, torch.Tensor, torch.Tensor]:
        dec = model.detr_decoder(
            vision_features=enc.last_hidden_state,
            text_features=enc.text_features,
            vision_pos_encoding=enc.pos_embeds_flattened,
            text_mask=text_mask,
            spatial_shapes=enc.spatial_shapes,
        )
        offsets = model.detr_decoder.box_head(dec.intermediate_hidden_states)
        boxes = box_cxcywh_to_xyxy((inverse_sigmoid(dec.reference_boxes) + offsets).sigmoid())
        logits = model.dot_product_scoring(
            decoder_hidden_states=dec.intermediate_hidden_states,
            text_features=enc.text_features,
            text_mask=text_mask,
        ).squeeze(-1)
        return dec, logits, boxes

    dec, logits, boxes = decode()
    out = {
        "logits": logits,  # (L, P, Q)
        "boxes": boxes,  # (L, P, Q, 4) normalised xyxy
        "presence": dec.presence_logits,  # (L, P, 1)
        "masks": None,
        "semantic": None,
    }
    if o2m:  # DAC: the queries again without self-attention, so several may take one instance
        with without_self_attention(model.detr_decoder):
            _, out["logits_o2m"], out["boxes_o2m"] = decode()
    if masks:
        sel = (lambda x: x) if mask_pairs is None else (lambda x: x.index_select(0, mask_pairs))
        images = sel(pair_image)
        dm = model.mask_decoder(
            decoder_queries=sel(dec.intermediate_hidden_states[-1]),
            backbone_features=[f.index_select(0, images) for f in feats[:-1]] + [sel(coarse)],
            encoder_hidden_states=sel(enc.last_hidden_state),
            prompt_features=sel(text_features),
            prompt_mask=sel(text_mask),
        )
        out["masks"] = dm.pred_masks  # (P or len(mask_pairs), Q, h, w)
        out["semantic"] = dm.semantic_seg  # (P or len(mask_pairs), 1, h, w)
    return out


def with_exemplars(
    model: Any,
    text_features: torch.Tensor,
    text_mask: torch.Tensor,
    coarse: torch.Tensor,
    coarse_pos: torch.Tensor,
    exemplars: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair's prompt tokens: its text, then the geometry encoder's tokens of its exemplar
    boxes, as ``Sam3Model.forward`` concatenates them.

    ``exemplars``: ``"pairs"`` (n,) the pairs that have boxes, ``"boxes"`` (n, e, 4) cxcywh
    normalised by the image size (what the segmenter passes at inference), ``"labels"`` (n, e)
    1 / 0, ``PAD_LABEL`` for padding. The geometry encoder runs on those pairs only, reading the
    coarsest kept feature level (``coarse``, per pair) as ``Sam3Model`` does; the other pairs get
    the same number of tokens, all masked out, so that they attend exactly to their text as a
    text-only prompt does at inference.
    """
    rows, labels = exemplars["pairs"], exemplars["labels"]
    geo = model.geometry_encoder(
        box_embeddings=exemplars["boxes"],
        box_mask=labels != PAD_LABEL,
        box_labels=torch.where(labels == PAD_LABEL, 0, labels),
        img_feats=(coarse.index_select(0, rows),),
        img_pos_embeds=(coarse_pos.index_select(0, rows),),
    )
    tokens, valid = geo.last_hidden_state, geo.attention_mask.bool()
    n = text_features.shape[0]
    feats = tokens.new_zeros(n, *tokens.shape[1:]).index_copy(0, rows, tokens)
    mask = valid.new_zeros(n, valid.shape[1]).index_copy(0, rows, valid)
    return torch.cat([text_features, feats], 1), torch.cat([text_mask, mask], 1)


@contextlib.contextmanager
def without_self_attention(decoder: torch.nn.Module) -> Iterator[None]:
    """Within the block, the self-attention of every layer of a transformers SAM3 DETR decoder
    adds nothing (its output replaced by zeros: the layer keeps its residual and LayerNorm), as
    for SAM3's DAC queries; no gradient reaches the self-attention from that pass."""

    def zero(_module: Any, _inputs: Any, output: Any) -> Any:
        return (torch.zeros_like(output[0]), *output[1:])

    handles = [layer.self_attn.register_forward_hook(zero) for layer in decoder.layers]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class Sam3Loss(torch.nn.Module):
    """One micro-batch of SAM3 training as a module (so DistributedDataParallel can wrap it)."""

    def __init__(self, model: Any, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg

    def forward(
        self, pixel, pair_image, tokens, pair_text, gts, exemplars=None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        lc = self.cfg["loss"]
        seg = lc["segmentation"]
        # the mask decoder runs only when a loss uses its output (boxes-only saves its memory),
        # and, unless the semantic loss wants negatives too, only on pairs with instances
        positive = [p for p, g in enumerate(gts) if len(g["boxes"])]
        all_pairs = bool(lc["semantic"]) and bool(lc["semantic_on_negatives"])
        mask_pairs = list(range(len(gts))) if all_pairs else positive
        out = sam3_outputs(
            self.model,
            pixel,
            pair_image,
            tokens,
            pair_text,
            masks=(seg or bool(lc["semantic"])) and bool(mask_pairs),
            mask_pairs=None
            if all_pairs
            else torch.tensor(mask_pairs, dtype=torch.long, device=pixel.device),
            o2m=lc["o2m_weight"] > 0,
            exemplars=exemplars,
        )
        n_pairs, n_layers = len(gts), out["logits"].shape[0]
        layers = list(range(n_layers)) if lc["aux"] else [n_layers - 1]
        alpha, gamma = lc["focal_alpha"], lc["focal_gamma"]
        dev = pixel.device
        # every (decoder layer, pair) is a row: row k * n_pairs + p is pair p at layers[k]
        counts = [len(g["boxes"]) for g in gts]
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        n_gt = max(1, int(starts[-1]))
        gt_boxes = torch.cat([g["boxes"] for g in gts])
        logits = out["logits"][layers].flatten(0, 1)
        boxes = out["boxes"][layers].flatten(0, 1)
        last_row0 = (len(layers) - 1) * n_pairs
        mw = {
            "class": lc["match_class"],
            "bbox": lc["match_bbox"],
            "giou": lc["match_giou"],
            "mask": lc["match_mask"],
        }
        mask_cost = seg and mw["mask"] and out["masks"] is not None
        spans = [(starts[p], starts[p + 1]) for _ in layers for p in range(n_pairs)]
        matches = hungarian_match_many(
            logits,
            boxes,
            gt_boxes,
            spans,
            mw,
            out["masks"] if mask_cost else None,
            torch.cat([g["masks_small"] for g in gts]) if mask_cost else None,
            [last_row0 + p for p in mask_pairs],
            alpha,
            gamma,
        )

        def flat(matches: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """(row, query, instance) of every match; instances index ``gt_boxes``."""
            row = torch.cat([torch.full((len(qi),), r) for r, (qi, _) in enumerate(matches)])
            q = torch.cat([qi for qi, _ in matches])
            g = torch.cat([gi + int(starts[r % n_pairs]) for r, (_, gi) in enumerate(matches)])
            return row, q, g

        m_row, m_q, m_g = flat(matches)
        sums: dict[str, torch.Tensor] = {}

        def add(name: str, values: torch.Tensor, rows: torch.Tensor) -> None:
            """Sum per-row or per-match ``values`` into the last layer's term and the rest's."""
            last = (rows >= last_row0).to(dev)
            sums[name] = values[last].sum()
            if len(layers) > 1:
                sums[name + "_aux"] = values[~last].sum()

        row_ids = torch.arange(len(layers) * n_pairs)
        has_gt = torch.tensor([c > 0 for c in counts], dtype=torch.float32, device=dev)
        has_gt = has_gt.repeat(len(layers))  # per row
        supervise = has_gt.clamp(min=float(bool(lc["class_on_negatives"])))
        iabce = lc["class_loss"] == "iabce"

        def detection_terms(lg, bx, m_row, m_q, m_g, suffix: str = "") -> None:
            """Classification, L1 and GIoU terms of scores ``lg`` and boxes ``bx``."""
            terms = detr_terms(
                lg, bx, gt_boxes, m_row, m_q, m_g, alpha, gamma, with_class=not iabce
            )
            if iabce:  # SAM3's own: mean over queries, per pair
                cls = iabce_loss(
                    lg,
                    bx,
                    gt_boxes,
                    m_q,
                    m_g,
                    lc["pos_weight"],
                    alpha,
                    gamma,
                    query_row=m_row,
                )
                add("class" + suffix, cls * supervise / n_pairs, row_ids)
            else:
                add("class" + suffix, terms["class"] * supervise / n_gt, row_ids)
            add("bbox" + suffix, terms["bbox"] / n_gt, m_row)
            add("giou" + suffix, terms["giou"] / n_gt, m_row)

        detection_terms(logits, boxes, m_row, m_q, m_g)
        if lc["o2m_weight"] > 0:
            # SAM3's one-to-many queries: the same terms, the last layer matched one-to-many,
            # the others as loss.o2m_matcher_on_aux says (official: one-to-one); no presence
            lo = out["logits_o2m"][layers].flatten(0, 1)
            bo = out["boxes_o2m"][layers].flatten(0, 1)
            cut = 0 if lc["o2m_matcher_on_aux"] else last_row0  # rows before it: one-to-one
            m2 = hungarian_match_many(
                lo[:cut], bo[:cut], gt_boxes, spans[:cut], mw, alpha=alpha, gamma=gamma
            ) + one_to_many_match_many(
                lo[cut:],
                bo[cut:],
                gt_boxes,
                spans[cut:],
                lc["o2m_alpha"],
                lc["o2m_threshold"],
                lc["o2m_topk"],
            )
            detection_terms(lo, bo, *flat(m2), suffix="_o2m")
        presence = out["presence"][layers].reshape(-1)
        pres_bce = F.binary_cross_entropy_with_logits(presence, has_gt, reduction="none")
        add("presence", pres_bce / n_pairs, row_ids)
        if seg and out["masks"] is not None:
            # matched masks of the last layer, at most ``cap`` per pair
            cap = lc["max_matched_queries"]
            mask_row = {p: r for r, p in enumerate(mask_pairs)}
            sel = [
                (mask_row[p], qi[:cap], gi[:cap] + int(starts[p]))
                for p, (qi, gi) in enumerate(matches[last_row0:])
                if len(qi)
            ]
            if sel:
                rows = torch.cat([torch.full((len(qi),), r) for r, qi, _ in sel]).to(dev)
                pm = out["masks"][rows, torch.cat([qi for _, qi, _ in sel]).to(dev)]
                # the targets' size: the image's, or loss.mask_loss_size (Sam3Task.batch)
                all_masks = torch.cat([g["masks"] for g in gts])
                tm = all_masks[torch.cat([gi for _, _, gi in sel]).to(dev)].float()
                pm = F.interpolate(
                    pm[:, None].float(), size=tm.shape[-2:], mode="bilinear", align_corners=False
                )[:, 0]
                sums["mask_focal"] = sigmoid_focal_loss(pm, tm, alpha, gamma).mean((1, 2)).mean()
                sums["mask_dice"] = dice_loss(pm, tm).mean()
        if lc["semantic"] and out["semantic"] is not None:
            # mean over the pairs it is computed on of each pair's mean
            tgt = torch.stack([gts[p]["union_small"] for p in mask_pairs])
            sums["semantic"] = F.binary_cross_entropy_with_logits(out["semantic"][:, 0], tgt)
        weights = {
            "class": lc["class"],
            "bbox": lc["bbox"],
            "giou": lc["giou"],
            "class_o2m": lc["o2m_weight"] * lc["class"],
            "bbox_o2m": lc["o2m_weight"] * lc["bbox"],
            "giou_o2m": lc["o2m_weight"] * lc["giou"],
            "presence": lc["presence"],
            "mask_focal": lc["mask_focal"] if seg else 0.0,
            "mask_dice": lc["mask_dice"] if seg else 0.0,
            "semantic": lc["semantic"],
        }
        total = torch.zeros((), device=pixel.device)
        for k, v in sums.items():
            total = total + weights[k.removesuffix("_aux")] * v
        terms = {k: float(v.detach()) for k, v in sums.items()}
        terms["loss"] = float(total.detach())
        return total, terms


class Sam3Task:
    """What the generic trainer needs for SAM3: batches, the loss module and validation."""

    kind = "sam3"
    metric = "cgF1"

    def __init__(self, cfg: dict[str, Any], model: Any, processor: Any) -> None:
        self.cfg = cfg
        self.processor = processor
        ip = processor.image_processor
        self.mean, self.std = ip.image_mean, ip.image_std
        d = cfg["data"]
        self.fixed = list(d["phrases_fixed"])
        self.sampled = list(d["phrases_sampled"])
        if d["phrases_per_image"] < 1 or d["phrases_per_image"] > len(self.fixed) + len(
            self.sampled
        ):
            raise ValueError(
                f"data.phrases_per_image={d['phrases_per_image']} must be between 1 and the "
                f"{len(self.fixed) + len(self.sampled)} phrases of phrases_fixed + phrases_sampled."
            )
        self.mask_hw = int(model.config.vision_config.backbone_feature_sizes[0][0])
        e = cfg["eval"]
        if e["mask_in_box"] or e["nms_iou"] is not None:  # load_sam3 post-processes so
            spec = {"mask_in_box": bool(e["mask_in_box"]), "nms_iou": e["nms_iou"]}
            setattr(model.config, POSTPROCESS_KEY, spec)
        elif hasattr(model.config, POSTPROCESS_KEY):
            delattr(model.config, POSTPROCESS_KEY)

    def loss_module(self, model: Any) -> torch.nn.Module:
        return Sam3Loss(model, self.cfg)

    def filter_pool(self, pool: Pool) -> Pool:
        """All images: one without instances gives negative pairs."""
        return pool

    def tokenize(self, phrases: list[str]) -> dict[str, torch.Tensor]:
        tok = self.processor.tokenizer(
            phrases,
            padding="max_length",
            max_length=TEXT_MAX_LENGTH,
            truncation=True,
            return_tensors="pt",
        )
        return {"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"]}

    def batch(
        self, pool: Pool, idx: np.ndarray, rng: np.random.Generator, device: torch.device
    ) -> tuple:
        d = self.cfg["data"]
        k = d["phrases_per_image"]
        pairs: list[Pair] = []
        for b, i in enumerate(idx):
            extra = k - len(self.fixed)
            chosen = self.fixed[:k] + (
                list(rng.choice(self.sampled, size=extra, replace=False)) if extra > 0 else []
            )
            for ph in chosen:
                gt = _denoted(pool, int(i), concept_of(str(ph)))[: d["max_annotations"]]
                pairs.append(Pair(b, str(ph), gt))
        # exemplars after every phrase is drawn: the phrases of a batch are the same with or without
        # them, and with prompts.exemplar_p = 0 nothing more is drawn from rng
        pc = self.cfg["prompts"]
        if pc["exemplar_p"] > 0:
            for p in pairs:
                i = int(idx[p.image])
                denoted = _denoted(pool, i, concept_of(p.phrase))
                drawn = sample_exemplars(denoted, len(pool.masks[i]), pc, rng)
                if drawn is not None:
                    p.exemplars, p.labels, keep = drawn
                    if not keep:
                        p.phrase = EXEMPLAR_ONLY
        texts = sorted({p.phrase for p in pairs})
        tokens = {k_: v.to(device) for k_, v in self.tokenize(texts).items()}
        pair_text = torch.as_tensor([texts.index(p.phrase) for p in pairs], device=device)
        pair_image = torch.as_tensor([p.image for p in pairs], device=device)
        pixel = torch.from_numpy(normalise(pool.images[idx], self.mean, self.std)).to(device)
        size = pool.images.shape[1]
        gts = []
        for p in pairs:
            i = int(idx[p.image])
            boxes, small, loss_masks = self._instances(pool, i)
            sel = torch.from_numpy(p.gt)
            small = small[sel].to(device)
            union = small.amax(0) if len(p.gt) else torch.zeros(self.mask_hw, self.mask_hw)
            gts.append(
                {
                    "boxes": torch.from_numpy(boxes[p.gt] / size).to(device),
                    "masks": loss_masks[sel].to(device),
                    "masks_small": small,
                    "union_small": (union > 0.5).float().to(device),
                }
            )
        return pixel, pair_image, tokens, pair_text, gts, self._exemplars(pool, idx, pairs, device)

    def _exemplars(
        self, pool: Pool, idx: np.ndarray, pairs: list[Pair], device: torch.device
    ) -> dict[str, torch.Tensor] | None:
        """The exemplar inputs of `with_exemplars` for ``pairs`` (None: no pair has any): boxes
        of the instances' masks, normalised as the segmenter normalises boxes at inference."""
        rows = [r for r, p in enumerate(pairs) if p.exemplars is not None]
        if not rows:
            return None
        e = max(len(pairs[r].exemplars) for r in rows)  # type: ignore[arg-type]
        boxes = np.zeros((len(rows), e, 4), np.float32)
        labels = np.full((len(rows), e), PAD_LABEL, np.int64)
        size = pool.images.shape[1]
        for k, r in enumerate(rows):
            p = pairs[r]
            assert p.exemplars is not None and p.labels is not None
            xyxy = self._instances(pool, int(idx[p.image]))[0][p.exemplars]
            boxes[k, : len(xyxy)] = xyxy_to_cxcywh_norm(xyxy, (size, size))
            labels[k, : len(xyxy)] = p.labels
        return {
            "pairs": torch.as_tensor(rows, dtype=torch.long, device=device),
            "boxes": torch.from_numpy(boxes).to(device),
            "labels": torch.from_numpy(labels).to(device),
        }

    def _instances(self, pool: Pool, i: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """Pool image ``i``'s instances as training targets, computed once per image and kept:
        boxes ``(k, 4)`` (xyxy px, float32), masks at the mask head's size ``(k, h, h)`` and at
        the mask loss's size (``loss.mask_loss_size``; null: the image's own masks), the
        smaller sizes area-averaged."""
        loss_size = self.cfg["loss"]["mask_loss_size"]
        cache = pool.derived.setdefault(f"sam3_instances_{self.mask_hw}_{loss_size}", {})
        if i not in cache:
            masks = torch.from_numpy(pool.masks[i])
            boxes = boxes_from_masks(pool.masks[i]).astype(np.float32).reshape(-1, 4)

            def area(side: int) -> torch.Tensor:
                if not len(masks):
                    return torch.zeros(0, side, side)
                return F.interpolate(masks[:, None].float(), size=(side, side), mode="area")[:, 0]

            cache[i] = (boxes, area(self.mask_hw), masks if loss_size is None else area(loss_size))
        return cache[i]

    def segmenter(self, model: Any, device: torch.device) -> Any:
        """``model`` as the `ConceptSegmenter` validation prompts."""
        threshold = self.cfg["eval"]["threshold"]
        return HFConceptSegmenter(model, self.processor, device=device, threshold=threshold)

    def evaluate(self, model: Any, samples: list[Sample], device: torch.device) -> dict[str, float]:
        return self.validate(model, samples, device)[0]

    def validate(
        self, model: Any, samples: list[Sample], device: torch.device
    ) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
        """`evaluate` and, from the same pass of the phrases over ``samples``, its recall and
        precision per image: ``{"recall[p]": (found, named), "precision[p]": (found, kept)}``,
        each ``(len(samples),)``, for intervals over images
        (`samgap_lib.metrics.bootstrap_ratio`); a phrase that names no instance in ``samples``
        has no recall, one with no detection kept no precision."""
        e = self.cfg["eval"]
        seg = self.segmenter(model, device)
        scored = evaluate_concepts(seg, samples, list(e["phrases"]), e["threshold"])
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for p, c in scored["per_image"].items():
            for what, den in (("recall", "named"), ("precision", "kept")):
                if c[den].sum() > 0:
                    out[f"{what}[{p}]"] = (c["found"].astype(float), c[den].astype(float))
        return scored["summary"], out
