"""``samgap train``: fine-tune SAM2 / SAM3, copy out the configs, or build orchard-tiny.

Examples
--------
    samgap train --init configs/                 # writes train_sam2.yml and train_sam3.yml
    samgap train sam2 --config configs/train_sam2.yml
    samgap train sam3 --config configs/train_sam3.yml --resume
    samgap train --recipe orchard-tiny           # the smoke profile's models (cached)
    torchrun --nproc_per_node 2 -m samgap_lib.cli train sam2 --config c.yml   # data parallel
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_train_arguments", "run_train"]


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``samgap train``."""
    p.add_argument("model", nargs="?", choices=("sam2", "sam3"), help="which model to train")
    p.add_argument("--config", help="YAML config (partial: merged over the packaged default)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="STATE",
        help="continue from <out_dir>/checkpoints/last.pt (or the given state file)",
    )
    p.add_argument("--out", help="override train.out_dir")
    p.add_argument("--steps", type=int, help="override train.steps")
    p.add_argument("--device", help="override train.device (auto, cpu, cuda)")
    p.add_argument("--init", metavar="DIR", help="copy train_sam2.yml and train_sam3.yml into DIR")
    p.add_argument("--force", action="store_true", help="with --init: overwrite existing files")
    p.add_argument("--recipe", choices=("orchard-tiny",), help="train a named recipe (cached)")
    p.add_argument(
        "--cache-dir", help="with --recipe: cache root (default $SAMGAP_CACHE or ~/.cache/samgap)"
    )


def _err(msg: str) -> int:
    print(f"samgap train: {msg}", file=sys.stderr)
    return 2


def run_train(args: argparse.Namespace) -> int:
    """Entry point of ``samgap train``; returns the exit status."""
    from ..config import ConfigError
    from .checkpoint import ResumeError
    from .config import init_configs, load_config

    if args.init:
        try:
            for path in init_configs(args.init, overwrite=args.force):
                print(f"wrote {path}")
        except FileExistsError as e:
            return _err(str(e))
        return 0
    if args.recipe:
        from .orchard_tiny import ensure_orchard_tiny, read_card

        paths = ensure_orchard_tiny(args.cache_dir)
        for name, path in paths.items():
            card = read_card(path)
            print(
                f"{name}: {path} ({card['params']} params, {card['steps']} steps, {card['wall_time_s']} s)"
            )
        return 0
    if not args.model:
        return _err(
            "say which model to train (sam2 or sam3), or use --init DIR / --recipe orchard-tiny."
        )
    overrides: dict[str, Any] = {"train": {}}
    if args.out:
        overrides["train"]["out_dir"] = args.out
    if args.steps is not None:
        overrides["train"]["steps"] = args.steps
    if args.device:
        overrides["train"]["device"] = args.device
    try:
        cfg = load_config(args.config, model=args.model, overrides=overrides)
        from .trainer import train

        res = train(cfg, resume=args.resume)
    except (ConfigError, ResumeError, FileNotFoundError) as e:
        return _err(str(e))
    except ValueError as e:  # data without instances, wrong phrases, nothing to train
        return _err(str(e))
    print(f"done: {res.steps} steps in {res.wall_s:.1f} s; final checkpoint {res.final}")
    if res.metrics:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in list(res.metrics.items())[:6])
        print(f"validation: {shown}")
    return 0
