"""The orchard-tiny SAM2 memory path, fine-tuned on clips with two seeds.

The ``sam2_video`` recipe (``samgap_lib/configs/orchard_tiny.yml``) starts from the orchard-tiny
SAM2 image checkpoint and trains the memory path on synthetic clips, once. This study repeats
that training with other seeds (the memory path's initialisation, the clips and the sampling all
follow the seed; the image checkpoint it starts from stays the same) and scores each run on the
held-out clips (`samgap_lib.evaluation.sam2_video_held_out`), so a reader can tell the recipe from
the luck of one seed. `recorded_runs` reads the recorded run
(``samgap_lib/results/video_seeds.json``, with its provenance); the appendix on the miniature
reads it.

Run it (about two orchard-tiny video trainings)::

    samgap study video-seeds --seeds 0 1 --out video_seeds.json
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..evaluation import HELD_OUT_CLIPS, sam2_video_held_out
from ..io import recorded_result, write_json
from ..training import ORCHARD_TINY, ensure_orchard_tiny, train
from ..training.orchard_tiny import orchard_tiny_config

__all__ = ["METRICS", "recorded_runs", "run_video_seeds", "main"]

METRICS = ("J&F", "J&F_low", "J&F_high", "J&F_first", "J&F_last", "decay", "switch_rate")


def recorded_runs() -> dict[str, Any]:
    """The recorded run (``samgap_lib/results/video_seeds.json``): ``provenance``, the recipe it
    trained (its steps and clips), and per seed the held-out tracking numbers and those of the baseline that
    copies the frame-0 masks forward."""
    return recorded_result("video_seeds")


def run_video_seeds(seeds: list[int], num_threads: int | None = None) -> dict[str, Any]:
    """Train the ``sam2_video`` recipe once per seed from the cached orchard-tiny SAM2 and score
    each run on the held-out clips."""
    import torch

    start = ensure_orchard_tiny(models=("sam2",))["sam2"]
    recipe = ORCHARD_TINY["sam2_video"]
    out: dict[str, Any] = {
        "recipe": recipe,
        "steps": recipe["train"]["steps"],
        "clips": recipe["data"]["n_train"],
        "frames": recipe["video"]["frames"],
        "held_out": dict(HELD_OUT_CLIPS),
        "torch_threads": num_threads or torch.get_num_threads(),
        "seeds": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            cfg = orchard_tiny_config(
                "sam2_video", Path(tmp) / f"seed{seed}", start, num_threads=num_threads, seed=seed
            )
            cfg["init"]["seed"] = cfg["data"]["seed"] = seed
            t0 = time.perf_counter()
            res = train(cfg)
            wall = time.perf_counter() - t0
            m, copied = sam2_video_held_out(res.final)
            out["seeds"][str(seed)] = {
                "train_s": round(wall, 1),
                **{k: round(m[k], 4) for k in METRICS},
                "first_mask_copied": {k: round(copied[k], 4) for k in METRICS},
            }
            print(seed, out["seeds"][str(seed)], flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default="video_seeds.json")
    args = p.parse_args(argv)
    threads = int(os.environ.get("OMP_NUM_THREADS", "0")) or None
    res = run_video_seeds(args.seeds, threads)
    res["command"] = "samgap study video-seeds --seeds " + " ".join(map(str, args.seeds))
    write_json(res, args.out, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
