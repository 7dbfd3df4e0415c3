"""Models to train: tiny from-scratch architectures ("orchard-*") or released checkpoints.

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

__all__ = [
    "SAM2_ARCHS",
    "SAM3_ARCHS",
    "SAM3_QUERIES",
    "sam3_queries",
    "build_model",
    "sam2_config",
    "sam3_config",
    "count_params",
    "tie_positional_encodings",
    "grid_reference_boxes",
    "init_box_rpb_locality",
]

SAM2_ARCHS = ("orchard-m", "orchard-s")
SAM3_ARCHS = ("orchard-s", "orchard-xs")
SAM3_QUERIES = 36  # DETR queries of the from-scratch SAM3 archs (init.num_queries: null)


def sam3_queries(init: dict[str, Any]) -> int:
    """How many DETR queries a SAM3 built from scratch from a config's ``init`` section has:
    ``init.num_queries``, or ``SAM3_QUERIES`` when it is null or absent."""
    return init.get("num_queries") or SAM3_QUERIES


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def sam2_config(arch: str = "orchard-m", size: int = 128) -> Any:
    """``Sam2Config`` of a tiny orchard architecture at ``size`` px."""
    from transformers import Sam2Config
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    if arch not in SAM2_ARCHS:
        raise ValueError(f"unknown SAM2 arch {arch!r}; choose one of {SAM2_ARCHS}.")
    widths = [24, 48, 96, 192] if arch == "orchard-m" else [16, 32, 64, 128]
    hidden = 64 if arch == "orchard-m" else 32
    backbone = Sam2HieraDetConfig(
        hidden_size=widths[0],
        num_attention_heads=1,
        image_size=[size, size],
        blocks_per_stage=[1, 2, 3, 1],
        embed_dim_per_stage=widths,
        num_attention_heads_per_stage=[1, 2, 4, 8],
        window_size_per_stage=[8, 4, 8, 4],
        global_attention_blocks=[5],
        window_positional_embedding_background_size=[4, 4],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=widths[::-1],
        backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
        fpn_hidden_size=hidden,
    )
    return Sam2Config(
        vision_config=vision,
        prompt_encoder_config={
            "hidden_size": hidden,
            "image_size": size,
            "patch_size": 16,
            "mask_input_channels": 32,
        },
        mask_decoder_config={
            "hidden_size": hidden,
            "mlp_dim": 2 * hidden,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "iou_head_hidden_dim": hidden,
            "dynamic_multimask_via_stability": False,
        },
    )


def sam3_config(
    arch: str = "orchard-s",
    size: int = 224,
    vocab_size: int = 514,
    num_queries: int = SAM3_QUERIES,
) -> Any:
    """``Sam3Config`` of a tiny orchard architecture at ``size`` px (patch 14).

    ``orchard-s``: ViT 64 x 2 layers, FPN scales [4, 2, 1, 0.5] (the model drops the last,
    so masks come out at 4x the patch grid: 64x64 at 224 px), DETR encoder 1 layer, decoder 2
    layers, hidden 64, 36 queries (a 6 x 6 grid of reference boxes: up to 12 apples per image,
    often touching, need more than the 16 of a 4 x 4 grid), text encoder 2 layers of 32;
    dropout 0.
    ``orchard-xs``: the same with masks at 2x the grid (scales [2, 1, 0.5]: 32x32 at 224 px);
    an orchard-tiny training step takes about 0.7x the time (the mask decoder works per
    (image, phrase) pair at the mask resolution). Orchard-tiny SAM3 uses it.
    ``num_queries`` replaces the 36 (``SAM3_QUERIES``); `_from_scratch` lays their reference
    boxes on a ``ceil(sqrt(n))`` square grid.
    """
    from transformers import Sam3Config
    from transformers.models.sam3.configuration_sam3 import (
        Sam3DETRDecoderConfig,
        Sam3DETREncoderConfig,
        Sam3GeometryEncoderConfig,
        Sam3MaskDecoderConfig,
        Sam3VisionConfig,
        Sam3ViTConfig,
    )

    if arch not in SAM3_ARCHS:
        raise ValueError(f"unknown SAM3 arch {arch!r}; choose one of {SAM3_ARCHS}.")
    patch = 14
    grid = size // patch
    hidden = 64
    backbone = Sam3ViTConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        image_size=size,
        patch_size=patch,
        window_size=grid // 2,
        global_attn_indexes=[1],
        pretrain_image_size=size,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    )
    scales = [4.0, 2.0, 1.0, 0.5] if arch == "orchard-s" else [2.0, 1.0, 0.5]
    vision = Sam3VisionConfig(
        backbone_config=backbone,
        fpn_hidden_size=hidden,
        scale_factors=scales,
        backbone_feature_sizes=[[int(s * grid)] * 2 for s in scales[:-1]],
    )
    text = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "projection_dim": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 32,
        "hidden_act": "gelu",
        "bos_token_id": vocab_size - 2,
        "eos_token_id": vocab_size - 1,
        "pad_token_id": vocab_size - 1,
        "dropout": 0.0,
        "attention_dropout": 0.0,
    }
    small = {"hidden_size": hidden, "num_attention_heads": 4, "intermediate_size": 2 * hidden}
    return Sam3Config(
        vision_config=vision,
        text_config=text,
        geometry_encoder_config=Sam3GeometryEncoderConfig(num_layers=1, dropout=0.0, **small),
        detr_encoder_config=Sam3DETREncoderConfig(num_layers=1, dropout=0.0, **small),
        detr_decoder_config=Sam3DETRDecoderConfig(
            num_layers=2, num_queries=num_queries, dropout=0.0, **small
        ),
        mask_decoder_config=Sam3MaskDecoderConfig(
            hidden_size=hidden, num_upsampling_stages=len(scales) - 1, dropout=0.0
        ),
    )


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


def _reinit(model: torch.nn.Module) -> None:
    """PyTorch-default init of every layer, embeddings included: N(0, 1) query, mask-token and
    label embeddings (transformers' std 0.02 makes DETR queries and SAM's output tokens start
    almost identical, and the detector collapses to one image-independent answer)."""
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


def _from_scratch(
    model_kind: str, arch: str, size: int, seed: int, num_queries: int = SAM3_QUERIES
) -> tuple[Any, Any]:
    import transformers as tf

    from samgap_lib.models.tiny import byte_level_clip_tokenizer

    torch.manual_seed(seed)
    if model_kind == "sam2":
        model = tf.Sam2Model(sam2_config(arch, size))
        _reinit(model)
        tie_positional_encodings(model)
        ip = tf.Sam2ImageProcessor(
            size={"height": size, "width": size},
            mask_size={"height": size // 4, "width": size // 4},
        )
        return model, tf.Sam2Processor(image_processor=ip)
    model = tf.Sam3Model(sam3_config(arch, size, num_queries=num_queries))
    _reinit(model)
    dec = model.detr_decoder
    with torch.no_grad():
        dec.reference_points.weight.copy_(grid_reference_boxes(dec.reference_points.num_embeddings))
    init_box_rpb_locality(model)
    init_vit_sincos_positions(model)
    mask_hw = int(model.config.vision_config.backbone_feature_sizes[0][0])
    ip = tf.Sam3ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": mask_hw, "width": mask_hw}
    )
    return model, tf.Sam3Processor(image_processor=ip, tokenizer=byte_level_clip_tokenizer())


def _from_checkpoint(model_kind: str, source: str) -> tuple[Any, Any]:
    import transformers as tf

    from samgap_lib.models.factory import _hf_folder, _hf_processor
    from samgap_lib.models.loading import load_hf_pretrained

    folder = _hf_folder(source, None, None)
    if model_kind == "sam2":
        model = load_hf_pretrained(
            tf.Sam2Model,
            Path(folder),
            ("sam2", "sam2_video"),
            strict=True,
            what="samgap train sam2",
        )
        return model, _hf_processor(tf.Sam2Processor, Path(folder))
    model = load_hf_pretrained(
        tf.Sam3Model, Path(folder), ("sam3", "sam3_video"), strict=True, what="samgap train sam3"
    )
    return model, _hf_processor(tf.Sam3Processor, Path(folder))


def build_model(cfg: dict[str, Any]) -> tuple[Any, Any]:
    """(model, processor) for a validated config: from ``init.checkpoint`` or from scratch."""
    kind, init = cfg["model"], cfg["init"]
    if init["checkpoint"]:
        model, processor = _from_checkpoint(kind, init["checkpoint"])
    else:
        archs = SAM2_ARCHS if kind == "sam2" else SAM3_ARCHS
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
