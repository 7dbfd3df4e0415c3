"""The training loop shared by SAM2 and SAM3: accumulation, clipping, autocast, DDP,
periodic validation, atomic checkpoints and exact resumption.

Run ``train(cfg)`` in one process, or under ``torchrun --nproc_per_node N`` for data-parallel
training (DistributedDataParallel; gloo on CPU, nccl on CUDA); rank 0 logs, validates and
writes checkpoints. Randomness of a step (which images, which prompts) is drawn from
generators seeded by ``(seed, step, micro-batch, rank)``, and the RNG states are saved too, so a
killed run resumed from its last state file ends with bit-identical weights and losses.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..io import write_json
from ..models.archs import count_params
from .checkpoint import (
    check_resume,
    fingerprint,
    load_state,
    rng_state,
    save_hf_folder,
    save_state,
    set_rng_state,
)
from .data import batch_indices, load_samples, make_pool, step_rng
from .init import build_model, enable_grad_checkpointing, model_image_size
from .logs import RunLogger, peak_memory_mb, progress_enabled
from .optim import build_optimizer, freeze, lr_lambda
from .task import Task

__all__ = [
    "TrainResult",
    "make_task",
    "precision_dtype",
    "resolve_threads",
    "start_validation",
    "train",
]


@dataclass
class TrainResult:
    """What a run produced."""

    out_dir: Path
    final: Path
    best: Path | None
    steps: int
    wall_s: float
    metrics: dict[str, float] = field(default_factory=dict)
    n_params: int = 0
    device: str = "cpu"


def resolve_threads(setting: int | None, world: int = 1) -> int:
    """torch threads: the config value, else ``OMP_NUM_THREADS``, else cores / processes."""
    if setting:
        return int(setting)
    env = os.environ.get("OMP_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 1) // world)


def _device(setting: str, local_rank: int) -> torch.device:
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                "train.device is 'cuda' but no CUDA device is available; use 'cpu' or 'auto'."
            )
        return torch.device("cuda", local_rank)
    return torch.device(setting)


def precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.precision`` on ``device``: bf16 for ``bf16``, and for
    ``auto`` on CUDA; None (float32) otherwise."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def make_task(cfg: dict[str, Any], model: Any, processor: Any) -> Task:
    """The SAM2 (image or video) or SAM3 task object."""
    from .tasks import Sam2Task, Sam2VideoTask, Sam3Task

    if cfg["model"] == "sam2":
        if cfg["video"]["frames"]:
            return Sam2VideoTask(cfg, model, processor)
        return Sam2Task(cfg, model, processor)
    return Sam3Task(cfg, model, processor)


def _start(cfg: dict[str, Any]) -> tuple[Any, Any, list[Any], torch.device]:
    """The task, the model ``cfg`` starts from, its validation images and the device."""
    n_val = int(cfg["data"]["n_val"])
    if n_val <= 0:
        raise ValueError(
            "data.n_val is 0: no validation images to evaluate on; set data.n_val > 0."
        )
    device = _device(cfg["train"]["device"], 0)
    model, processor = build_model(cfg)
    task = make_task(cfg, model, processor)
    if hasattr(task, "load_pool"):
        return task, model, task.load_pool("val", n_val, model_image_size(model)), device
    return task, model, load_samples(cfg, "val", n_val), device


def start_validation(
    cfg: dict[str, Any],
) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Validation of the model ``cfg`` starts from (``init``: a checkpoint, or from scratch),
    before any training: the task's periodic validation (mIoU/NoC for SAM2, cgF1/AP for SAM3) on
    the ``data.n_val`` validation images, on the device ``train.device`` resolves to as in
    `train` (``auto``: CUDA when available).

    Returns the metrics and, from the same pass, their ratio metrics per validation image:
    ``{metric: (numerator, denominator)}``, each ``(data.n_val,)`` (SAM2: summed IoUs and apples,
    for box and click mIoU; SAM3: apples found over apples named or detections kept, per phrase).
    Give it a run's ``cfg`` for the model before training and the same ``cfg`` with
    ``init.checkpoint`` set to the run's ``final`` folder for the model after: both are scored on
    the same images, so `samgap_lib.metrics.paired_differences` puts an interval on each
    change."""
    task, model, samples, device = _start(cfg)
    return task.validate(model, samples, device)


def _dist_setup() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = (
            "nccl"
            if torch.cuda.is_available() and os.environ.get("SAMGAP_DDP_BACKEND") != "gloo"
            else "gloo"
        )
        dist.init_process_group(backend=backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def _reduce_terms(terms: dict[str, float], world: int, device: torch.device) -> dict[str, float]:
    """The loss terms of one step averaged over the ranks. Ranks can log different terms (a
    SAM3 batch without instances has no mask loss), so they first agree on the union of the
    names; each term is then the mean over the ranks that have it (an all-reduce of tensors of
    different lengths would hang)."""
    if world == 1:
        return terms
    names: list[Any] = [None] * world
    dist.all_gather_object(names, sorted(terms))
    keys = sorted(set().union(*names))
    t = torch.tensor(
        [[terms.get(k, 0.0), float(k in terms)] for k in keys], dtype=torch.float64, device=device
    )
    dist.all_reduce(t)
    return {k: s / n for k, (s, n) in zip(keys, t.tolist(), strict=True) if n > 0}


def param_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes (replicas of a DDP run must agree)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _check_replicas(model: torch.nn.Module, world: int, out_dir: Path, is_main: bool) -> None:
    digests: list[Any] = [None] * world
    dist.all_gather_object(digests, param_digest(model))
    if is_main:
        write_json({"world_size": world, "param_digests": digests}, out_dir / "ddp.json", indent=2)
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP replicas ended with different weights: {digests}.")


def train(
    cfg: dict[str, Any],
    resume: str | os.PathLike | bool | None = None,
    *,
    on_step: Any = None,
) -> TrainResult:
    """Train a model as ``cfg`` (a validated config) says.

    Parameters
    ----------
    cfg
        From `samgap_lib.training.load_config`.
    resume
        ``True``: continue from ``<out_dir>/checkpoints/last.pt`` when it exists; a path:
        continue from that file (it must exist); None/False: start fresh.
    on_step
        Optional callback ``f(step, record)`` after each logged step (tests, notebooks).

    Returns
    -------
    TrainResult
    """
    t_start = time.perf_counter()
    rank, world, local_rank = _dist_setup()
    tcfg = cfg["train"]
    torch.set_num_threads(resolve_threads(tcfg["num_threads"], world))
    device = _device(tcfg["device"], local_rank)
    if world > 1 and device.type == "cuda":
        torch.cuda.set_device(device)  # one GPU per rank (the loss terms' all_gather_object)
    out_dir = Path(tcfg["out_dir"])
    state_path = out_dir / "checkpoints" / "last.pt"

    # 1. everything that can be refused is checked before data or model are built
    state = None
    if resume is not None and resume is not False:
        path = state_path if resume is True else Path(resume)
        if resume is not True and not path.is_file():
            raise FileNotFoundError(f"--resume {path}: no such file.")
        if path.is_file():
            state = load_state(path)
            check_resume(state, cfg, path)

    # 2. data (refuses a dataset without instances) and model
    model, processor = build_model(cfg)
    size = model_image_size(model)  # the model fixes the size: make_pool resizes to it
    workers = torch.get_num_threads()  # this rank's cores render the synthetic images
    task = make_task(cfg, model, processor)
    n_val = cfg["data"]["n_val"]
    if hasattr(task, "load_pool"):  # a task with its own data (SAM2 video: clips)
        pool: Any = task.load_pool("train", cfg["data"]["n_train"], size)
        val: Any = task.load_pool("val", n_val, size) if n_val else []
    else:
        pool = make_pool(
            load_samples(cfg, "train", cfg["data"]["n_train"], workers), size, "training data"
        )
        val = load_samples(cfg, "val", n_val, workers) if n_val else []
    pool = task.filter_pool(pool)
    kind = cfg["model"]
    ocfg = cfg["optim"]
    freeze(model, kind, list(ocfg["freeze"]), int(ocfg.get("freeze_vision_layers", 0)))
    if tcfg["grad_checkpointing"]:
        enable_grad_checkpointing(model)
    model.to(device).train()
    if state is not None:
        fp = fingerprint(cfg, model)
        if state["fingerprint"].get("params") != fp["params"]:
            raise ValueError(
                f"resume file: its weights have other names or shapes than this {kind} model "
                f"({cfg['init']['arch'] or cfg['init']['checkpoint']}); it comes from another model."
            )
    optimizer = build_optimizer(model, kind, ocfg)
    steps = int(tcfg["steps"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(steps, int(ocfg["warmup_steps"]), float(ocfg["min_lr_ratio"]))
    )
    amp_dtype = precision_dtype(tcfg["precision"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=False)  # bf16 needs no loss scaling
    start, best_value = 0, None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start, best_value = int(state["step"]), state.get("best_value")
    else:
        seed = int(tcfg["seed"])
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds third-party code using it
        torch.manual_seed(seed)

    loss_module = task.loss_module(model)
    runner: Any = loss_module
    if world > 1:
        runner = torch.nn.parallel.DistributedDataParallel(
            loss_module,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    is_main = rank == 0
    logger = RunLogger(out_dir, resume_step=start, enabled=is_main)
    bar = None
    try:  # the logger's files (TensorBoard's writer thread too) are closed however training ends
        if is_main and state is None:
            write_json(cfg, out_dir / "config.json", indent=2)
        if is_main and progress_enabled(tcfg["progress"]):
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, initial=start, desc=f"train {kind}", unit="step")

        accum, batch = int(tcfg["grad_accum"]), int(tcfg["batch_images"])
        seed = int(tcfg["seed"])
        params = [p for p in model.parameters() if p.requires_grad]
        metrics: dict[str, float] = {}
        best_path = out_dir / "best" if (out_dir / "best").exists() else None
        t_log, n_img = time.perf_counter(), 0

        def evaluate(step: int) -> None:
            nonlocal best_value, best_path, metrics
            if is_main and val:
                metrics = task.evaluate(model, val, device)
                model.train()
                logger.log({"step": step, **{f"val/{k}": v for k, v in metrics.items()}})
                value = metrics.get(task.metric)
                if value is not None and (best_value is None or value > best_value):
                    best_value = value
                    best_path = save_hf_folder(out_dir / "best", model, processor)
            if world > 1:
                dist.barrier()

        for step in range(start, steps):
            terms_sum: dict[str, float] = {}
            for micro in range(accum):
                idx = batch_indices(len(pool), step, micro, batch, accum, seed, rank, world)
                rng = step_rng(seed, step, micro, rank)
                inputs = task.batch(pool, idx, rng, device)
                sync = world == 1 or micro == accum - 1
                ctx = contextlib.nullcontext() if sync else runner.no_sync()
                with ctx:
                    with torch.autocast(
                        device.type, dtype=amp_dtype, enabled=amp_dtype is not None
                    ):
                        loss, terms = runner(*inputs)
                    (loss / accum).backward()
                for k, v in terms.items():
                    terms_sum[k] = terms_sum.get(k, 0.0) + v / accum
                n_img += len(idx) * world
            clip = float(ocfg["grad_clip"])
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done = step + 1
            terms_sum = _reduce_terms(terms_sum, world, device)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{terms_sum.get('loss', 0.0):.3f}")
            if is_main and (done % int(tcfg["log_every"]) == 0 or done == steps or done == 1):
                dt = max(time.perf_counter() - t_log, 1e-9)
                rec = {
                    "step": done,
                    **{f"loss/{k}": v for k, v in terms_sum.items()},
                    "lr": optimizer.param_groups[0]["lr"],
                    "grad_norm": float(grad_norm),
                    "images_per_s": n_img / dt,
                    "peak_mem_mb": peak_memory_mb(device),
                    "wall_s": time.perf_counter() - t_start,
                }
                logger.log(rec)
                if on_step is not None:
                    on_step(done, rec)
                t_log, n_img = time.perf_counter(), 0
            every_eval = int(tcfg["eval_every"])
            if done == steps or (every_eval > 0 and done % every_eval == 0):
                evaluate(done)
            every_ckpt = int(tcfg["checkpoint_every"])
            if done == steps or (every_ckpt > 0 and done % every_ckpt == 0):
                if is_main:
                    save_state(
                        state_path,
                        {
                            "step": done,
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(),
                            "scaler": scaler.state_dict(),
                            "rng": rng_state(),
                            "best_value": best_value,
                            "config": cfg,
                            "fingerprint": fingerprint(cfg, model),
                        },
                    )
                if world > 1:
                    dist.barrier()
        if start >= steps and is_main and val and not metrics:
            metrics = task.evaluate(model, val, device)
        final = out_dir / "final"
        if world > 1:
            _check_replicas(model, world, out_dir, is_main)
        if is_main:
            save_hf_folder(final, model, processor)
    finally:
        if bar is not None:
            bar.close()
        logger.close()
    if world > 1:
        dist.barrier()
    return TrainResult(
        out_dir=out_dir,
        final=final,
        best=best_path,
        steps=steps,
        wall_s=time.perf_counter() - t_start,
        metrics=metrics,
        n_params=count_params(model),
        device=str(device),
    )
