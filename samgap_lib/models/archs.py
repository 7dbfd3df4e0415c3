"""One registry of SAM2 and SAM3 architectures: released sizes, orchard sizes and test sizes.

* **released**: the SAM 2.1 Hiera sizes of the hub checkpoints (``sam2.1-hiera-tiny`` ... ``-large``;
  `released_sam2_config`) and SAM3 (``sam3``: transformers' default ``Sam3Config``,
  `released_sam3_config`), built without weights for counting, tracing and benchmarks;
* **orchard**: the from-scratch sizes trained on the synthetic orchard (SAM2 ``orchard-m`` /
  ``orchard-s``, `orchard_sam2_config`; SAM3 ``orchard-s`` / ``orchard-xs``, `orchard_sam3_config`);
* **test**: the smallest models that run every role in milliseconds (`test_sam2_config`,
  `test_sam2_video_config`, `test_sam3_config`, `test_sam3_tracker_config`,
  `test_sam3_video_config`; `samgap_lib.models.testing` writes checkpoints of them).

`ARCHS` lists every name with its family, kind and native input size. The byte-level CLIP
tokenizer (`byte_level_clip_tokenizer`) and the processors that go with the small sizes
(`image_processor`, `test_processor`) live here too, as does `reset_parameters`, PyTorch's default
initialisation (transformers' leaves SAM's decoders near zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "ARCHS",
    "ORCHARD_ARCHS",
    "SAM2_PRESETS",
    "SAM3_QUERIES",
    "TEST_IMAGE_SIZE",
    "Arch",
    "byte_level_clip_tokenizer",
    "bytes_to_unicode",
    "count_params",
    "image_processor",
    "orchard_sam2_config",
    "orchard_sam2_video_config",
    "orchard_sam3_config",
    "released_sam2_config",
    "released_sam3_config",
    "reset_parameters",
    "test_processor",
    "test_sam2_config",
    "test_sam2_video_config",
    "test_sam3_config",
    "test_sam3_tracker_config",
    "test_sam3_video_config",
]


@dataclass(frozen=True)
class Arch:
    """One architecture: its ``family`` (sam2 / sam3), ``kind`` (released / orchard / test) and
    native input ``size`` in pixels."""

    family: str
    kind: str
    size: int


ORCHARD_ARCHS = {"sam2": ("orchard-m", "orchard-s"), "sam3": ("orchard-s", "orchard-xs")}
SAM3_QUERIES = (
    36  # DETR queries of the orchard SAM3 sizes (a training config's init.num_queries: null)
)
TEST_IMAGE_SIZE = {"sam2": 128, "sam3": 112}
_SAM3_PATCH = 14


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def reset_parameters(model: torch.nn.Module, embeddings: bool = True) -> None:
    """PyTorch's default initialisation of every layer that has one (``reset_parameters``).

    transformers' init leaves SAM's decoders near zero: an untrained model answers with empty
    masks, and with std-0.02 query and token embeddings DETR queries and SAM's output tokens
    start almost identical. ``embeddings=False`` leaves ``nn.Embedding`` layers as they are
    (the test checkpoints); the orchard models reset them too (N(0, 1)).
    """
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset) and (embeddings or not isinstance(module, torch.nn.Embedding)):
            reset()


# ----------------------------------------------------------------------------- released

# Hiera backbones of the SAM 2.1 hub configs (facebook/sam2.1-hiera-*)
SAM2_PRESETS: dict[str, dict[str, Any]] = {
    "sam2.1-hiera-tiny": {
        "hidden_size": 96,
        "num_attention_heads": 1,
        "blocks_per_stage": [1, 2, 7, 2],
        "embed_dim_per_stage": [96, 192, 384, 768],
        "num_attention_heads_per_stage": [1, 2, 4, 8],
        "global_attention_blocks": [5, 7, 9],
        "window_size_per_stage": [8, 4, 14, 7],
        "window_positional_embedding_background_size": [7, 7],
    },
    "sam2.1-hiera-small": {
        "hidden_size": 96,
        "num_attention_heads": 1,
        "blocks_per_stage": [1, 2, 11, 2],
        "embed_dim_per_stage": [96, 192, 384, 768],
        "num_attention_heads_per_stage": [1, 2, 4, 8],
        "global_attention_blocks": [7, 10, 13],
        "window_size_per_stage": [8, 4, 14, 7],
        "window_positional_embedding_background_size": [7, 7],
    },
    "sam2.1-hiera-base-plus": {
        "hidden_size": 112,
        "num_attention_heads": 2,
        "blocks_per_stage": [2, 3, 16, 3],
        "embed_dim_per_stage": [112, 224, 448, 896],
        "num_attention_heads_per_stage": [2, 4, 8, 16],
        "global_attention_blocks": [12, 16, 20],
        "window_size_per_stage": [8, 4, 14, 7],
        "window_positional_embedding_background_size": [14, 14],
    },
    "sam2.1-hiera-large": {
        "hidden_size": 144,
        "num_attention_heads": 2,
        "blocks_per_stage": [2, 6, 36, 4],
        "embed_dim_per_stage": [144, 288, 576, 1152],
        "num_attention_heads_per_stage": [2, 4, 8, 16],
        "global_attention_blocks": [23, 33, 43],
        "window_size_per_stage": [8, 4, 16, 8],
        "window_positional_embedding_background_size": [7, 7],
    },
}
_ALIASES = {
    "tiny": "sam2.1-hiera-tiny",
    "small": "sam2.1-hiera-small",
    "base-plus": "sam2.1-hiera-base-plus",
}
_ALIASES.update({"b+": "sam2.1-hiera-base-plus", "large": "sam2.1-hiera-large"})
_ALIASES.update({"hiera_t": "sam2.1-hiera-tiny", "hiera_l": "sam2.1-hiera-large"})


def released_sam2_config(name: str, image_size: int = 1024, video: bool = True) -> Any:
    """transformers config of a SAM 2.1 size (``tiny``, ``small``, ``base-plus``, ``large``).

    ``video`` gives the full model (``Sam2VideoConfig``: with the memory attention and encoder,
    what Meta's parameter counts include); otherwise the image-only ``Sam2Config``.
    """
    from transformers import Sam2Config, Sam2VideoConfig
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    key = _ALIASES.get(name.removeprefix("facebook/"), name.removeprefix("facebook/"))
    if key not in SAM2_PRESETS:
        raise KeyError(f"unknown SAM2 size {name!r}; choose from {sorted(SAM2_PRESETS)}.")
    p = SAM2_PRESETS[key]
    backbone = Sam2HieraDetConfig(image_size=[image_size, image_size], **p)
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=list(reversed(p["embed_dim_per_stage"])),
        backbone_feature_sizes=[
            [image_size // 4] * 2,
            [image_size // 8] * 2,
            [image_size // 16] * 2,
        ],
    )
    prompt = {"image_size": image_size}
    if video:
        feat = image_size // 16
        return Sam2VideoConfig(
            vision_config=vision,
            prompt_encoder_config=prompt,
            image_size=image_size,
            memory_attention_rope_feat_sizes=[feat, feat],
        )
    return Sam2Config(vision_config=vision, prompt_encoder_config=prompt)


def released_sam3_config(vocab_size: int | None = None, video: bool = False) -> Any:
    """SAM3's released architecture (transformers' default ``Sam3Config``; ``video``: the
    ``Sam3VideoConfig`` of detector + tracker). ``vocab_size`` resizes the text embedding, e.g.
    to the byte-level tokenizer's 514 symbols for a model built without the CLIP vocabulary."""
    import transformers as tf

    if video:
        return tf.Sam3VideoConfig()
    config = tf.Sam3Config()
    if vocab_size is not None:
        text = config.text_config
        text.vocab_size = vocab_size
        text.bos_token_id, text.eos_token_id = vocab_size - 2, vocab_size - 1
        text.pad_token_id = vocab_size - 1
    return config


# ----------------------------------------------------------------------------- orchard


def orchard_sam2_config(arch: str = "orchard-m", size: int = 128) -> Any:
    """``Sam2Config`` of a tiny orchard architecture at ``size`` px."""
    from transformers import Sam2Config
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    if arch not in ORCHARD_ARCHS["sam2"]:
        raise ValueError(f"unknown SAM2 arch {arch!r}; choose one of {ORCHARD_ARCHS['sam2']}.")
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


def orchard_sam2_video_config(
    image_config: Any,
    num_maskmem: int = 7,
    memory_layers: int = 2,
    max_object_pointers: int = 16,
) -> Any:
    """``Sam2VideoConfig`` of a SAM2 image config (``Sam2Config``) plus a memory path of the
    same width: memory attention (``memory_layers`` layers, one head), memory encoder and fuser,
    ``num_maskmem`` memories and ``max_object_pointers`` pointers (SAM 2.1's 7 and 16; its 4
    attention layers, here 2), memories of 64 channels as SAM 2.1's. The image parts keep their
    names, so the image weights load."""
    from transformers import Sam2VideoConfig

    hidden = int(image_config.vision_config.fpn_hidden_size)
    if hidden < 64:
        raise ValueError(
            f"a SAM2 memory path needs a model width of at least 64 (transformers' memory "
            f"attention reads 64-channel memories), this model has {hidden}: use orchard-m."
        )
    size = int(image_config.prompt_encoder_config.image_size)
    grid = size // int(image_config.prompt_encoder_config.patch_size)
    return Sam2VideoConfig(
        vision_config=image_config.vision_config,
        prompt_encoder_config=image_config.prompt_encoder_config.to_dict(),
        mask_decoder_config=image_config.mask_decoder_config.to_dict(),
        image_size=size,
        num_maskmem=num_maskmem,
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=memory_layers,
        memory_attention_feed_forward_hidden_size=2 * hidden,
        memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,  # fixed by transformers' memory attention
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=2 * hidden,
        memory_fuser_num_layers=1,
        max_object_pointers_in_encoder=max_object_pointers,
    )


def orchard_sam3_config(
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

    if arch not in ORCHARD_ARCHS["sam3"]:
        raise ValueError(f"unknown SAM3 arch {arch!r}; choose one of {ORCHARD_ARCHS['sam3']}.")
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


# ----------------------------------------------------------------------------- test


def _sam2_parts(size: int, hidden: int) -> dict[str, Any]:
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    backbone = Sam2HieraDetConfig(
        hidden_size=16,
        num_attention_heads=1,
        image_size=[size, size],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[4, 4, 4, 4],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
        fpn_hidden_size=hidden,
    )
    prompt = {
        "hidden_size": hidden,
        "image_size": size,
        "patch_size": 16,
        "mask_input_channels": 32,
    }
    decoder = {
        "hidden_size": hidden,
        "mlp_dim": 2 * hidden,
        "num_attention_heads": 2,
        "iou_head_hidden_dim": hidden,
    }
    return {
        "vision_config": vision,
        "prompt_encoder_config": prompt,
        "mask_decoder_config": decoder,
    }


def test_sam2_config(size: int = TEST_IMAGE_SIZE["sam2"]) -> Any:
    """A ~0.35M-parameter ``Sam2Config`` (Hiera widths 16..128, hidden 32) at ``size`` px."""
    from transformers import Sam2Config

    return Sam2Config(**_sam2_parts(size, 32))


def test_sam2_video_config(size: int = TEST_IMAGE_SIZE["sam2"]) -> Any:
    """A tiny ``Sam2VideoConfig``: memory attention needs 64-d keys, so hidden 128 here."""
    from transformers import Sam2VideoConfig

    hidden = 128
    return Sam2VideoConfig(
        **_sam2_parts(size, hidden),
        image_size=size,
        num_maskmem=3,
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=2 * hidden,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=2 * hidden,
        memory_fuser_num_layers=1,
        max_object_pointers_in_encoder=4,
    )


# ----------------------------------------------------------------------------- SAM3 (transformers)


def _sam3_vision(size: int, hidden: int = 32) -> Any:
    from transformers.models.sam3.configuration_sam3 import Sam3VisionConfig, Sam3ViTConfig

    grid = size // _SAM3_PATCH
    backbone = Sam3ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=size,
        patch_size=_SAM3_PATCH,
        window_size=grid // 2,
        global_attn_indexes=[1],
        pretrain_image_size=size,
    )
    return Sam3VisionConfig(
        backbone_config=backbone,
        fpn_hidden_size=hidden,
        scale_factors=[4.0, 2.0, 1.0, 0.5],
        backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2],
    )


def test_sam3_config(size: int = TEST_IMAGE_SIZE["sam3"], vocab_size: int = 514) -> Any:
    """A ~0.25M-parameter ``Sam3Config``: ViT 32 x 2, text 32 x 1, DETR 1+1 layers, 10 queries."""
    from transformers import Sam3Config
    from transformers.models.sam3.configuration_sam3 import (
        Sam3DETRDecoderConfig,
        Sam3DETREncoderConfig,
        Sam3GeometryEncoderConfig,
        Sam3MaskDecoderConfig,
    )

    text = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "projection_dim": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 32,
        "hidden_act": "gelu",
        "bos_token_id": vocab_size - 2,
        "eos_token_id": vocab_size - 1,
        "pad_token_id": vocab_size - 1,
    }
    small = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
    return Sam3Config(
        vision_config=_sam3_vision(size),
        text_config=text,
        geometry_encoder_config=Sam3GeometryEncoderConfig(num_layers=1, **small),
        detr_encoder_config=Sam3DETREncoderConfig(num_layers=1, **small),
        detr_decoder_config=Sam3DETRDecoderConfig(num_layers=1, num_queries=10, **small),
        mask_decoder_config=Sam3MaskDecoderConfig(hidden_size=32, num_upsampling_stages=2),
    )


def test_sam3_tracker_config(size: int = TEST_IMAGE_SIZE["sam3"]) -> Any:
    """A tiny ``Sam3TrackerConfig`` (SAM2-style prompts on the SAM3 vision encoder)."""
    from transformers import Sam3TrackerConfig

    return Sam3TrackerConfig(
        vision_config=_sam3_vision(size),
        prompt_encoder_config={
            "hidden_size": 32,
            "image_size": size,
            "patch_size": _SAM3_PATCH,
            "mask_input_channels": 32,
        },
        mask_decoder_config={
            "hidden_size": 32,
            "mlp_dim": 64,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
    )


def test_sam3_video_config(size: int = TEST_IMAGE_SIZE["sam3"], vocab_size: int = 514) -> Any:
    """A tiny ``Sam3VideoConfig``: the tiny detector plus a tracker with hidden 128."""
    from transformers import Sam3TrackerVideoConfig, Sam3VideoConfig

    hidden = 128
    det = test_sam3_config(size, vocab_size)
    det.vision_config.fpn_hidden_size = hidden
    det.detr_encoder_config.hidden_size = hidden
    det.detr_decoder_config.hidden_size = hidden
    det.geometry_encoder_config.hidden_size = hidden
    det.mask_decoder_config.hidden_size = hidden
    det.text_config.projection_dim = hidden
    tracker = Sam3TrackerVideoConfig(
        vision_config=_sam3_vision(size, hidden),
        prompt_encoder_config={
            "hidden_size": hidden,
            "image_size": size,
            "patch_size": _SAM3_PATCH,
            "mask_input_channels": 32,
        },
        mask_decoder_config={
            "hidden_size": hidden,
            "mlp_dim": 2 * hidden,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": hidden,
        },
        image_size=size,
        num_maskmem=3,
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=2 * hidden,
        memory_attention_rope_feat_sizes=[size // _SAM3_PATCH] * 2,
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=2 * hidden,
        memory_fuser_num_layers=1,
        max_object_pointers_in_encoder=4,
    )
    grid = size // _SAM3_PATCH
    return Sam3VideoConfig(
        detector_config=det,
        tracker_config=tracker,
        low_res_mask_size=4 * grid,
        hotstart_delay=0,
    )


# ----------------------------------------------------------------------------- tokenizer and processors


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable unicode map (256 symbols)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def byte_level_clip_tokenizer() -> Any:
    """An offline ``CLIPTokenizer`` over the 512 byte-level symbols (plus start/end tokens).

    Every byte is a token (its ``</w>`` form ends a word), so any phrase tokenises without the
    49,408-token BPE vocabulary; vocab size 514.
    """
    from transformers import CLIPTokenizer

    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": i + len(symbols) for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def image_processor(kind: str, size: int, mask_size: int) -> Any:
    """``Sam2ImageProcessor`` (``kind="sam2"``) or ``Sam3ImageProcessor`` resizing to ``size``
    px, with ``mask_size`` px low-resolution masks."""
    from transformers import Sam2ImageProcessor, Sam3ImageProcessor

    cls = Sam2ImageProcessor if kind == "sam2" else Sam3ImageProcessor
    return cls(
        size={"height": size, "width": size}, mask_size={"height": mask_size, "width": mask_size}
    )


def test_processor(name: str, size: int) -> Any:
    """The processor saved beside tiny model ``name`` (hf-sam2, hf-sam3, ...)."""
    import transformers as tf

    if name == "hf-sam2":
        return tf.Sam2Processor(image_processor=image_processor("sam2", size, size // 4))
    if name == "hf-sam3-tracker":
        return tf.Sam3TrackerProcessor(
            image_processor=image_processor("sam3", size, 4 * (size // _SAM3_PATCH))
        )
    if name == "hf-sam3":
        return tf.Sam3Processor(
            image_processor=image_processor("sam3", size, 4 * (size // _SAM3_PATCH)),
            tokenizer=byte_level_clip_tokenizer(),
        )
    if name == "hf-sam2-video":
        ip = image_processor("sam2", size, size // 4)
        vp = tf.Sam2VideoVideoProcessor(size={"height": size, "width": size})
        return tf.Sam2VideoProcessor(image_processor=ip, video_processor=vp)
    if name == "hf-sam3-video":
        ip = image_processor("sam3", size, 4 * (size // _SAM3_PATCH))
        vp = tf.Sam2VideoVideoProcessor(
            size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
        )
        return tf.Sam3VideoProcessor(
            image_processor=ip, video_processor=vp, tokenizer=byte_level_clip_tokenizer()
        )
    raise KeyError(name)


ARCHS: dict[str, dict[str, Arch]] = {
    "sam2": {
        **{name: Arch("sam2", "released", 1024) for name in SAM2_PRESETS},
        **{name: Arch("sam2", "orchard", 128) for name in ORCHARD_ARCHS["sam2"]},
        "test": Arch("sam2", "test", TEST_IMAGE_SIZE["sam2"]),
    },
    "sam3": {
        "sam3": Arch("sam3", "released", 1008),
        **{name: Arch("sam3", "orchard", 224) for name in ORCHARD_ARCHS["sam3"]},
        "test": Arch("sam3", "test", TEST_IMAGE_SIZE["sam3"]),
    },
}
