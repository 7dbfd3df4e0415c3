"""`ConceptSegmenter` and `PromptSegmenter` on Meta's ``sam3`` package, on CPU through
`meta_sam3_cpu`.

Concept role: Meta's ``Sam3Processor.set_text_prompt`` takes one phrase per call. The detector
itself is batched over "find queries" (``FindStage(img_ids, text_ids)``), so here every phrase of
a call runs in one ``forward_grounding`` that shares the image features: text encoded as one
batch, ``img_ids = 0`` for all, ``text_ids = 0..P-1``, exemplar boxes padded and masked.

Tracker role (points, boxes, mask logits): Meta's ``Sam3Image.predict_inst`` path, i.e. the
model built with ``enable_inst_interactivity=True``, whose ``SAM3InteractiveImagePredictor``
decodes from the detector backbone's SAM2-style neck (``sam2_backbone_out``).
`MetaSam3TrackerSegmenter` encodes an image once with Meta's ``Sam3Processor.set_image`` and
decodes all objects of a call in grouped mask-decoder calls (``_prep_prompts`` + ``_predict``).
Meta builds that tracker for 1008 px only (``build_tracker(image_size=1008)``, predictor
``_bb_feat_sizes`` fixed to 288/144/72); `build_meta_sam3` builds it at the model's resolution
(`tracker_feat_sizes`).

Checkpoints follow Meta's ``sam3.pt``: ``detector.*`` keys for ``Sam3Image`` and ``tracker.*``
for the tracker (loaded as ``inst_interactive_predictor.model.*``, as Meta's ``_load_checkpoint``
does). Tiny checkpoints: `write_tiny_meta_sam3` swaps the private ``_create_*`` factories of
``sam3.model_builder`` (scoped) for small versions and saves both parts, plus a ``.samgap.json``
with the dimensions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samgap_lib.data.types import check_image

from ...devices import autocast, autocast_dtype, resolve_device
from ..base import (
    CheckedPrompts,
    ConceptPrediction,
    Exemplars,
    PromptResult,
    check_prompts,
    concat_results,
    concept_prompts,
    objects_per_call,
    prompt_result,
    split_prompts,
)
from ..loading import CheckpointMismatchError, CheckpointNotFoundError, is_hub_id, resolve_source
from ..postprocess import select_instances, xyxy_to_cxcywh_norm
from ..upsample import upsample_masks
from .reduced import reduced_factories
from .sam2 import decode_low_res
from .sam3_cpu import patched, sam3_cpu_compat

__all__ = [
    "META_SAM3_VIDEO_UNSUPPORTED",
    "MetaSam3ConceptSegmenter",
    "MetaSam3TrackerSegmenter",
    "build_meta_sam3",
    "default_bpe_path",
    "load_meta_sam3",
    "tracker_feat_sizes",
]

META_SAM3_VIDEO_UNSUPPORTED = (
    "Meta's SAM3 video predictor (sam3.model_builder.build_sam3_video_predictor) is CUDA-bound: it "
    "initialises torch.distributed/NCCL process groups per GPU and moves frames and state with "
    ".cuda() in sam3/model/io_utils.py, so it cannot run on CPU. Use backend='transformers' "
    "(Sam3VideoModel) for SAM3 video, or run the Meta backend on a CUDA machine with sam3 directly."
)
SIDE_CAR = ".samgap.json"
# where Meta's Sam3Image keeps the tracker (``tracker.*`` in sam3.pt) and the SAM2-style neck
# the tracker decodes from (a detector part, used by nothing else)
TRACKER_PREFIX = "inst_interactive_predictor.model."
SAM2_NECK_PREFIX = "backbone.vision_backbone.sam2_convs."


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


def tracker_feat_sizes(resolution: int) -> list[tuple[int, int]]:
    """Sizes of the three feature maps the SAM3 tracker decodes from at ``resolution`` px: the
    SAM2-style neck upsamples the 14-px patch grid 4x, 2x and 1x (288, 144, 72 at 1008 px,
    Meta's hard-wired ``SAM3InteractiveImagePredictor._bb_feat_sizes``)."""
    grid = int(resolution) // 14
    return [(4 * grid,) * 2, (2 * grid,) * 2, (grid,) * 2]


def _tracker_factories(dims: Mapping[str, int] | None) -> dict[str, Any]:
    """Replacements in ``sam3.model_builder`` for building the tracker of
    ``build_sam3_image_model(enable_inst_interactivity=True)``.

    Always: ``Sam3TrackerPredictor`` is wrapped so that the CUDA bf16 autocast its ``__init__``
    enters and never leaves (``self.bf16_context.__enter__()``) is left again right away; it
    would otherwise stay on for the rest of the thread. With ``dims``: Meta's ``build_tracker``
    is kept, but the predictor gets ``image_size=dims["resolution"]`` and the memory encoder /
    memory attention are built at the model's widths and feature sizes (Meta: 1008 px, 256/64
    wide). The prompt encoder and mask decoder follow ``image_size`` and the model width by
    themselves (``Sam3TrackerBase._build_sam_heads``).
    """
    import sam3.model_builder as mb

    tracker_cls = mb.Sam3TrackerPredictor  # the class, before any patching

    def tracker(**kwargs: Any) -> Any:
        if dims is not None:
            kwargs["image_size"] = int(dims["resolution"])
        model = tracker_cls(**kwargs)
        ctx = getattr(model, "bf16_context", None)
        if ctx is not None:
            ctx.__exit__(None, None, None)
        return model

    out: dict[str, Any] = {"Sam3TrackerPredictor": tracker}
    if dims is None:
        return out
    d, ffn, res, mem = dims["d_model"], dims["ffn"], dims["resolution"], dims["mem_dim"]
    grid = res // 14

    def maskmem_backbone() -> Any:
        return mb.SimpleMaskEncoder(
            out_dim=mem,
            position_encoding=mb.PositionEmbeddingSine(
                num_pos_feats=mem,
                normalize=True,
                scale=None,
                temperature=10000,
                precompute_resolution=res,
            ),
            mask_downsampler=mb.SimpleMaskDownSampler(
                embed_dim=d, kernel_size=3, stride=2, padding=1, interpol_size=[16 * grid] * 2
            ),
            fuser=mb.SimpleFuser(
                layer=mb.CXBlock(
                    dim=d, kernel_size=7, padding=3, layer_scale_init_value=1.0e-06, use_dwconv=True
                ),
                num_layers=1,
            ),
            in_dim=d,
        )

    def rope(**kwargs: Any) -> Any:
        return mb.RoPEAttention(
            embedding_dim=d,
            num_heads=1,
            downsample_rate=1,
            dropout=0.0,
            rope_theta=10000.0,
            feat_sizes=[grid, grid],
            use_fa3=False,
            use_rope_real=False,
            **kwargs,
        )

    def tracker_transformer() -> Any:
        layer = mb.TransformerDecoderLayerv2(
            cross_attention_first=False,
            activation="relu",
            dim_feedforward=ffn,
            dropout=0.0,
            pos_enc_at_attn=False,
            pre_norm=True,
            self_attention=rope(),
            d_model=d,
            pos_enc_at_cross_attn_keys=True,
            pos_enc_at_cross_attn_queries=False,
            cross_attention=rope(kv_in_dim=mem, rope_k_repeat=True),
        )
        encoder = mb.TransformerEncoderCrossAttention(
            remove_cross_attention_layers=[],
            batch_first=True,
            d_model=d,
            frozen=False,
            pos_enc_at_input=True,
            layer=layer,
            num_layers=1,
            use_act_checkpoint=False,
        )
        return mb.TransformerWrapper(encoder=encoder, decoder=None, d_model=d)

    out["_create_tracker_maskmem_backbone"] = maskmem_backbone
    out["_create_tracker_transformer"] = tracker_transformer
    return out


def build_meta_sam3(
    device: str | torch.device = "cpu",
    bpe_path: str | None = None,
    dims: Mapping[str, int] | None = None,
    tracker: bool = False,
) -> Any:
    """Meta's ``build_sam3_image_model`` without weights, on any device (CPU via the compat
    layer); ``dims`` builds a reduced variant by swapping the private factories (scoped).

    ``tracker`` adds the point/box tracker (``enable_inst_interactivity=True``: the SAM2-style
    neck and ``inst_interactive_predictor``), built at the model's resolution with the
    predictor's feature sizes from `tracker_feat_sizes`, so Meta's own ``predict_inst`` runs on
    it too.
    """
    import sam3.model_builder as mb

    dev = resolve_device(device)
    bpe = bpe_path or default_bpe_path()
    factories = reduced_factories(dims) if dims is not None else {}
    if tracker:
        factories.update(_tracker_factories(dims))
    with sam3_cpu_compat(), patched(mb, **factories):
        model = mb.build_sam3_image_model(
            bpe_path=bpe,
            device=dev.type,
            eval_mode=True,
            checkpoint_path=None,
            load_from_HF=False,
            enable_segmentation=True,
            enable_inst_interactivity=tracker,
        )
    if tracker:
        res = int(dims["resolution"]) if dims is not None else 1008
        model.inst_interactive_predictor._bb_feat_sizes = tracker_feat_sizes(res)
    return model.to(dev).eval()


def _read_state(ckpt: Path, tracker: bool = False) -> dict[str, torch.Tensor]:
    """The ``Sam3Image`` state dict of a Meta SAM3 checkpoint: ``detector.`` prefix removed;
    with ``tracker`` also the ``tracker.*`` weights as ``inst_interactive_predictor.model.*``
    (Meta's ``_load_checkpoint`` mapping), without it the tracker and the detector's SAM2-style
    neck (used only by the tracker) left out."""
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
    if not tracker:
        return {k: v for k, v in sd.items() if not k.startswith(SAM2_NECK_PREFIX)}
    trk = {
        TRACKER_PREFIX + k.removeprefix("tracker."): v
        for k, v in raw.items()
        if k.startswith("tracker.")
    }
    if not trk or not any(k.startswith(SAM2_NECK_PREFIX) for k in sd):
        raise CheckpointMismatchError(
            f"{ckpt} has no SAM3 tracker weights (tracker.* and detector.{SAM2_NECK_PREFIX}*), so "
            "role='tracker' cannot run on it. Load it with role='concept', or for points/boxes use "
            "Meta's full sam3.pt (source='facebook/sam3') or a checkpoint written by "
            "write_tiny_meta_sam3, which both carry the tracker."
        )
    return {**sd, **trk}


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
    tracker: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Meta's SAM3 image model from a hub id (``facebook/sam3`` -> ``sam3.pt``), folder or .pt.

    ``tracker`` also builds and loads the point/box tracker (``inst_interactive_predictor``,
    from the checkpoint's ``tracker.*`` weights; a checkpoint without them raises
    `CheckpointMismatchError`). Returns the model and ``info`` (``resolution``, ``dims``,
    ``checkpoint``). Unlike Meta's loader, missing or unexpected weights raise instead of
    printing.
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
    sd = _read_state(ckpt, tracker=tracker)
    side = ckpt.with_name(ckpt.stem + SIDE_CAR)
    dims = json.loads(side.read_text()).get("dims") if side.is_file() else None
    if tracker and dims is not None and "mem_dim" not in dims:
        raise CheckpointMismatchError(
            f"{side} lacks the tracker's 'mem_dim'; rewrite the checkpoint with write_tiny_meta_sam3."
        )
    bpe = None if bpe_path is None else os.fspath(bpe_path)
    model = build_meta_sam3(device, bpe, dims, tracker=tracker)
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
    max_batch
        Phrases per forward pass. None: all of them on a GPU; on a CPU as many as keep the pixel
        decoder's largest map under `CPU_BATCH_BYTES` (`phrases_per_pass`).
    """

    backend = "meta"
    # SAM3's pixel decoder embeds the image once per phrase, at 4x the patch grid: a batch of
    # phrases multiplies that map. On a CPU, batches whose maps outgrow the caches cost more
    # than the phrases one at a time (`samgap bench models`: 8 phrases batched 0.8x the speed of
    # 8 calls at 336 px, 4.5x at 112 px), so they are split to keep it under this many bytes.
    CPU_BATCH_BYTES = 24 * 2**20

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
        step = self.phrases_per_pass(len(prompts))
        results: dict[str, ConceptPrediction] = {}
        for group in groups:
            for start in range(0, len(group), step):
                for pred in self._run(group[start : start + step], thr):
                    results[pred.phrase] = pred
        return {q: results[q] for q, _ in prompts}

    def phrases_per_pass(self, n: int) -> int:
        """How many of ``n`` phrases one forward pass takes: ``max_batch`` when set; else all on
        a GPU, and on a CPU as many as keep the pixel decoder's largest map (``hidden_dim``
        channels at 4x the 14-px patch grid, float32) within `CPU_BATCH_BYTES`, at least one."""
        if self.max_batch:
            return int(self.max_batch)
        if self.device.type != "cpu":
            return max(1, n)
        side = 4 * (self.resolution // 14)
        per_phrase = self.model.segmentation_head.pixel_decoder.hidden_dim * side * side * 4
        return max(1, min(n, self.CPU_BATCH_BYTES // per_phrase))

    def segment_sequential(self, phrase: str) -> dict[str, Any]:
        """Meta's own one-phrase call (``Sam3Processor.set_text_prompt``) on the set image, under
        the compat layer: the reference for tests and benchmarks. Returns Meta's state dict."""
        if self._state is None:
            raise RuntimeError("no image: call set_image(image) first.")
        with sam3_cpu_compat():
            self.processor.reset_all_prompts(self._state)
            return self.processor.set_text_prompt(phrase, self._state)


def _can_fill_holes(device: torch.device) -> bool:
    """Whether Meta's mask hole filling can run: ``sam3.perflib.connected_components`` labels
    components with cc_torch or triton on CUDA and with scikit-image elsewhere."""
    if device.type == "cuda":
        return True
    return importlib.util.find_spec("skimage") is not None


class MetaSam3TrackerSegmenter:
    """Geometric prompts (points, boxes, mask logits) on Meta's SAM3 tracker, the model behind
    ``Sam3Image.predict_inst``; all objects of a call decoded together.

    Parameters
    ----------
    model
        Meta ``Sam3Image`` with its tracker, at any resolution (`load_meta_sam3` /
        `build_meta_sam3` with ``tracker=True``).
    info
        ``{"resolution": ...}`` from `load_meta_sam3`; checked against the tracker's size.
    use_autocast
        bfloat16 autocast on CUDA.

    Masks are Meta's: the predictor's hole filling (``_transforms.max_hole_area``, 256 low-res
    pixels) on the low-res logits, a bilinear resize to the image (`upsample_masks`, the same
    masks as Meta's ``F.interpolate``) and the predictor's ``mask_threshold``. On CPU the hole
    filling needs scikit-image; without it Meta's predictor skips it with a warning on every
    call, and this class skips it too (one warning). ``object_scores`` are the mask decoder's
    object-presence logits.
    """

    backend = "meta"

    def __init__(
        self, model: Any, info: Mapping[str, Any] | None = None, use_autocast: bool = True
    ) -> None:
        from sam3.model.sam3_image_processor import Sam3Processor

        pred = getattr(model, "inst_interactive_predictor", None)
        if pred is None:
            raise ValueError(
                "this SAM3 model has no tracker (inst_interactive_predictor): build or load it "
                "with tracker=True (load_sam3(..., backend='meta', role='tracker'))."
            )
        self.model = model.eval()
        self.predictor = pred
        self.device = next(model.parameters()).device
        self.input_size = int(pred.model.image_size)
        res = int((info or {}).get("resolution", self.input_size))
        if res != self.input_size:
            raise ValueError(
                f"the model runs at {res} px but its tracker was built for {self.input_size} px; "
                "build both with build_meta_sam3(..., tracker=True)."
            )
        self.name = "sam3-tracker"
        self.amp_dtype = autocast_dtype(self.device, use_autocast)
        self.objects_per_call = objects_per_call(self.device)
        post = pred._transforms
        self.fill_holes = post.max_hole_area > 0 or post.max_sprinkle_area > 0
        if self.fill_holes and not _can_fill_holes(self.device):
            warnings.warn(
                "Meta's SAM3 tracker fills small mask holes with scikit-image on CPU, which is not "
                "installed: skipping it as Meta's predictor does (pip install scikit-image to "
                "enable it).",
                UserWarning,
                stacklevel=2,
            )
            self.fill_holes = False
        with sam3_cpu_compat():
            # the official processor: Meta's image transform and backbone call
            self.processor = Sam3Processor(
                model, resolution=self.input_size, device=str(self.device)
            )
        self._features: dict[str, Any] | None = None
        self._orig_hw: list[tuple[int, int]] = []

    def _tracker_features(self, sam2_out: Mapping[str, Any]) -> dict[str, Any]:
        """The predictor's ``_features`` from ``sam2_backbone_out``, as ``Sam3Image.predict_inst``
        builds them on every call (here once per image; sizes read from the features)."""
        trk = self.predictor.model
        _, feats, _, sizes = trk._prepare_backbone_features(sam2_out)
        feats[-1] = feats[-1] + trk.no_mem_embed
        b = feats[-1].shape[1]
        maps = [f.permute(1, 2, 0).reshape(b, -1, *hw) for f, hw in zip(feats, sizes, strict=True)]
        return {"image_embed": maps[-1], "high_res_feats": maps[:-1]}

    def _encode(self, images: Sequence[np.ndarray]) -> dict[str, Any]:
        from PIL import Image

        pil = [Image.fromarray(im) for im in images]  # Meta misreads numpy HWC sizes
        with torch.inference_mode(), sam3_cpu_compat(), autocast(self.device, self.amp_dtype):
            if len(pil) == 1:
                state = self.processor.set_image(pil[0])
            else:
                state = self.processor.set_image_batch(pil)
            return self._tracker_features(state["backbone_out"]["sam2_backbone_out"])

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` (``(H, W, 3)`` uint8 RGB) once with Meta's ``Sam3Processor``."""
        image = check_image(image)
        self._features = self._encode([image])
        self._orig_hw = [(int(image.shape[0]), int(image.shape[1]))]

    def _decode(
        self,
        prompts: CheckedPrompts,
        multimask: bool,
        feats: dict[str, Any],
        orig_hw: list[tuple[int, int]],
        img_idx: int = 0,
    ) -> PromptResult:
        sparse = prompts.points is not None or prompts.boxes is not None
        # mask-only prompts go one by one: Meta's decoder repeats the image only for sparse ones
        group = (self.objects_per_call or prompts.n) if sparse else 1
        if prompts.n > group:
            parts = split_prompts(prompts, group)
            return concat_results(
                [self._decode(p, multimask, feats, orig_hw, img_idx) for p in parts]
            )
        pred = self.predictor
        obj: list[torch.Tensor] = []
        hook = pred.model.sam_mask_decoder.register_forward_hook(
            lambda _mod, _inp, out: obj.append(out[3])  # (masks, iou, tokens, object logits)
        )
        saved = (pred._features, pred._orig_hw, pred._is_image_set)
        pred._features, pred._orig_hw, pred._is_image_set = feats, orig_hw, True
        try:
            with torch.inference_mode(), autocast(self.device, self.amp_dtype):
                masks, scores, low = decode_low_res(
                    pred, prompts, multimask, img_idx, fill_holes=self.fill_holes
                )
        finally:
            hook.remove()
            pred._features, pred._orig_hw, pred._is_image_set = saved
        masks_np = upsample_masks(masks, orig_hw[img_idx], pred.mask_threshold)
        obj_logits = obj[0].float().reshape(prompts.n, -1)[:, 0]
        return prompt_result(masks_np, scores, low, multimask, obj_logits)

    def predict(
        self,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
    ) -> PromptResult:
        """Same contract as `HFPromptSegmenter.predict` (objects decoded in groups of
        ``objects_per_call``; mask-only prompts one by one)."""
        if self._features is None:
            raise RuntimeError("no image set: call set_image(image) first.")
        prompts = check_prompts(points, point_labels, boxes, mask_input)
        return self._decode(prompts, multimask, self._features, self._orig_hw)

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        prompts: Sequence[Mapping[str, Any]],
        multimask: bool = True,
    ) -> list[PromptResult]:
        """Encode the images as one batch (``Sam3Processor.set_image_batch``), then decode each
        image's prompts; the image set with `set_image` stays set."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompt sets.")
        if not images:
            return []
        checked = [check_image(im, what=f"image {i}") for i, im in enumerate(images)]
        parsed = [check_prompts(**pr) for pr in prompts]
        feats = self._encode(checked)
        hw = [(int(im.shape[0]), int(im.shape[1])) for im in checked]
        return [self._decode(p, multimask, feats, hw, img_idx=i) for i, p in enumerate(parsed)]
