"""Speed and memory of training steps by freezing option (the engine of ``samgap bench train``).

Each configuration runs in a fresh subprocess (spawn), so the CPU peak resident memory it reports
is its own; on CUDA the peak allocated memory is reset per configuration.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

from ..io import recorded_result, recorded_result_path
from ..models.archs import (
    byte_level_clip_tokenizer,
    image_processor,
    orchard_sam3_config,
    released_sam2_config,
    released_sam3_config,
)
from ..prompts import Clicker
from ..training.config import load_config, merge
from ..training.data import load_samples, make_pool, step_rng
from ..training.init import build_model, enable_grad_checkpointing
from ..training.logs import peak_memory_mb
from ..training.optim import build_optimizer, freeze
from ..training.orchard_tiny import ORCHARD_TINY
from ..training.trainer import make_task, precision_dtype

__all__ = [
    "OPTIONS",
    "ARCHS",
    "HALF",
    "vit_layers",
    "bench_config",
    "run_one",
    "run_isolated",
    "released_model",
    "saved_tensor_bytes",
    "trainable_params",
    "RECORDED_CUDA",
    "recorded_cuda",
    "cuda_table",
    "click_cost_ms",
]

# What `samgap bench gpu` and `samgap bench train --device cuda` measured on a GPU machine
# (samgap_lib/results/cuda_training.json, provenance inside); the book shows it, tests tie it to
# the code.
RECORDED_CUDA = recorded_result_path("cuda_training")

HALF = "half"  # freeze_vision_layers placeholder: half of the architecture's ViT layers

# Freezing / memory options: name -> config overrides.
OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "sam2": {
        "full": {},
        "frozen image encoder": {"optim": {"freeze": ["image_encoder"]}},
        "decoder only": {"optim": {"freeze": ["image_encoder", "prompt_encoder"]}},
        "grad checkpointing": {"train": {"grad_checkpointing": True}},
    },
    "sam3": {
        "full": {},
        "frozen text": {"optim": {"freeze": ["text"]}},
        "frozen vision": {"optim": {"freeze": ["vision"]}},
        "vision half frozen": {"optim": {"freeze_vision_layers": HALF}},
        "grad checkpointing": {"train": {"grad_checkpointing": True}},
        "boxes only (no masks)": {"loss": {"segmentation": False, "semantic": 0.0}},
        "masks, <=4 matched": {"loss": {"max_matched_queries": 4}},
        # every memory saver at once, masks still trained (bf16 comes with precision auto on CUDA)
        "all savers": {
            "optim": {"freeze": ["text"], "freeze_vision_layers": HALF},
            "train": {"grad_checkpointing": True},
            "loss": {"max_matched_queries": 4},
        },
    },
}
# Architectures: tiny ones run anywhere; the others are for a GPU (random init, no download).
ARCHS = {
    "sam2": {"orchard-m": 128, "hiera_t": 1024, "hiera_l": 1024},
    "sam3": {"orchard-s": 224, "orchard-xs": 224, "sam3": 1008},
}


def vit_layers(arch: str) -> int:
    """ViT depth of a SAM3 benchmark architecture, read from its config (no model is built)."""
    config = released_sam3_config() if arch == "sam3" else orchard_sam3_config(arch)
    return int(config.vision_config.backbone_config.num_hidden_layers)


def bench_config(kind: str, arch: str, option: str, device: str, batch: int) -> dict[str, Any]:
    """The training config of one benchmark cell."""
    size = ARCHS[kind][arch]
    option_over = OPTIONS[kind][option]
    if option_over.get("optim", {}).get("freeze_vision_layers") == HALF:
        optim = {**option_over["optim"], "freeze_vision_layers": vit_layers(arch) // 2}
        option_over = {**option_over, "optim": optim}
    over = merge(ORCHARD_TINY[kind], option_over)
    over = merge(
        over,
        {
            "init": {
                "arch": arch
                if arch.startswith("orchard")
                else ("orchard-m" if kind == "sam2" else "orchard-s")
            },
            "data": {"image_size": size, "n_train": max(2 * batch, 8), "n_val": 0},
            "train": {"batch_images": batch, "device": device, "progress": False},
        },
    )
    return load_config(over, model=kind)


def released_model(kind: str, arch: str, device: str = "cpu") -> tuple[Any, Any]:
    """Random-init model and processor of a released size (SAM2 ``hiera_t`` / ``hiera_l`` at
    1024 px, SAM3 ``sam3`` at 1008 px with the byte-level tokenizer), built on ``device``:
    random init of SAM3's 840M parameters takes minutes on a CPU, ``"meta"`` none."""
    import torch
    import transformers as tf

    if kind == "sam2":
        size = ARCHS["sam2"][arch]
        ip = image_processor("sam2", size, 256)
        with torch.device(device):
            model = tf.Sam2Model(released_sam2_config(arch, size, video=False))
        return model, tf.Sam2Processor(image_processor=ip)
    if arch != "sam3":
        raise KeyError(f"no released SAM3 size {arch!r}; the released size is 'sam3'")
    tokenizer = byte_level_clip_tokenizer()  # the released one is CLIP's BPE (49408 tokens)
    config = released_sam3_config(vocab_size=len(tokenizer))
    size = ARCHS["sam3"][arch]
    ip = image_processor("sam3", size, 288)
    with torch.device(device):
        model = tf.Sam3Model(config)
    return model, tf.Sam3Processor(image_processor=ip, tokenizer=tokenizer)


def _model(kind: str, arch: str, cfg: dict[str, Any], device: str = "cpu") -> tuple[Any, Any]:
    """Model and processor of one benchmark cell."""
    if arch.startswith("orchard"):
        return build_model(cfg)
    return released_model(kind, arch, device)


def trainable_params(kind: str, arch: str, option: str) -> int:
    """Trainable parameters of one benchmark cell, counted on a model built on the meta device
    (no memory, no init: seconds even for SAM3's 840M parameters)."""
    cfg = bench_config(kind, arch, option, "cpu", 1)
    model, _ = _model(kind, arch, cfg, "meta")
    freeze(
        model, kind, list(cfg["optim"]["freeze"]), int(cfg["optim"].get("freeze_vision_layers", 0))
    )
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def recorded_cuda() -> dict[str, Any]:
    """The recorded CUDA measurements (`RECORDED_CUDA`): ``provenance`` (machine, date, code,
    commands), ``bench_train`` (its ``setup`` and ``rows``) and ``gpu_check``."""
    return recorded_result("cuda_training")


def cuda_table(recorded: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows for display: trainable parameters (M), peak GPU memory (GiB) and steps/s per cell.

    Rows marked ``superseded`` (measured code that has changed since) are left out."""
    rows = [
        r for r in (recorded or recorded_cuda())["bench_train"]["rows"] if "superseded" not in r
    ]
    return [
        {
            "model": r["model"].upper(),
            "size": r["arch"],
            "option": r["option"],
            "trainable (M)": round(r["trainable_params"] / 1e6, 1),
            "peak GPU memory (GiB)": round(r["peak_mem_mb"] / 1024, 1),
            "steps/s": round(r["steps_per_s"], 2),
        }
        for r in rows
    ]


def click_cost_ms(size: int = 1024, radius: int = 40, repeats: int = 5, seed: int = 0) -> dict:
    """Milliseconds per RITM correction click (`Clicker.next_click`) on a ``size`` px image with
    one round object, against a prediction near it and against random noise (what an untrained
    model predicts): the clicker's distance transform covers the box round both masks."""
    import numpy as np

    yy, xx = np.mgrid[:size, :size]
    c = size // 2
    gt = (yy - c) ** 2 + (xx - c) ** 2 < radius**2
    preds = {
        "near": (yy - c - 5) ** 2 + (xx - c - 5) ** 2 < (radius - 2) ** 2,
        "random": np.random.default_rng(seed).random((size, size)) < 0.5,
    }
    out = {}
    for name, pred in preds.items():
        clicker = Clicker(gt)
        clicker.next_click(None)
        t0 = time.perf_counter()
        for _ in range(repeats):
            clicker.next_click(pred)
        out[name] = (time.perf_counter() - t0) / repeats * 1000
    return out


class saved_tensor_bytes:  # noqa: N801 - used as a context manager
    """Count the bytes autograd saves for backward inside the block (activation memory).

    Tensors are counted once per storage; parameters saved by reference count too (they are
    few). Deterministic and device-independent, unlike a process's peak memory.
    """

    def __enter__(self) -> saved_tensor_bytes:
        import torch

        self.bytes = 0
        self._seen: set[int] = set()

        def pack(t: Any) -> Any:
            try:
                key = t.untyped_storage().data_ptr()
            except RuntimeError:  # tensors without storage
                return t
            if key not in self._seen:
                self._seen.add(key)
                self.bytes += t.untyped_storage().nbytes()
            return t

        self._ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def run_one(
    kind: str,
    arch: str,
    option: str,
    device: str = "cpu",
    steps: int = 5,
    batch: int = 2,
    threads: int = 1,
) -> dict[str, Any]:
    """Time ``steps`` optimizer steps (after one warm-up step) of one configuration."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    cfg = bench_config(kind, arch, option, device, batch)
    dev = torch.device(device)
    model, processor = _model(kind, arch, cfg, device)
    size = ARCHS[kind][arch]
    pool = make_pool(load_samples(cfg, "train", cfg["data"]["n_train"]), size)
    task = make_task(cfg, model, processor)
    pool = task.filter_pool(pool)
    freeze(
        model, kind, list(cfg["optim"]["freeze"]), int(cfg["optim"].get("freeze_vision_layers", 0))
    )
    if cfg["train"]["grad_checkpointing"]:
        enable_grad_checkpointing(model)
    model.to(dev).train()
    opt = build_optimizer(model, kind, cfg["optim"])
    lm = task.loss_module(model)
    amp = precision_dtype(cfg["train"]["precision"], dev)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def step(s: int) -> None:
        idx = np.arange(s * batch, (s + 1) * batch) % len(pool)
        inputs = task.batch(pool, idx, step_rng(0, s), dev)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            loss, _ = lm(*inputs)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    idx0 = np.arange(batch) % len(pool)
    with (
        saved_tensor_bytes() as saved,
        torch.autocast(dev.type, dtype=amp, enabled=amp is not None),
    ):  # activations as training keeps them: bf16 where the steps run in bf16
        loss, _ = lm(*task.batch(pool, idx0, step_rng(0, 0), dev))
    loss.backward()
    opt.zero_grad(set_to_none=True)
    step(0)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        step(s)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {
        "model": kind,
        "arch": arch,
        "option": option,
        "device": device,
        "batch_images": batch,
        "trainable_params": int(trainable),
        "activations_mb": saved.bytes / 2**20,
        "optimizer_state_mb": trainable * 8 / 2**20,
        "precision": str(amp).removeprefix("torch.") if amp is not None else "float32",
        "steps_per_s": steps / dt,
        "peak_mem_mb": peak_memory_mb(dev),
    }


def _child(q: Any, args: tuple) -> None:
    try:
        q.put(run_one(*args))
    except Exception as e:  # noqa: BLE001 - reported in the table
        q.put({"error": f"{type(e).__name__}: {e}"})


def run_isolated(*args: Any) -> dict[str, Any]:
    """`run_one` in a fresh spawned process (its own peak memory)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, args))
    p.start()
    out = q.get()
    p.join()
    return out
