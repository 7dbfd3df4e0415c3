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

from .archs import (
    TEST_IMAGE_SIZE,
    reset_parameters,
    test_processor,
    test_sam2_config,
    test_sam2_video_config,
    test_sam3_config,
    test_sam3_tracker_config,
    test_sam3_video_config,
)

__all__ = [
    "META_SAM3_TEST_DIMS",
    "build_tiny_hf",
    "write_tiny_checkpoints",
    "write_tiny_meta_sam2",
    "write_tiny_meta_sam3",
]

# the dimensions of the tiny Meta SAM3 (`write_tiny_meta_sam3`; `meta.reduced` builds them)
META_SAM3_TEST_DIMS = {
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
    "mem_dim": 16,  # tracker memory width (Meta: 64); the tracker's other widths are d_model
}


def build_tiny_hf(name: str, seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) of tiny transformers model ``name``."""
    import transformers as tf

    torch.manual_seed(seed)
    if name == "hf-sam2":
        model = tf.Sam2Model(test_sam2_config())
        size = TEST_IMAGE_SIZE["sam2"]
    elif name == "hf-sam2-video":
        model = tf.Sam2VideoModel(test_sam2_video_config())
        size = TEST_IMAGE_SIZE["sam2"]
    elif name == "hf-sam3":
        model = tf.Sam3Model(test_sam3_config())
        size = TEST_IMAGE_SIZE["sam3"]
    elif name == "hf-sam3-tracker":
        model = tf.Sam3TrackerModel(test_sam3_tracker_config())
        size = TEST_IMAGE_SIZE["sam3"]
    elif name == "hf-sam3-video":
        model = tf.Sam3VideoModel(test_sam3_video_config())
        size = TEST_IMAGE_SIZE["sam3"]
    else:
        raise KeyError(f"unknown tiny model {name!r}")
    reset_parameters(model, embeddings=False)
    return model.eval(), test_processor(name, size)


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
            out[name] = write_tiny_meta_sam2(target, seed)
        elif name == "meta-sam3":
            out[name] = write_tiny_meta_sam3(target, seed)
        else:
            raise KeyError(f"unknown tiny model {name!r}; choose from {HF_TINY + META_TINY}")
    return out


# ----------------------------------------------------------------------------- Meta


def tiny_meta_sam2_overrides(size: int = 128, hidden: int = 32) -> list[str]:
    """Hydra overrides that shrink ``sam2.1_hiera_t.yaml`` to a ~0.9M-parameter model."""
    feat = size // 16
    mem = "++model.memory_attention"
    return [
        f"++model.image_size={size}",
        "++model.image_encoder.trunk.embed_dim=16",
        "++model.image_encoder.trunk.num_heads=1",
        "++model.image_encoder.trunk.stages=[1,1,2,1]",
        "++model.image_encoder.trunk.global_att_blocks=[3]",
        "++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[2,2]",
        "++model.image_encoder.trunk.window_spec=[4,4,4,4]",
        f"++model.image_encoder.neck.d_model={hidden}",
        "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
        f"++model.image_encoder.neck.position_encoding.num_pos_feats={hidden}",
        f"{mem}.d_model={hidden}",
        f"{mem}.num_layers=1",
        f"{mem}.layer.d_model={hidden}",
        f"{mem}.layer.dim_feedforward={2 * hidden}",
        f"{mem}.layer.self_attention.embedding_dim={hidden}",
        f"{mem}.layer.cross_attention.embedding_dim={hidden}",
        f"{mem}.layer.self_attention.feat_sizes=[{feat},{feat}]",
        f"{mem}.layer.cross_attention.feat_sizes=[{feat},{feat}]",
        f"++model.memory_encoder.mask_downsampler.embed_dim={hidden}",
        f"++model.memory_encoder.fuser.layer.dim={hidden}",
        "++model.memory_encoder.fuser.num_layers=1",
        f"++model.memory_encoder.in_dim={hidden}",
        f"++model.memory_encoder.out_dim={hidden}",
        f"++model.memory_encoder.position_encoding.num_pos_feats={hidden}",
        f"{mem}.layer.cross_attention.kv_in_dim={hidden}",
        "++model.num_maskmem=3",
    ]


def write_tiny_meta_sam2(folder: str | os.PathLike, seed: int = 0, size: int = 128) -> Path:
    """Write a tiny random Meta SAM2 (``sam2_tiny.pt`` + ``sam2_tiny.samgap.json``); returns the .pt."""
    from .meta.sam2 import SIDE_CAR, build_meta_sam2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = "configs/sam2.1/sam2.1_hiera_t.yaml"
    overrides = tiny_meta_sam2_overrides(size)
    torch.manual_seed(seed)
    model = build_meta_sam2(config, None, "cpu", overrides)
    reset_parameters(model, embeddings=False)
    ckpt = folder / "sam2_tiny.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    meta = {"config": config, "overrides": overrides, "image_size": size, "seed": seed}
    (folder / ("sam2_tiny" + SIDE_CAR)).write_text(json.dumps(meta, indent=1))
    return ckpt


def write_tiny_meta_sam3(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny random Meta SAM3 (``sam3_tiny.pt`` + ``sam3_tiny.samgap.json``); returns the .pt.

    Laid out like Meta's ``sam3.pt``: the image model under ``detector.`` (SAM2-style neck
    included) and the point/box tracker under ``tracker.``, so both roles load from it.
    """
    from .meta.sam3 import SIDE_CAR, TRACKER_PREFIX, build_meta_sam3
    from .meta.sam3_cpu import init_uninitialised_text_params

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_meta_sam3("cpu", dims=META_SAM3_TEST_DIMS, tracker=True)
    reset_parameters(model, embeddings=False)
    init_uninitialised_text_params(model, seed)
    ckpt = folder / "sam3_tiny.pt"
    sd = {
        f"tracker.{k.removeprefix(TRACKER_PREFIX)}"
        if k.startswith(TRACKER_PREFIX)
        else f"detector.{k}": v
        for k, v in model.state_dict().items()
    }
    torch.save({"model": sd}, ckpt)
    (folder / ("sam3_tiny" + SIDE_CAR)).write_text(
        json.dumps({"dims": META_SAM3_TEST_DIMS, "seed": seed}, indent=1)
    )
    return ckpt
