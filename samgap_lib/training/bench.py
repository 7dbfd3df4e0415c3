"""Speed and memory of training steps by freezing option (the engine of benchmarks/bench_train.py).

Each configuration runs in a fresh subprocess (spawn), so the CPU peak resident memory it reports
is its own; on CUDA the peak allocated memory is reset per configuration.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

__all__ = [
    "OPTIONS",
    "ARCHS",
    "HALF",
    "vit_layers",
    "bench_config",
    "run_one",
    "run_isolated",
    "hub_sam2_config",
    "released_model",
    "saved_tensor_bytes",
    "trainable_params",
    "RECORDED_CUDA",
    "recorded_cuda",
    "cuda_table",
    "click_cost_ms",
    "recipe_step_seconds",
]

# What benchmarks/gpu_check.py and bench_train.py --device cuda measured on a GPU machine
# (provenance inside); the book shows it, tests tie it to the code.
RECORDED_CUDA = Path(__file__).with_name("cuda_results.json")

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


def hub_sam2_config(name: str) -> Any:
    """Random-init ``Sam2Config`` shaped like SAM 2.1 hiera_t / hiera_l at 1024 px."""
    from transformers import Sam2Config
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    spec = {
        "hiera_t": dict(dim=96, heads=1, blocks=[1, 2, 7, 2], glob=[5, 7, 9], win=[8, 4, 14, 7]),
        "hiera_l": dict(
            dim=144, heads=2, blocks=[2, 6, 36, 4], glob=[23, 33, 43], win=[8, 4, 16, 8]
        ),
    }[name]
    dims = [spec["dim"] * 2**i for i in range(4)]
    backbone = Sam2HieraDetConfig(
        hidden_size=spec["dim"],
        num_attention_heads=spec["heads"],
        image_size=[1024, 1024],
        blocks_per_stage=spec["blocks"],
        embed_dim_per_stage=dims,
        num_attention_heads_per_stage=[spec["heads"] * 2**i for i in range(4)],
        window_size_per_stage=spec["win"],
        global_attention_blocks=spec["glob"],
        window_positional_embedding_background_size=[7, 7],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=dims[::-1],
        backbone_feature_sizes=[[256, 256], [128, 128], [64, 64]],
        fpn_hidden_size=256,
    )
    return Sam2Config(vision_config=vision)


def vit_layers(arch: str) -> int:
    """ViT depth of a SAM3 benchmark architecture, read from its config (no model is built)."""
    import transformers as tf

    from .arch import sam3_config

    config = tf.Sam3Config() if arch == "sam3" else sam3_config(arch)
    return int(config.vision_config.backbone_config.num_hidden_layers)


def bench_config(kind: str, arch: str, option: str, device: str, batch: int) -> dict[str, Any]:
    """The training config of one benchmark cell."""
    from .config import load_config, merge
    from .recipes import ORCHARD_TINY

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

    from samgap_lib.models.tiny import byte_level_clip_tokenizer

    if kind == "sam2":
        size = ARCHS["sam2"][arch]
        ip = tf.Sam2ImageProcessor(
            size={"height": size, "width": size}, mask_size={"height": 256, "width": 256}
        )
        with torch.device(device):
            model = tf.Sam2Model(hub_sam2_config(arch))
        return model, tf.Sam2Processor(image_processor=ip)
    if arch != "sam3":
        raise KeyError(f"no released SAM3 size {arch!r}; the released size is 'sam3'")
    tokenizer = byte_level_clip_tokenizer()  # the released one is CLIP's BPE (49408 tokens)
    config = tf.Sam3Config()
    text = config.text_config
    text.vocab_size = len(tokenizer)
    text.bos_token_id, text.eos_token_id = len(tokenizer) - 2, len(tokenizer) - 1
    text.pad_token_id = len(tokenizer) - 1
    size = ARCHS["sam3"][arch]
    ip = tf.Sam3ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": 288, "width": 288}
    )
    with torch.device(device):
        model = tf.Sam3Model(config)
    return model, tf.Sam3Processor(image_processor=ip, tokenizer=tokenizer)


def _model(kind: str, arch: str, cfg: dict[str, Any], device: str = "cpu") -> tuple[Any, Any]:
    """Model and processor of one benchmark cell."""
    from .arch import build_model

    if arch.startswith("orchard"):
        return build_model(cfg)
    return released_model(kind, arch, device)


def trainable_params(kind: str, arch: str, option: str) -> int:
    """Trainable parameters of one benchmark cell, counted on a model built on the meta device
    (no memory, no init: seconds even for SAM3's 840M parameters)."""
    from .optim import freeze

    cfg = bench_config(kind, arch, option, "cpu", 1)
    model, _ = _model(kind, arch, cfg, "meta")
    freeze(
        model, kind, list(cfg["optim"]["freeze"]), int(cfg["optim"].get("freeze_vision_layers", 0))
    )
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def recorded_cuda() -> dict[str, Any]:
    """The recorded CUDA measurements (`RECORDED_CUDA`)."""
    from ..io import read_json

    return read_json(RECORDED_CUDA)


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

    from samgap_lib.prompts import Clicker

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

    from .arch import enable_grad_checkpointing
    from .data import load_samples, make_pool, step_rng
    from .logs import peak_memory_mb
    from .optim import build_optimizer, freeze
    from .trainer import _amp, make_task

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
    amp = _amp(cfg["train"]["precision"], dev)
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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def recipe_step_seconds(
    model: str,
    processes: int = 1,
    threads: int = 1,
    steps: int = 40,
    skip: int = 10,
    n_train: int = 64,
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Seconds per step of the orchard-tiny ``model`` recipe trained as ``samgap train`` trains
    it, on the CPU: one process with ``threads`` torch threads, or ``processes`` data-parallel
    processes of one thread each (``torchrun``, gloo) that share the recipe's batch.

    Each setting runs the CLI in a fresh subprocess for ``steps`` steps of the recipe (its
    model, batch, prompts and losses; ``n_train`` training images instead of the recipe's, as
    data rendering happens before the first step and is not timed). The time is read from the
    run's own log: ``wall_s`` at step ``steps`` minus at step ``skip``, over ``steps - skip``.
    What a machine's cores buy a recipe: threads split each operation of one step, processes
    split the batch and add a gradient all-reduce.
    """
    import os
    import subprocess
    import sys
    import tempfile

    from samgap_lib.io import write_json

    from .logs import read_jsonl
    from .recipes import ORCHARD_TINY, orchard_tiny_config

    batch = int(ORCHARD_TINY[model]["train"]["batch_images"])
    if processes < 1 or threads < 1 or (processes > 1 and threads != 1):
        raise ValueError(
            f"recipe_step_seconds: processes={processes}, threads={threads}; use one process "
            "with any number of threads, or several processes of one thread each."
        )
    if batch % processes:
        raise ValueError(
            f"the {model} recipe's batch of {batch} images does not split over {processes} "
            f"processes; use a divisor of {batch}."
        )
    if not 0 < skip < steps or steps % skip:
        raise ValueError(
            f"need 0 < skip < steps with steps a multiple of skip, got {skip}, {steps}."
        )
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        out = Path(tmp) / "run"
        cfg = orchard_tiny_config(model, out)
        cfg["data"]["n_train"] = n_train
        cfg["train"].update(
            steps=steps,
            batch_images=batch // processes,
            log_every=skip,
            checkpoint_every=0,
            progress=False,
            num_threads=threads,
        )
        path = Path(tmp) / "config.json"  # JSON is YAML: the CLI reads it
        write_json(cfg, path)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1")
        env["SAMGAP_DDP_BACKEND"] = "gloo"
        cli = ["-m", "samgap_lib.cli", "train", model, "--config", str(path)]
        if processes > 1:
            launch = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
            launch += ["--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
            cli = launch + cli
        proc = subprocess.run(
            [sys.executable, *cli], env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode:
            raise RuntimeError(f"{model} training run failed:\n{proc.stderr[-2000:]}")
        wall = {r["step"]: r["wall_s"] for r in read_jsonl(out / "log.jsonl") if "wall_s" in r}
    return {
        "model": model,
        "processes": processes,
        "threads": threads,
        "batch_images": batch,
        "steps_timed": steps - skip,
        "s_per_step": (wall[steps] - wall[skip]) / (steps - skip),
    }
