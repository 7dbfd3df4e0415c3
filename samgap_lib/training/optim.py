"""Freezing by component, layer-wise lr decay, AdamW and the warmup + cosine schedule."""

from __future__ import annotations

import math
import re
from typing import Any

import torch

__all__ = ["COMPONENTS", "component_of", "freeze", "param_groups", "build_optimizer", "lr_lambda"]

# Component -> parameter-name prefixes (transformers Sam2Model / Sam2VideoModel / Sam3Model).
COMPONENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "sam2": {
        "image_encoder": ("vision_encoder.",),
        "prompt_encoder": ("prompt_encoder.", "shared_image_embedding."),
        "mask_decoder": ("mask_decoder.",),
        "memory": (
            "no_memory_embedding",
            "no_memory_positional_encoding",
            "memory_",
            "mask_downsample",
            "obj_ptr",
            "no_obj",
            "object_pointer_proj.",
            "temporal_positional_encoding_projection_layer.",
            "occlusion_spatial_embedding_parameter",
        ),
    },
    "sam3": {
        "vision": ("vision_encoder.",),
        "text": ("text_encoder.", "text_projection."),
        "detector": (
            "geometry_encoder.",
            "detr_encoder.",
            "detr_decoder.",
            "mask_decoder.",
            "dot_product_scoring.",
        ),
        "tracker": ("tracker",),
    },
}
_LAYER = re.compile(r"vision_encoder\.backbone\.(?:blocks|layers)\.(\d+)\.")


def component_of(kind: str, name: str) -> str:
    """The component a parameter belongs to (``"other"`` when none matches)."""
    for comp, prefixes in COMPONENTS[kind].items():
        if name.startswith(prefixes):
            return comp
    return "other"


def _n_layers(model: torch.nn.Module) -> int:
    ids = [int(m.group(1)) for n, _ in model.named_parameters() if (m := _LAYER.search(n))]
    return max(ids) + 1 if ids else 0


def layer_id(name: str, n_layers: int) -> int:
    """0 for patch/position embeddings, ``i + 1`` for encoder block ``i``, ``n + 1`` otherwise."""
    m = _LAYER.search(name)
    if m:
        return int(m.group(1)) + 1
    if name.startswith("vision_encoder.backbone."):
        return 0
    return n_layers + 1


def freeze(model: torch.nn.Module, kind: str, components: list[str], vision_layers: int = 0) -> int:
    """Set ``requires_grad=False`` on the named components (and the patch embedding plus the
    first ``vision_layers`` encoder blocks); return the number of frozen parameters."""
    known = set(COMPONENTS[kind])
    bad = [c for c in components if c not in known]
    if bad:
        raise ValueError(
            f"optim.freeze: unknown component(s) {bad} for {kind}; choose from {sorted(known)}."
        )
    n_layers = _n_layers(model)
    frozen = 0
    for name, p in model.named_parameters():
        comp = component_of(kind, name)
        lid = layer_id(name, n_layers)
        partial = (
            vision_layers > 0
            and name.startswith("vision_encoder.backbone.")
            and lid <= vision_layers
        )
        if comp in components or partial:
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def param_groups(
    model: torch.nn.Module, kind: str, optim_cfg: dict[str, Any]
) -> list[dict[str, Any]]:
    """AdamW groups: lr = base x component multiplier x layer decay; no decay on 1-d params."""
    base = float(optim_cfg["lr"])
    mult = optim_cfg.get("lr_mult", {})
    decay = float(optim_cfg.get("layer_decay", 1.0))
    n_layers = _n_layers(model)
    groups: dict[tuple, dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        comp = component_of(kind, name)
        scale = float(mult.get(comp, 1.0))
        if comp in ("image_encoder", "vision"):
            scale *= decay ** (n_layers + 1 - layer_id(name, n_layers))
        wd = 0.0 if p.ndim <= 1 else float(optim_cfg["weight_decay"])
        key = (comp, round(scale, 12), wd)
        g = groups.setdefault(
            key,
            {"params": [], "lr": base * scale, "weight_decay": wd, "name": f"{comp}@{scale:.4g}"},
        )
        g["params"].append(p)
    return list(groups.values())


def build_optimizer(
    model: torch.nn.Module, kind: str, optim_cfg: dict[str, Any]
) -> torch.optim.Optimizer:
    """AdamW over `param_groups` (refuses a model with nothing left to train); the multi-tensor
    (``foreach``) update on every device, which torch uses by default only on accelerators:
    the tiny models' many small tensors make the per-tensor loop a few percent of a CPU step."""
    groups = param_groups(model, kind, optim_cfg)
    if not groups:
        raise ValueError("every parameter is frozen: nothing to train (check optim.freeze).")
    b1, b2 = optim_cfg["betas"]
    return torch.optim.AdamW(groups, betas=(float(b1), float(b2)), foreach=True)


def lr_lambda(steps: int, warmup: int, min_ratio: float):
    """Linear warmup over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``steps``."""

    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        t = min(max(t, 0.0), 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return f
