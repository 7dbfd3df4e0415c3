"""Tiny random-initialised checkpoints for every role and backend (tests, the `smoke` profile).

`write_tiny_checkpoints(folder, seed)` writes one sub-folder per model, each loadable through
the normal loading path (`load_sam2` / `load_sam3` with that folder as the source):

=====================  =======================================================  ==============
folder                 contents                                                 load with
=====================  =======================================================  ==============
``hf-sam2``            ``Sam2Model`` + ``Sam2Processor``                         load_sam2
``hf-sam3``            ``Sam3Model`` + ``Sam3Processor`` (byte-level CLIP tok.)  load_sam3
``hf-sam3-tracker``    ``Sam3TrackerModel`` + ``Sam3TrackerProcessor``           load_sam3(role="tracker")
``hf-sam2-video``      ``Sam2VideoModel`` + ``Sam2VideoProcessor``               load_sam2(role="video")
``hf-sam3-video``      ``Sam3VideoModel`` + ``Sam3VideoProcessor``               load_sam3(role="video")
``meta-sam2``          Meta ``SAM2Base`` state dict (.pt) + config (.json)       load_sam2(backend="meta")
``meta-sam3``          Meta SAM3 detector + tracker state dict (.pt) + .json     load_sam3(backend="meta")
=====================  =======================================================  ==============

``meta-sam3`` is laid out like Meta's ``sam3.pt`` (``detector.*`` and ``tracker.*`` weights), so
it loads for ``role="concept"`` and ``role="tracker"``.

Every model runs a forward on CPU in well under 0.1 s. The CLIP tokenizer is built offline over
the 512 byte-level symbols (no BPE merges), so no file has to be downloaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "TINY_IMAGE_SIZE",
    "byte_level_clip_tokenizer",
    "tiny_sam2_config",
    "tiny_sam2_video_config",
    "tiny_sam3_config",
    "tiny_sam3_tracker_config",
    "tiny_sam3_video_config",
    "write_tiny_checkpoints",
]

TINY_IMAGE_SIZE = {"sam2": 128, "sam3": 112}
_SAM3_PATCH = 14


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


# ----------------------------------------------------------------------------- SAM2 (transformers)


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


def tiny_sam2_config(size: int = TINY_IMAGE_SIZE["sam2"]) -> Any:
    """A ~0.35M-parameter ``Sam2Config`` (Hiera widths 16..128, hidden 32) at ``size`` px."""
    from transformers import Sam2Config

    return Sam2Config(**_sam2_parts(size, 32))


def tiny_sam2_video_config(size: int = TINY_IMAGE_SIZE["sam2"]) -> Any:
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


def tiny_sam3_config(size: int = TINY_IMAGE_SIZE["sam3"], vocab_size: int = 514) -> Any:
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


def tiny_sam3_tracker_config(size: int = TINY_IMAGE_SIZE["sam3"]) -> Any:
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


def tiny_sam3_video_config(size: int = TINY_IMAGE_SIZE["sam3"], vocab_size: int = 514) -> Any:
    """A tiny ``Sam3VideoConfig``: the tiny detector plus a tracker with hidden 128."""
    from transformers import Sam3TrackerVideoConfig, Sam3VideoConfig

    hidden = 128
    det = tiny_sam3_config(size, vocab_size)
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


# ----------------------------------------------------------------------------- processors


def _image_processor(kind: str, size: int, mask_size: int) -> Any:
    from transformers import Sam2ImageProcessor, Sam3ImageProcessor

    cls = Sam2ImageProcessor if kind == "sam2" else Sam3ImageProcessor
    return cls(
        size={"height": size, "width": size}, mask_size={"height": mask_size, "width": mask_size}
    )


def tiny_processor(name: str, size: int) -> Any:
    """The processor saved beside tiny model ``name`` (hf-sam2, hf-sam3, ...)."""
    import transformers as tf

    if name == "hf-sam2":
        return tf.Sam2Processor(image_processor=_image_processor("sam2", size, size // 4))
    if name == "hf-sam3-tracker":
        return tf.Sam3TrackerProcessor(
            image_processor=_image_processor("sam3", size, 4 * (size // _SAM3_PATCH))
        )
    if name == "hf-sam3":
        return tf.Sam3Processor(
            image_processor=_image_processor("sam3", size, 4 * (size // _SAM3_PATCH)),
            tokenizer=byte_level_clip_tokenizer(),
        )
    if name == "hf-sam2-video":
        ip = _image_processor("sam2", size, size // 4)
        vp = tf.Sam2VideoVideoProcessor(size={"height": size, "width": size})
        return tf.Sam2VideoProcessor(image_processor=ip, video_processor=vp)
    if name == "hf-sam3-video":
        ip = _image_processor("sam3", size, 4 * (size // _SAM3_PATCH))
        vp = tf.Sam2VideoVideoProcessor(
            size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
        )
        return tf.Sam3VideoProcessor(
            image_processor=ip, video_processor=vp, tokenizer=byte_level_clip_tokenizer()
        )
    raise KeyError(name)


def reinit_pytorch_default(model: torch.nn.Module) -> None:
    """Re-run PyTorch's default init on every layer that has one (HF init leaves SAM decoders
    near zero, so untrained tiny models would output all-empty masks)."""
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset) and not isinstance(module, torch.nn.Embedding):
            reset()


def build_tiny_hf(name: str, seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) of tiny transformers model ``name``."""
    import transformers as tf

    torch.manual_seed(seed)
    if name == "hf-sam2":
        model = tf.Sam2Model(tiny_sam2_config())
        size = TINY_IMAGE_SIZE["sam2"]
    elif name == "hf-sam2-video":
        model = tf.Sam2VideoModel(tiny_sam2_video_config())
        size = TINY_IMAGE_SIZE["sam2"]
    elif name == "hf-sam3":
        model = tf.Sam3Model(tiny_sam3_config())
        size = TINY_IMAGE_SIZE["sam3"]
    elif name == "hf-sam3-tracker":
        model = tf.Sam3TrackerModel(tiny_sam3_tracker_config())
        size = TINY_IMAGE_SIZE["sam3"]
    elif name == "hf-sam3-video":
        model = tf.Sam3VideoModel(tiny_sam3_video_config())
        size = TINY_IMAGE_SIZE["sam3"]
    else:
        raise KeyError(f"unknown tiny model {name!r}")
    reinit_pytorch_default(model)
    return model.eval(), tiny_processor(name, size)


HF_TINY = ("hf-sam2", "hf-sam3", "hf-sam3-tracker", "hf-sam2-video", "hf-sam3-video")
META_TINY = ("meta-sam2", "meta-sam3")


def write_tiny_checkpoints(
    folder: str | os.PathLike,
    seed: int = 0,
    include: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Write tiny random-initialised checkpoints for every role and backend.

    Parameters
    ----------
    folder
        Target folder (created); one sub-folder per model (see the module docstring).
    seed
        Seeds the random initialisation: the same seed writes the same weights.
    include
        Only these names (default: all, Meta ones when ``sam2`` / ``sam3`` are importable).

    Returns
    -------
    dict[str, Path]
        Name -> path to pass as ``source`` to `load_sam2` / `load_sam3`.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    names = include if include is not None else HF_TINY + META_TINY
    out: dict[str, Path] = {}
    for name in names:
        target = root / name
        if name in HF_TINY:
            model, processor = build_tiny_hf(name, seed)
            model.save_pretrained(target)
            processor.save_pretrained(target)
            (target / "samgap_tiny.json").write_text(json.dumps({"name": name, "seed": seed}))
            out[name] = target
        elif name == "meta-sam2":
            from .meta_sam2 import write_tiny_meta_sam2

            out[name] = write_tiny_meta_sam2(target, seed)
        elif name == "meta-sam3":
            from .meta_sam3 import write_tiny_meta_sam3

            out[name] = write_tiny_meta_sam3(target, seed)
        else:
            raise KeyError(f"unknown tiny model {name!r}; choose from {HF_TINY + META_TINY}")
    return out
