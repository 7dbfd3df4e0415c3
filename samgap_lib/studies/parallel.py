"""What two CPU cores buy an orchard-tiny training step: threads against data-parallel processes
(the engine of ``samgap bench parallel``).

`recipe_step_seconds` trains a recipe through ``samgap train`` in a fresh subprocess, with one
process and some threads, or several ``torchrun`` processes of one thread each (gloo), and reads
the seconds per step from the run's own log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..io import write_json
from ..training.logs import read_jsonl
from ..training.orchard_tiny import ORCHARD_TINY, orchard_tiny_config

__all__ = ["free_port", "recipe_step_seconds"]


def free_port() -> int:
    """A TCP port free on this machine now (for a torchrun rendezvous)."""
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
            launch += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
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
