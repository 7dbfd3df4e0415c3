"""`ConceptSegmenter` on Meta's ``sam3`` package, on CPU through `meta_sam3_cpu`.

Meta's ``Sam3Processor.set_text_prompt`` takes one phrase per call. The detector itself is
batched over "find queries" (``FindStage(img_ids, text_ids)``), so here every phrase of a call
runs in one ``forward_grounding`` that shares the image features: text encoded as one batch,
``img_ids = 0`` for all, ``text_ids = 0..P-1``, exemplar boxes padded and masked.

Tiny checkpoints: `write_tiny_meta_sam3` swaps the private ``_create_*`` factories of
``sam3.model_builder`` (scoped) for small versions and saves the state dict with Meta's
``detector.`` key prefix, plus a ``.samgap.json`` with the dimensions.
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

from .base import ConceptPrediction, Exemplars, concept_prompts
from .hf_sam3 import select_instances, xyxy_to_cxcywh_norm
from .loading import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    is_hub_id,
    resolve_device,
    resolve_source,
)
from .meta_sam3_cpu import init_uninitialised_text_params, patched, sam3_cpu_compat

__all__ = [
    "META_SAM3_VIDEO_UNSUPPORTED",
    "MetaSam3ConceptSegmenter",
    "MetaSam3TrackerSegmenter",
    "build_meta_sam3",
    "default_bpe_path",
    "load_meta_sam3",
    "write_tiny_meta_sam3",
]

META_SAM3_VIDEO_UNSUPPORTED = (
    "Meta's SAM3 video predictor (sam3.model_builder.build_sam3_video_predictor) is CUDA-bound: it "
    "initialises torch.distributed/NCCL process groups per GPU and moves frames and state with "
    ".cuda() in sam3/model/io_utils.py, so it cannot run on CPU. Use backend='transformers' "
    "(Sam3VideoModel) for SAM3 video, or run the Meta backend on a CUDA machine with sam3 directly."
)
META_SAM3_TRACKER_UNSUPPORTED = (
    "Meta's SAM3 point/box prompts (Sam3Image.predict_inst, enable_inst_interactivity=True) are "
    "hard-wired to 1008 px (the tracker's feature sizes are fixed in sam3.model_builder."
    "build_tracker), so they cannot run on the reduced-resolution tiny/CPU models; use "
    "backend='transformers' (Sam3TrackerModel) for role='tracker'."
)
SIDE_CAR = ".samgap.json"

TINY_DIMS = {
    "resolution": 112,
    "d_model": 32,
    "vit_dim": 32,
    "vit_depth": 2,
    "vit_heads": 2,
    "text_width": 32,
    "text_layers": 1,
    "text_heads": 2,
    "ffn": 64,
    "heads": 2,
    "num_queries": 10,
}


def default_bpe_path() -> str:
    """The CLIP BPE vocabulary shipped by ``open_clip_torch`` (not in the sam3 wheel)."""
    try:
        import open_clip
    except ImportError as exc:  # pragma: no cover - listed in the meta extra
        raise CheckpointNotFoundError(
            "Meta's SAM3 needs the CLIP BPE file bpe_simple_vocab_16e6.txt.gz, which the sam3 "
            "wheel lacks: pip install open_clip_torch, or pass bpe_path=."
        ) from exc
    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"{path} missing; pass bpe_path= to a bpe_simple_vocab_16e6.txt.gz."
        )
    return str(path)


# ----------------------------------------------------------------------------- tiny factories


def _tiny_factories(dims: Mapping[str, int]) -> dict[str, Any]:
    """Replacements for sam3.model_builder's private ``_create_*`` factories."""
    import sam3.model_builder as mb
    from torch import nn

    d, ffn, heads, res = dims["d_model"], dims["ffn"], dims["heads"], dims["resolution"]

    def mha(dropout: float = 0.0, batch_first: bool = False) -> Any:
        return mb.MultiheadAttention(
            num_heads=heads, dropout=dropout, embed_dim=d, batch_first=batch_first
        )

    def position_encoding(precompute_resolution: int | None = None) -> Any:
        return mb.PositionEmbeddingSine(
            num_pos_feats=d,
            normalize=True,
            scale=None,
            temperature=10000,
            precompute_resolution=res if precompute_resolution is not None else None,
        )

    def vit_backbone(compile_mode: Any = None) -> Any:
        grid = res // 14
        return mb.ViT(
            img_size=res,
            pretrain_img_size=res,
            patch_size=14,
            embed_dim=dims["vit_dim"],
            depth=dims["vit_depth"],
            num_heads=dims["vit_heads"],
            mlp_ratio=2.0,
            norm_layer="LayerNorm",
            drop_path_rate=0.0,
            qkv_bias=True,
            use_abs_pos=True,
            tile_abs_pos=True,
            global_att_blocks=(dims["vit_depth"] - 1,),
            rel_pos_blocks=(),
            use_rope=True,
            use_interp_rope=True,
            window_size=grid // 2,
            pretrain_use_cls_token=True,
            retain_cls_token=False,
            ln_pre=True,
            ln_post=False,
            return_interm_layers=False,
            bias_patch_embed=False,
            compile_mode=compile_mode,
        )

    def vit_neck(
        position_encoding: Any, vit_backbone: Any, enable_inst_interactivity: bool = False
    ) -> Any:
        return mb.Sam3DualViTDetNeck(
            position_encoding=position_encoding,
            d_model=d,
            scale_factors=[4.0, 2.0, 1.0, 0.5],
            trunk=vit_backbone,
            add_sam2_neck=enable_inst_interactivity,
        )

    def text_encoder(bpe_path: str) -> Any:
        return mb.VETextEncoder(
            tokenizer=mb.SimpleTokenizer(bpe_path=bpe_path),
            d_model=d,
            width=dims["text_width"],
            heads=dims["text_heads"],
            layers=dims["text_layers"],
        )

    def enc_layer(**kw: Any) -> Any:
        return mb.TransformerEncoderLayer(
            activation="relu", d_model=d, dim_feedforward=ffn, dropout=0.0, **kw
        )

    def transformer_encoder() -> Any:
        layer = enc_layer(
            pos_enc_at_attn=True,
            pos_enc_at_cross_attn_keys=False,
            pos_enc_at_cross_attn_queries=False,
            pre_norm=True,
            self_attention=mha(batch_first=True),
            cross_attention=mha(batch_first=True),
        )
        return mb.TransformerEncoderFusion(
            layer=layer,
            num_layers=1,
            d_model=d,
            num_feature_levels=1,
            frozen=False,
            use_act_checkpoint=False,
            add_pooled_text_to_img_feat=False,
            pool_text_with_mask=True,
        )

    def transformer_decoder() -> Any:
        layer = mb.TransformerDecoderLayer(
            activation="relu",
            d_model=d,
            dim_feedforward=ffn,
            dropout=0.0,
            cross_attention=mha(),
            n_heads=heads,
            use_text_cross_attention=True,
        )
        return mb.TransformerDecoder(
            layer=layer,
            num_layers=1,
            num_queries=dims["num_queries"],
            return_intermediate=True,
            box_refine=True,
            num_o2m_queries=0,
            dac=True,
            boxRPB="log",
            d_model=d,
            frozen=False,
            interaction_layer=None,
            dac_use_selfatt_ln=True,
            resolution=res,
            stride=14,
            use_act_checkpoint=False,
            presence_token=True,
        )

    def dot_product_scoring() -> Any:
        mlp = mb.MLP(
            input_dim=d,
            hidden_dim=ffn,
            output_dim=d,
            num_layers=2,
            dropout=0.0,
            residual=True,
            out_norm=nn.LayerNorm(d),
        )
        return mb.DotProductScoring(d_model=d, d_proj=d, prompt_mlp=mlp)

    def segmentation_head(compile_mode: Any = None) -> Any:
        pixel_decoder = mb.PixelDecoder(
            num_upsampling_stages=3,
            interpolation_mode="nearest",
            hidden_dim=d,
            compile_mode=compile_mode,
        )
        return mb.UniversalSegmentationHead(
            hidden_dim=d,
            upsampling_stages=3,
            aux_masks=False,
            presence_head=False,
            dot_product_scorer=None,
            act_ckpt=False,
            cross_attend_prompt=mha(),
            pixel_decoder=pixel_decoder,
        )

    def geometry_encoder() -> Any:
        layer = enc_layer(
            pos_enc_at_attn=False,
            pre_norm=True,
            self_attention=mha(),
            pos_enc_at_cross_attn_queries=False,
            pos_enc_at_cross_attn_keys=True,
            cross_attention=mha(),
        )
        return mb.SequenceGeometryEncoder(
            pos_enc=position_encoding(),
            encode_boxes_as_points=False,
            points_direct_project=True,
            points_pool=True,
            points_pos_enc=True,
            boxes_direct_project=True,
            boxes_pool=True,
            boxes_pos_enc=True,
            d_model=d,
            num_layers=1,
            layer=layer,
            use_act_ckpt=False,
            add_cls=True,
            add_post_encode_proj=True,
        )

    return {
        "_create_position_encoding": position_encoding,
        "_create_vit_backbone": vit_backbone,
        "_create_vit_neck": vit_neck,
        "_create_text_encoder": text_encoder,
        "_create_transformer_encoder": transformer_encoder,
        "_create_transformer_decoder": transformer_decoder,
        "_create_dot_product_scoring": dot_product_scoring,
        "_create_segmentation_head": segmentation_head,
        "_create_geometry_encoder": geometry_encoder,
    }


def build_meta_sam3(
    device: str | torch.device = "cpu",
    bpe_path: str | None = None,
    dims: Mapping[str, int] | None = None,
) -> Any:
    """Meta's ``build_sam3_image_model`` without weights, on any device (CPU via the compat
    layer); ``dims`` builds a reduced variant by swapping the private factories (scoped)."""
    import sam3.model_builder as mb

    dev = resolve_device(device)
    bpe = bpe_path or default_bpe_path()
    factories = _tiny_factories(dims) if dims is not None else {}
    with sam3_cpu_compat(), patched(mb, **factories):
        model = mb.build_sam3_image_model(
            bpe_path=bpe,
            device=dev.type,
            eval_mode=True,
            checkpoint_path=None,
            load_from_HF=False,
            enable_segmentation=True,
            enable_inst_interactivity=False,
        )
    return model.to(dev).eval()


def write_tiny_meta_sam3(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny random Meta SAM3 (``sam3_tiny.pt`` + ``sam3_tiny.samgap.json``); returns the .pt."""
    from .tiny import reinit_pytorch_default

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_meta_sam3("cpu", dims=TINY_DIMS)
    reinit_pytorch_default(model)
    init_uninitialised_text_params(model, seed)
    ckpt = folder / "sam3_tiny.pt"
    sd = {f"detector.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model": sd}, ckpt)
    (folder / ("sam3_tiny" + SIDE_CAR)).write_text(
        json.dumps({"dims": TINY_DIMS, "seed": seed}, indent=1)
    )
    return ckpt


def _read_state(ckpt: Path) -> dict[str, torch.Tensor]:
    """The detector state dict of a Meta SAM3 checkpoint (``detector.`` prefix removed)."""
    try:
        raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have many types
        raise CheckpointMismatchError(
            f"{ckpt} is not a readable torch checkpoint ({exc})."
        ) from exc
    if isinstance(raw, dict) and isinstance(raw.get("model"), dict):
        raw = raw["model"]
    if not isinstance(raw, dict):
        raise CheckpointMismatchError(f"{ckpt} does not hold a state dict.")
    sd = {k.removeprefix("detector."): v for k, v in raw.items() if not k.startswith("tracker.")}
    if not any(k.startswith("backbone.language_backbone.") for k in sd):
        raise CheckpointMismatchError(
            f"{ckpt} is not a Meta SAM3 checkpoint: its weights are missing the SAM3 text encoder "
            "(backbone.language_backbone.*). SAM2 checkpoints go to load_sam2; set the path to sam3.pt."
        )
    return sd


def _load_state(model: Any, sd: dict[str, torch.Tensor], ckpt: Path) -> None:
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except RuntimeError as exc:
        raise CheckpointMismatchError(
            f"{ckpt}: the weights do not fit this SAM3 build ({str(exc)[:300]}); a reduced "
            "checkpoint needs its .samgap.json beside it."
        ) from exc
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"{ckpt}: {len(missing)} missing and {len(unexpected)} unexpected weights for Meta's SAM3 "
            f"image model (e.g. {(missing + unexpected)[:3]}); check that it is a SAM3 checkpoint."
        )


def load_meta_sam3(
    source: str | os.PathLike,
    device: str | torch.device = "auto",
    *,
    bpe_path: str | os.PathLike | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Meta's SAM3 image model from a hub id (``facebook/sam3`` -> ``sam3.pt``), folder or .pt.

    Returns the model and ``info`` (``resolution``, ``dims``, ``checkpoint``). Unlike Meta's
    loader, missing or unexpected weights raise instead of printing.
    """
    if is_hub_id(source):
        ckpt = resolve_source(source, filename="sam3.pt", revision=revision, token=token).path
    else:
        path = resolve_source(source, what="Meta SAM3 checkpoint").path
        if path.is_dir():
            pts = sorted(path.glob("*.pt"))
            if len(pts) != 1:
                raise CheckpointNotFoundError(
                    f"{path}: expected exactly one .pt checkpoint, found {[p.name for p in pts]}; set "
                    "the path to the file."
                )
            path = pts[0]
        ckpt = path
    sd = _read_state(ckpt)
    side = ckpt.with_name(ckpt.stem + SIDE_CAR)
    dims = json.loads(side.read_text()).get("dims") if side.is_file() else None
    model = build_meta_sam3(device, None if bpe_path is None else os.fspath(bpe_path), dims)
    _load_state(model, sd, ckpt)
    info = {
        "resolution": int(dims["resolution"]) if dims else 1008,
        "dims": dims,
        "checkpoint": str(ckpt),
    }
    return model, info


# ----------------------------------------------------------------------------- the role


class MetaSam3ConceptSegmenter:
    """Noun phrases and exemplar boxes on Meta's SAM3, all phrases in one batched pass.

    Parameters
    ----------
    model
        Meta ``Sam3Image`` (from `load_meta_sam3`).
    threshold
        Keep instances with ``sigmoid(logit) x presence`` above it.
    info
        ``{"resolution": ...}`` from `load_meta_sam3` (default 1008).
    """

    backend = "meta"

    def __init__(
        self,
        model: Any,
        threshold: float = 0.5,
        info: Mapping[str, Any] | None = None,
        mask_threshold: float = 0.5,
        max_batch: int | None = None,
    ) -> None:
        from sam3.model.sam3_image_processor import Sam3Processor

        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.resolution = int((info or {}).get("resolution", 1008))
        self.threshold = float(threshold)
        self.mask_threshold = float(mask_threshold)
        self.max_batch = max_batch
        with sam3_cpu_compat():
            # the official processor, used for the image transform and as the sequential reference
            self.processor = Sam3Processor(
                model,
                resolution=self.resolution,
                device=str(self.device),
                confidence_threshold=threshold,
            )
        self._state: dict[str, Any] | None = None
        self._image_hw: tuple[int, int] | None = None

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` once (passed as PIL: Meta misreads numpy HWC sizes)."""
        from PIL import Image

        image = check_image(image)
        with sam3_cpu_compat():
            self._state = self.processor.set_image(Image.fromarray(image))
        self._image_hw = (int(image.shape[0]), int(image.shape[1]))

    def _geometry(self, group: Sequence[tuple[str, Exemplars | None]]) -> Any:
        from sam3.model.geometry_encoders import Prompt

        assert self._image_hw is not None
        p = len(group)
        if all(ex is None for _, ex in group):
            return self.model._get_dummy_prompt(num_prompts=p)
        e_max = max(len(ex.boxes) for _, ex in group if ex is not None)
        boxes = torch.zeros(e_max, p, 4)
        labels = torch.zeros(e_max, p, dtype=torch.long)
        mask = torch.ones(p, e_max, dtype=torch.bool)  # True = padding
        for i, (_, ex) in enumerate(group):
            if ex is None:
                continue
            k = len(ex.boxes)
            boxes[:k, i] = torch.from_numpy(xyxy_to_cxcywh_norm(ex.boxes, self._image_hw))
            labels[:k, i] = torch.from_numpy(ex.labels)
            mask[i, :k] = False
        dev = self.device
        return Prompt(
            box_embeddings=boxes.to(dev), box_mask=mask.to(dev), box_labels=labels.to(dev)
        )

    @torch.inference_mode()
    def _run(
        self, group: Sequence[tuple[str, Exemplars | None]], threshold: float
    ) -> list[ConceptPrediction]:
        from sam3.model import box_ops
        from sam3.model.data_misc import FindStage

        assert self._state is not None and self._image_hw is not None
        p = len(group)
        dev = self.device
        with sam3_cpu_compat():
            backbone_out = dict(self._state["backbone_out"])
            backbone_out.update(
                self.model.backbone.forward_text([ph for ph, _ in group], device=dev)
            )
            find = FindStage(
                img_ids=torch.zeros(p, dtype=torch.long, device=dev),
                text_ids=torch.arange(p, dtype=torch.long, device=dev),
                input_boxes=None,
                input_boxes_mask=None,
                input_boxes_label=None,
                input_points=None,
                input_points_mask=None,
            )
            out = self.model.forward_grounding(
                backbone_out=backbone_out,
                find_input=find,
                geometric_prompt=self._geometry(group),
                find_target=None,
            )
        boxes = box_ops.box_cxcywh_to_xyxy(out["pred_boxes"])
        presence = out["presence_logit_dec"].reshape(p, -1)
        return [
            select_instances(
                phrase,
                out["pred_logits"][i].reshape(-1),
                presence[i, 0],
                boxes[i],
                out["pred_masks"][i],
                self._image_hw,
                threshold,
                self.mask_threshold,
            )
            for i, (phrase, _) in enumerate(group)
        ]

    def segment(
        self,
        image: np.ndarray | None = None,
        phrases: Sequence[str] | str | None = None,
        exemplars: Exemplars | Mapping[str, Exemplars] | None = None,
        threshold: float | None = None,
    ) -> dict[str, ConceptPrediction]:
        """Same contract as `HFConceptSegmenter.segment`."""
        if image is not None:
            self.set_image(image)
        if self._state is None:
            raise RuntimeError("no image: pass image= or call set_image(image) first.")
        prompts = concept_prompts(phrases, exemplars)
        thr = self.threshold if threshold is None else float(threshold)
        groups = [[q for q in prompts if q[1] is None], [q for q in prompts if q[1] is not None]]
        step = self.max_batch or len(prompts)
        results: dict[str, ConceptPrediction] = {}
        for group in groups:
            for start in range(0, len(group), step):
                for pred in self._run(group[start : start + step], thr):
                    results[pred.phrase] = pred
        return {q: results[q] for q, _ in prompts}

    def segment_sequential(self, phrase: str) -> dict[str, Any]:
        """Meta's own one-phrase call (``Sam3Processor.set_text_prompt``) on the set image, under
        the compat layer: the reference for tests and benchmarks. Returns Meta's state dict."""
        if self._state is None:
            raise RuntimeError("no image: call set_image(image) first.")
        with sam3_cpu_compat():
            self.processor.reset_all_prompts(self._state)
            return self.processor.set_text_prompt(phrase, self._state)


class MetaSam3TrackerSegmenter:
    """Placeholder for Meta's SAM3 point/box prompts: see `META_SAM3_TRACKER_UNSUPPORTED`."""

    backend = "meta"

    def __init__(self, model: Any, info: Mapping[str, Any] | None = None) -> None:
        if int((info or {}).get("resolution", 1008)) != 1008:
            raise NotImplementedError(META_SAM3_TRACKER_UNSUPPORTED)
        raise NotImplementedError(
            "Meta SAM3 tracker role is not wrapped by samgap yet (it needs enable_inst_interactivity="
            "True at 1008 px, ~35 s per image on CPU); use backend='transformers' for role='tracker'."
        )
