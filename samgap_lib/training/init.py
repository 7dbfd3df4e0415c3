"""Models to train: the orchard sizes from scratch (`samgap_lib.models.archs`), or released checkpoints.

From scratch, four things from the CPU prototype (REFERENCE.md, "Training tiny SAMs from
scratch") are applied here: PyTorch-default re-initialisation (transformers' init leaves the
SAM decoders' mask logits near zero), the image-grid and prompt positional encodings tied,
``mask_input_channels >= 32`` and ``dynamic_multimask_via_stability`` off. For SAM3 the query
reference boxes start spread on a regular grid, and the decoder's box relative-position bias
starts as a locality prior (`init_box_rpb_locality`); without it the detector does not learn.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..config import merge
from ..models.archs import (
    ORCHARD_ARCHS,
    SAM3_QUERIES,
    byte_level_clip_tokenizer,
    image_processor,
    orchard_sam2_config,
    orchard_sam2_video_config,
    orchard_sam3_config,
    reset_parameters,
)
from ..models.loading import hf_folder, load_hf_pretrained, load_hf_processor, read_model_type
from .optim import component_of

__all__ = [
    "build_model",
    "enable_grad_checkpointing",
    "grid_reference_boxes",
    "init_box_rpb_locality",
    "init_vit_sincos_positions",
    "model_image_size",
    "sam3_queries",
    "sincos_position_grid",
    "tie_positional_encodings",
]


def sam3_queries(init: dict[str, Any]) -> int:
    """How many DETR queries a SAM3 built from scratch from a config's ``init`` section has:
    ``init.num_queries``, or ``SAM3_QUERIES`` when it is null or absent."""
    return init.get("num_queries") or SAM3_QUERIES


def tie_positional_encodings(model: Any) -> None:
    """Make the prompt encoder's point encoding use the image grid's random Fourier matrix
    (equal in released SAM2 checkpoints, independent at random init)."""
    src = model.shared_image_embedding.positional_embedding
    model.prompt_encoder.shared_embedding.positional_embedding.data.copy_(src.data)


def grid_reference_boxes(n_queries: int, size: float | None = None) -> torch.Tensor:
    """``(n, 4)`` inverse-sigmoid cxcywh reference boxes on a ``ceil(sqrt(n))`` square grid."""
    k = math.ceil(math.sqrt(n_queries))
    side = size if size is not None else 1.0 / k
    boxes = []
    for i in range(n_queries):
        r, c = divmod(i, k)
        boxes.append([(c + 0.5) / k, (r + 0.5) / k, side, side])
    b = torch.tensor(boxes).clamp(1e-3, 1 - 1e-3)
    return torch.log(b / (1 - b))


def init_box_rpb_locality(model: Any, strength: tuple[float, float] = (2.0, 20.0)) -> None:
    """Start SAM3's box relative-position bias (RPB) as a locality prior: each decoder query
    attends mostly inside its reference box.

    The RPB turns, per axis, the log-scaled distances of a feature-grid coordinate to the box's
    two edges ``(d0, d1)`` into one bias per head with a 2-layer MLP. Random, it biases nothing,
    every query attends to the same few tokens and the detector never leaves an
    image-independent answer (measured: one red square at random positions on a plain
    background, 1500 steps, classification and box losses flat). Here two hidden units compute
    ``relu(-d0)`` and ``relu(d1)`` (how far the coordinate lies outside the box) and every head
    subtracts them times its own strength, geometrically spaced over ``strength`` so heads
    range from broad to sharp. The other hidden units keep their random first layer and start
    with zero output weights, free to learn.
    """
    dec = model.detr_decoder
    heads = int(dec.box_rpb_embed_x.layer2.out_features)
    lo, hi = strength
    betas = torch.tensor(
        [lo * (hi / lo) ** (i / max(1, heads - 1)) for i in range(heads)], dtype=torch.float32
    )
    with torch.no_grad():
        for mlp in (dec.box_rpb_embed_x, dec.box_rpb_embed_y):
            mlp.layer1.weight[:2] = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
            mlp.layer1.bias[:2] = 0.0
            mlp.layer2.weight.zero_()
            mlp.layer2.bias.zero_()
            mlp.layer2.weight[:, 0] = -betas
            mlp.layer2.weight[:, 1] = -betas


def sincos_position_grid(grid: int, channels: int) -> torch.Tensor:
    """``(grid * grid, channels)`` 2-D sine-cosine position codes (as MAE's fixed ViT embedding):
    half the channels encode the row, half the column, each as sin/cos pairs at frequencies
    log-spaced from a wavelength of 4 tokens to 4 x ``grid`` tokens (so every code varies over
    the grid and none aliases). Values lie in [-1, 1], std about 0.7."""
    if channels % 4:
        raise ValueError(f"channels must be a multiple of 4, got {channels}.")
    n = channels // 4
    lo, hi = 2 * math.pi / (4 * grid), 2 * math.pi / 4
    omega = hi * (lo / hi) ** (torch.arange(n, dtype=torch.float64) / max(1, n - 1))
    pos = torch.arange(grid, dtype=torch.float64)
    ang = pos[:, None] * omega[None]  # (grid, n)
    axis = torch.cat([ang.sin(), ang.cos()], dim=1)  # (grid, 2n)
    rows = axis[:, None, :].expand(grid, grid, 2 * n)
    cols = axis[None, :, :].expand(grid, grid, 2 * n)
    return torch.cat([rows, cols], dim=-1).reshape(grid * grid, channels).float()


def init_vit_sincos_positions(model: Any) -> None:
    """Start the SAM3 ViT's absolute position embedding as `sincos_position_grid`.

    transformers draws it with std 0.02 while the patch embedding's output has std about 0.6, so
    at random init the image tokens carry almost no absolute position. The instance masks are a
    dot product of a query's embedding with per-pixel features, so without position in those
    features every apple of one colour looks alike: each query's mask spreads over all of them
    (measured on a trained orchard-tiny SAM3: the bounding box of a box-correct detection's mask
    had median IoU 0.14 with the apple's box). The embedding stays trainable.
    """
    emb = model.vision_encoder.backbone.embeddings.position_embeddings
    grid = math.isqrt(emb.shape[1])
    with torch.no_grad():
        emb.copy_(sincos_position_grid(grid, emb.shape[2])[None].to(emb.dtype))


def _from_scratch(
    model_kind: str, arch: str, size: int, seed: int, num_queries: int = SAM3_QUERIES
) -> tuple[Any, Any]:
    import transformers as tf

    torch.manual_seed(seed)
    if model_kind == "sam2":
        model = tf.Sam2Model(orchard_sam2_config(arch, size))
        reset_parameters(model)
        tie_positional_encodings(model)
        ip = image_processor("sam2", size, size // 4)
        return model, tf.Sam2Processor(image_processor=ip)
    model = tf.Sam3Model(orchard_sam3_config(arch, size, num_queries=num_queries))
    reset_parameters(model)
    dec = model.detr_decoder
    with torch.no_grad():
        dec.reference_points.weight.copy_(grid_reference_boxes(dec.reference_points.num_embeddings))
    init_box_rpb_locality(model)
    init_vit_sincos_positions(model)
    mask_hw = int(model.config.vision_config.backbone_feature_sizes[0][0])
    ip = image_processor("sam3", size, mask_hw)
    return model, tf.Sam3Processor(image_processor=ip, tokenizer=byte_level_clip_tokenizer())


def _from_checkpoint(model_kind: str, source: str) -> tuple[Any, Any]:
    import transformers as tf

    folder = hf_folder(source)
    if model_kind == "sam2":
        model = load_hf_pretrained(
            tf.Sam2Model,
            Path(folder),
            ("sam2", "sam2_video"),
            strict=True,
            what="samgap train sam2",
        )
        return model, load_hf_processor(tf.Sam2Processor, Path(folder))
    model = load_hf_pretrained(
        tf.Sam3Model, Path(folder), ("sam3", "sam3_video"), strict=True, what="samgap train sam3"
    )
    return model, load_hf_processor(tf.Sam3Processor, Path(folder))


def video_model(image_model: Any, video: dict[str, Any], seed: int) -> Any:
    """A ``Sam2VideoModel`` holding ``image_model``'s weights (a ``Sam2Model``) and a new memory
    path (`orchard_sam2_video_config`, PyTorch-default initialisation from ``seed``)."""
    import transformers as tf

    vc = orchard_sam2_video_config(
        image_model.config,
        num_maskmem=int(video["num_maskmem"]),
        memory_layers=int(video["memory_layers"]),
        max_object_pointers=int(video["max_object_pointers"]),
    )
    torch.manual_seed(seed)
    model = tf.Sam2VideoModel(vc)
    reset_parameters(model)
    missing, unexpected = model.load_state_dict(image_model.state_dict(), strict=False)
    image_only = [k for k in missing if component_of("sam2", k) != "memory"]
    if unexpected or image_only:
        raise ValueError(
            f"the SAM2 image weights do not fit the video model: unexpected {unexpected[:3]}, "
            f"missing outside the memory path {image_only[:3]}."
        )
    for key, value in vars(image_model.config).items():
        if key.startswith("samgap_"):  # dense prompts, post-processing: what the card records
            setattr(model.config, key, value)
    return model


def build_model(cfg: dict[str, Any]) -> tuple[Any, Any]:
    """(model, processor) for a validated config: from ``init.checkpoint`` or from scratch.
    With ``video.frames`` a ``Sam2VideoModel``: a video checkpoint as it is, an image one (or
    a model from scratch) with a new memory path (`video_model`)."""
    kind, init = cfg["model"], cfg["init"]
    if kind == "sam2" and cfg["video"]["frames"]:
        import transformers as tf

        if (
            init["checkpoint"]
            and read_model_type(Path(hf_folder(init["checkpoint"]))) == "sam2_video"
        ):
            folder = Path(hf_folder(init["checkpoint"]))
            model = load_hf_pretrained(
                tf.Sam2VideoModel, folder, ("sam2_video",), strict=True, what="samgap train sam2"
            )
            processor = load_hf_processor(tf.Sam2Processor, folder)
        else:
            image, processor = build_model(merge(cfg, {"video": {"frames": 0}}))
            model = video_model(image, cfg["video"], int(init["seed"]))
        model.mask_decoder.dynamic_multimask_via_stability = False
        model.config.mask_decoder_config.dynamic_multimask_via_stability = False
        return model, processor
    if init["checkpoint"]:
        model, processor = _from_checkpoint(kind, init["checkpoint"])
    else:
        archs = ORCHARD_ARCHS[kind]
        if init["arch"] not in archs:
            raise ValueError(
                f"init.arch {init['arch']!r} is not a {kind} architecture; choose one of {archs}."
            )
        model, processor = _from_scratch(
            kind, init["arch"], cfg["data"]["image_size"], init["seed"], sam3_queries(init)
        )
    if kind == "sam2":
        model.mask_decoder.dynamic_multimask_via_stability = False
        model.config.mask_decoder_config.dynamic_multimask_via_stability = False
    return model, processor


def enable_grad_checkpointing(model: Any) -> int:
    r"""Activation checkpointing of every block of the image encoder (Hiera / ViT layers are
    transformers ``GradientCheckpointingLayer``\ s; ``Sam3Model`` refuses the model-wide switch,
    so it is set per layer). Returns the number of checkpointed blocks."""
    from functools import partial

    from torch.utils.checkpoint import checkpoint
    from transformers.modeling_layers import GradientCheckpointingLayer

    n = 0
    for module in model.vision_encoder.modules():
        if isinstance(module, GradientCheckpointingLayer):
            module.gradient_checkpointing = True
            module._gradient_checkpointing_func = partial(checkpoint, use_reentrant=False)
            n += 1
    if n == 0:
        raise ValueError("grad_checkpointing: the image encoder has no checkpointable blocks.")
    return n


def model_image_size(model: Any) -> int:
    """The square input size the model expects."""
    if hasattr(model, "prompt_encoder"):
        return int(model.prompt_encoder.input_image_size)
    s = model.config.vision_config.backbone_config.image_size
    return int(s[0] if isinstance(s, list | tuple) else s)
