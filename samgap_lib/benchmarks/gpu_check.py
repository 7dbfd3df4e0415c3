"""CUDA checks of the paper profile's code paths, on released-size models (no download).

    samgap bench gpu --out gpu_check.json            # all checks, on a GPU
    samgap bench gpu --only inference train-resume   # some of them
    samgap bench gpu --device cpu --models tiny      # the same code, tiny models

SAM 2.1 hiera_l- and SAM3-shaped models are random-initialised and saved in the transformers
on-disk format (`save_pretrained`), so every check loads them through the code that loads a
downloaded checkpoint. Random weights make quality numbers meaningless: the checks are about
what runs, how fast, in how much memory, and whether a resumed run repeats an uninterrupted one.

Checks (each reported pass/fail with its numbers, the next one runs either way):

``inference``
    `load_sam2` / `load_sam3` from the folders on CUDA (bf16 autocast): set one 720x1280 image
    (MinneApple's frame size), then 50 box prompts in one call; 8 phrases in one call. Times and
    peak memory; then 2 phrases at score threshold 0, so that every query's mask goes through
    the post-processing (a random SAM3 scores nothing above 0.5).
``experiment``
    `samgap run compare --profile paper` on a MinneApple-format folder written from the
    synthetic orchard (`write_minneapple`), with the two folders as the models' sources.
``train-resume``
    SAM3 fine-tuning with masks at 1008 px, bf16, batch 1, every memory saver on: run A trains
    4 steps; run B is killed (SIGKILL) after its step-2 checkpoint and resumed. Logged losses
    and final weights of A and B are compared.
``ddp``
    ``torchrun --nproc_per_node=<GPUs>`` of ``samgap train sam2`` from the hiera_l folder
    (DistributedDataParallel on NCCL), 3 steps. With ``--device cpu``: 2 processes on gloo.

``--models tiny`` swaps in the tiny transformers configs of `samgap_lib.models.testing` at their
small sizes, so the tests run every check on a CPU; the numbers then say nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

# the subprocesses run from a scratch folder: the installed samgap_lib is what they import

CHECKS = ("inference", "experiment", "train-resume", "ddp")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"})
    return env


def write_models(root: Path, device: str = "cuda", models: str = "released") -> dict[str, Any]:
    """Random-init SAM2 and SAM3 folders under ``root`` and what the checks need to know of them.

    ``released``: SAM 2.1 hiera_l shape at 1024 px, SAM3 at 1008 px (initialised on ``device``:
    SAM3's 840M parameters take minutes on a CPU). ``tiny``: `samgap_lib.models.testing`.
    """
    import torch
    import transformers as tf

    from ..models.archs import TEST_IMAGE_SIZE
    from ..models.testing import write_tiny_checkpoints
    from ..studies.train_bench import ARCHS, released_model

    if models == "tiny":
        tiny = write_tiny_checkpoints(root, include=("hf-sam2", "hf-sam3"))
        out: dict[str, Any] = {"sam2": tiny["hf-sam2"], "sam3": tiny["hf-sam3"]}
        out["size"] = dict(TEST_IMAGE_SIZE)
    else:
        out = {"sam2": root / "sam2", "sam3": root / "sam3"}
        released = {"sam2": "hiera_l", "sam3": "sam3"}
        torch.manual_seed(0)
        for name, arch in released.items():
            model, processor = released_model(name, arch, device)
            model.save_pretrained(out[name])
            processor.save_pretrained(out[name])
            del model
        out["size"] = {name: ARCHS[name][arch] for name, arch in released.items()}
    vision = tf.Sam3Config.from_pretrained(out["sam3"]).vision_config
    out["vit_layers"] = vision.backbone_config.num_hidden_layers
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_mb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _timed(fn: Any, device: str, repeats: int = 3) -> tuple[Any, float]:
    """(result of the last call, median seconds) after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return out, sorted(times)[len(times) // 2]


def check_inference(models: dict[str, Any], work: Path, device: str) -> dict[str, Any]:
    import numpy as np

    from ..data import synthetic_orchard
    from ..models import load_sam2, load_sam3

    sample = synthetic_orchard(1, seed=0, size=(720, 1280))[0]  # MinneApple's frame size
    boxes = np.array([[40.0 + 20 * i, 60.0, 120.0 + 20 * i, 150.0] for i in range(50)])
    res: dict[str, Any] = {"image": list(sample.image.shape)}

    _reset_peak(device)
    sam2 = load_sam2(str(models["sam2"]), device=device)
    _, res["sam2_set_image_s"] = _timed(lambda: sam2.set_image(sample.image), device)
    out, res["sam2_50_boxes_s"] = _timed(lambda: sam2.predict(boxes=boxes, multimask=False), device)
    res["sam2_masks"] = list(np.asarray(out.masks).shape)
    if res["sam2_masks"][0] != 50 or tuple(res["sam2_masks"][-2:]) != sample.image.shape[:2]:
        raise AssertionError(f"SAM2 returned masks of shape {res['sam2_masks']} for 50 boxes")
    res["sam2_peak_mb"] = _peak_mb(device)
    res["sam2_amp_dtype"] = str(sam2.amp_dtype)
    sam2 = None  # free its GPU memory before SAM3 is measured

    _reset_peak(device)
    sam3 = load_sam3(str(models["sam3"]), device=device)
    phrases = ["ripe apple", "unripe apple", "apple", "leaf", "pear", "branch", "sky", "fruit"]
    _, res["sam3_set_image_s"] = _timed(lambda: sam3.set_image(sample.image), device)
    preds, res["sam3_8_phrases_s"] = _timed(lambda: sam3.segment(phrases=phrases), device)
    if sorted(preds) != sorted(phrases):
        raise AssertionError(f"SAM3 answered {sorted(preds)} for {sorted(phrases)}")
    res["sam3_detections"] = {p: len(pred.scores) for p, pred in preds.items()}
    low = sam3.segment(phrases=phrases[:2], threshold=0.0)
    shapes = {p: list(np.asarray(pred.masks).shape) for p, pred in low.items()}
    if any(sh[0] == 0 or tuple(sh[1:]) != sample.image.shape[:2] for sh in shapes.values()):
        raise AssertionError(f"SAM3 at threshold 0 returned masks of shapes {shapes}")
    res["sam3_threshold0_masks"] = shapes
    res["sam3_peak_mb"] = _peak_mb(device)
    res["sam3_amp_dtype"] = str(sam3.amp_dtype)
    return res


def check_experiment(models: dict[str, Any], work: Path, device: str) -> dict[str, Any]:
    from ..data import synthetic_orchard
    from ..data.minneapple import write_minneapple

    root = work / "minneapple"
    write_minneapple(synthetic_orchard(6, seed=1, size=(720, 1280)), root, split="train")
    cmd = [
        sys.executable, "-m", "samgap_lib.cli", "run", "compare", "--profile", "paper",
        "--set", f"data.data_root={root}", "--set", "data.n_images=4",
        "--set", "clicks.max_clicks=5", "--set", f"device={device}",
        "--set", f"models.sam2.source={models['sam2']}",
        "--set", f"models.sam3.source={models['sam3']}",
        "--set", f"output={work / 'results'}",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=work, timeout=600)
    res = {"wall_s": time.perf_counter() - t0, "returncode": proc.returncode}
    if proc.returncode != 0:
        raise RuntimeError(f"samgap run compare failed:\n{proc.stderr[-3000:]}")
    prov = next((work / "results").rglob("provenance.json"))
    res["provenance_device"] = json.loads(prov.read_text()).get("device_name")
    res["stdout_tail"] = proc.stdout[-600:]
    return res


def _train_config(models: dict[str, Any], out: Path, steps: int, device: str) -> dict[str, Any]:
    """SAM3 mask fine-tuning with every memory saver on (bf16 on CUDA)."""
    return {
        "model": "sam3",
        "init": {"checkpoint": str(models["sam3"])},
        "data": {"n_train": 8, "n_val": 0, "image_size": models["size"]["sam3"]},
        "loss": {"segmentation": True, "max_matched_queries": 4},
        "optim": {
            "freeze": ["text"],
            "freeze_vision_layers": models["vit_layers"] // 2,
            "warmup_steps": 1,
        },
        "train": {
            "steps": steps,
            "batch_images": 1,
            "device": device,
            "precision": "auto",
            "grad_checkpointing": True,
            "log_every": 1,
            "eval_every": 0,
            "checkpoint_every": 2,
            "out_dir": str(out),
            "progress": False,
        },
    }


def _losses(out: Path) -> list[dict[str, Any]]:
    from ..training.logs import read_jsonl

    keep = ("step", "lr", "grad_norm")
    return [
        {k: v for k, v in r.items() if k.startswith("loss/") or k in keep}
        for r in read_jsonl(out / "log.jsonl")
        if "loss/loss" in r
    ]


def check_train_resume(models: dict[str, Any], work: Path, device: str) -> dict[str, Any]:
    import torch
    import yaml
    from safetensors.torch import load_file

    from ..training.logs import read_jsonl

    cfg_path = work / "train_sam3.yml"
    cfg_path.write_text(yaml.safe_dump(_train_config(models, work / "unused", 4, device)))
    base = [sys.executable, "-m", "samgap_lib.cli", "train", "sam3", "--config", str(cfg_path)]
    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    a = subprocess.run(
        [*base, "--out", str(work / "a")], capture_output=True, text=True, env=_env(), cwd=work
    )
    res["run_a_s"] = time.perf_counter() - t0
    if a.returncode != 0:
        raise RuntimeError(f"run A failed:\n{a.stderr[-3000:]}")
    step_log = [r for r in read_jsonl(work / "a" / "log.jsonl") if "loss/loss" in r]
    res["log_keys"] = sorted(step_log[-1])
    res["peak_mem_mb"] = max(r["peak_mem_mb"] for r in step_log)
    res["images_per_s"] = step_log[-1]["images_per_s"]

    out_b = work / "b"
    proc = subprocess.Popen(
        [*base, "--out", str(out_b)],
        env=_env(),
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (out_b / "checkpoints" / "last.pt").exists() and any(
            r.get("step", 0) >= 3 for r in read_jsonl(out_b / "log.jsonl")
        ):
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        raise RuntimeError(f"run B ended before the kill:\n{proc.stderr.read()[-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    killed_at = torch.load(
        out_b / "checkpoints" / "last.pt", map_location="cpu", weights_only=False
    )
    res["killed_after_checkpoint_step"] = int(killed_at["step"])
    b = subprocess.run(
        [*base, "--out", str(out_b), "--resume"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=work,
    )
    if b.returncode != 0:
        raise RuntimeError(f"resume failed:\n{b.stderr[-3000:]}")
    la, lb = _losses(work / "a"), _losses(out_b)
    res["losses_a"], res["losses_b"] = la, lb
    res["losses_identical"] = la == lb
    res["max_loss_diff"] = max(
        abs(x[k] - y[k]) for x, y in zip(la, lb, strict=True) for k in x if k != "step"
    )
    wa = load_file(str(work / "a" / "final" / "model.safetensors"))
    wb = load_file(str(out_b / "final" / "model.safetensors"))
    res["weights_identical"] = all(torch.equal(wa[k], wb[k]) for k in wa)
    res["max_weight_diff"] = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    return res


def check_ddp(models: dict[str, Any], work: Path, device: str) -> dict[str, Any]:
    import torch
    import yaml

    cfg = {
        "model": "sam2",
        "init": {"checkpoint": str(models["sam2"])},
        "data": {"n_train": 8, "n_val": 0, "image_size": models["size"]["sam2"]},
        "train": {
            "steps": 3,
            "batch_images": 2,
            "device": device,
            "log_every": 1,
            "eval_every": 0,
            "checkpoint_every": 3,
            "out_dir": str(work / "ddp"),
            "progress": False,
        },
    }
    path = work / "train_sam2.yml"
    path.write_text(yaml.safe_dump(cfg))
    cuda = device.startswith("cuda")
    n = torch.cuda.device_count() if cuda else 2
    cmd = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}",
        "--master_port=29533", "-m", "samgap_lib.cli", "train", "sam2", "--config", str(path),
    ]  # fmt: skip
    env = _env()
    env.pop("SAMGAP_DDP_BACKEND", None)
    if not cuda:
        env.update(SAMGAP_DDP_BACKEND="gloo", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, timeout=600)
    res = {
        "processes": n,
        "backend": "nccl" if cuda else "gloo",
        "wall_s": time.perf_counter() - t0,
        "returncode": proc.returncode,
    }
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed:\n{proc.stderr[-3000:]}")
    res["losses"] = _losses(work / "ddp")
    res["stdout_tail"] = proc.stdout[-400:]
    return res


def main(argv: list[str] | None = None) -> int:
    import torch

    from ..io import write_json
    from ..provenance import environment

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", choices=CHECKS, help="run only these checks")
    p.add_argument("--work", help="folder for the models and runs (default: a temporary one)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --models tiny)")
    p.add_argument("--models", choices=("released", "tiny"), default="released")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --device cpu --models tiny.", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="samgap-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "environment": environment(args.device),
        "models": args.models,
        "checks": {},
    }
    t0 = time.perf_counter()
    models = write_models(work / "models", args.device, args.models)
    report["write_models_s"] = time.perf_counter() - t0
    funcs = {
        "inference": check_inference,
        "experiment": check_experiment,
        "train-resume": check_train_resume,
        "ddp": check_ddp,
    }
    for name in args.only or CHECKS:
        t0 = time.perf_counter()
        try:
            res = {"ok": True, **funcs[name](models, work, args.device)}
        except Exception as e:  # noqa: BLE001 - reported, the next check still runs
            res = {
                "ok": False,
                "error": f"{type(e).__name__}: {e}",
                "trace": traceback.format_exc(),
            }
        res["check_s"] = time.perf_counter() - t0
        report["checks"][name] = res
        brief = {k: v for k, v in res.items() if k not in ("losses_a", "losses_b", "trace")}
        print(
            f"== {name}: {'PASS' if res['ok'] else 'FAIL'}\n{json.dumps(brief, default=str)[:3000]}"
        )
        if args.out:
            write_json(report, args.out, indent=2)
    return 0 if all(r["ok"] for r in report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
