"""A real SIGKILL of a training subprocess, then --resume: same weights and losses as an
uninterrupted run. And DistributedDataParallel with gloo on 2 CPU processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _training_helpers import REPO, cli_env, samgap, tiny_config, write_config
from safetensors.torch import load_file

from samgap_lib.training.logs import read_jsonl

pytestmark = pytest.mark.slow


def _losses(out_dir):
    recs = [r for r in read_jsonl(out_dir / "log.jsonl") if "loss/loss" in r]
    return [
        {k: v for k, v in r.items() if k.startswith("loss/") or k in ("step", "lr", "grad_norm")}
        for r in recs
    ]


@pytest.mark.parametrize("recipe", ["sam2", "sam2_video"])
def test_sigkill_then_resume_reproduces_uninterrupted_run(tmp_path, recipe):
    cfg = write_config(
        tmp_path / "c.yml",
        tiny_config(
            recipe,
            tmp_path / "unused",
            train={"steps": 14, "checkpoint_every": 3},
            data={"n_val": 0},
        ),
    )
    samgap("train", "sam2", "--config", str(cfg), "--out", str(tmp_path / "a"))

    out_b = tmp_path / "b"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "samgap_lib.cli",
            "train",
            "sam2",
            "--config",
            str(cfg),
            "--out",
            str(out_b),
        ],
        env=cli_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        steps = [r.get("step", 0) for r in read_jsonl(out_b / "log.jsonl")]
        if steps and max(steps) >= 8:
            break
        time.sleep(0.02)
    assert proc.poll() is None, (
        f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out_b / "final").exists()
    state = torch.load(out_b / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert 3 <= state["step"] < 14

    samgap("train", "sam2", "--config", str(cfg), "--out", str(out_b), "--resume")
    a = load_file(str(tmp_path / "a" / "final" / "model.safetensors"))
    b = load_file(str(out_b / "final" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _losses(tmp_path / "a") == _losses(out_b)
    assert [r["step"] for r in _losses(out_b)] == list(range(1, 15))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("recipe", ["sam2", "sam2_video", "sam3"])
def test_ddp_gloo_two_processes_identical_replicas(tmp_path, recipe):
    model = tiny_config(recipe, tmp_path)["model"]
    cfg = write_config(
        tmp_path / "c.yml",
        tiny_config(recipe, tmp_path / "ddp", train={"steps": 3}, data={"n_val": 0}),
    )
    env = cli_env()
    env["SAMGAP_DDP_BACKEND"] = "gloo"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "samgap_lib.cli",
        "train",
        model,
        "--config",
        str(cfg),
    ]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "ddp" / "ddp.json").read_text())
    assert info["world_size"] == 2
    assert len(set(info["param_digests"])) == 1
    assert (tmp_path / "ddp" / "final" / "model.safetensors").is_file()
    assert [r["step"] for r in _losses(tmp_path / "ddp")] == [1, 2, 3]


def _reduce_in_rank(rank: int, init: str, terms: list[dict[str, float]], out: str) -> None:
    import torch.distributed as dist

    from samgap_lib.training.trainer import _reduce_terms

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=len(terms))
    try:
        got = _reduce_terms(terms[rank], len(terms), torch.device("cpu"))
        Path(f"{out}.{rank}").write_text(json.dumps(got))
    finally:
        dist.destroy_process_group()


def test_ddp_loss_terms_reduce_when_ranks_log_different_terms(tmp_path):
    """A rank whose batch has no instance logs no mask loss: the ranks agree on the names
    first (an all-reduce of tensors of different lengths hangs gloo), then each term is the
    mean over the ranks that logged it."""
    import torch.multiprocessing as tmp_mp

    terms = [
        {"loss": 2.0, "class": 1.0, "mask_focal": 0.5},
        {"loss": 4.0, "class": 3.0, "semantic": 0.25},
    ]
    init = f"file://{tmp_path / 'store'}"
    out = str(tmp_path / "terms")
    tmp_mp.start_processes(
        _reduce_in_rank, args=(init, terms, out), nprocs=2, join=True, start_method="spawn"
    )
    for rank in range(2):
        got = json.loads(Path(f"{out}.{rank}").read_text())
        assert got == {"loss": 3.0, "class": 2.0, "mask_focal": 0.5, "semantic": 0.25}
