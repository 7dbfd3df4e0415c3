"""The `samgap` command: data, run, bench, train.

Examples
--------
    samgap --version
    samgap data synthetic --out data/generated/orchard --n 64 --seed 0
    samgap data minneapple --root data/minneapple
    samgap run compare --profile smoke --set data.n_images=8
    samgap bench metrics
    samgap study seed-spread --model sam3 --seeds 0 1 --out runs.json
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from . import __version__
from .benchmarks import BENCHMARKS
from .config import parse_hw

# the studies that run from the command line: name -> module with main(argv)
STUDIES = {
    "seed-spread": "samgap_lib.studies.seed_spread",
    "token-only": "samgap_lib.studies.token_only",
    "video-seeds": "samgap_lib.studies.video_seeds",
}


def _cmd_data_synthetic(args: argparse.Namespace) -> int:
    from .data import synthetic_orchard, to_coco, to_saco, write_minneapple
    from .io import write_json

    samples = synthetic_orchard(args.n, seed=args.seed, size=args.size, workers=args.workers)
    out = Path(args.out)
    write_minneapple(samples, out, "train")
    write_json(to_coco(samples), out / "coco.json")
    concepts = _orchard_concepts()
    write_json(to_saco(samples, concepts), out / "saco.json")
    n_inst = sum(len(s.instances) for s in samples)
    print(
        f"wrote {len(samples)} images, {n_inst} instances, {len(samples) * len(concepts)} (image, phrase) pairs to {out}"
    )
    return 0


def _orchard_concepts():
    try:
        from .prompts.concepts import ORCHARD_ALL

        return list(ORCHARD_ALL)
    except ImportError:  # prompts not installed in a partial checkout
        from .data import Concept

        return [
            Concept("apple"),
            Concept("ripe apple", attributes={"ripeness": "ripe"}),
            Concept("pear", "pear"),
        ]


def _cmd_data_minneapple(args: argparse.Namespace) -> int:
    from .data.download import download_minneapple, verify_minneapple

    try:
        counts = (
            verify_minneapple(args.root)
            if args.verify_only
            else download_minneapple(args.root, timeout=args.timeout)
        )
    except (ConnectionError, ValueError) as e:
        print(f"samgap data minneapple: {e}", file=sys.stderr)
        return 2
    print(f"MinneApple at {args.root} is complete: {counts}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import json

    from .experiments import ConfigMismatchError, load_config, results_dir, run_experiment

    # a ConfigError (a ValueError) or a missing file is reported by `main`
    cfg = load_config(args.config, profile=args.profile, overrides=args.set)
    try:
        summary = run_experiment(args.experiment, cfg, name=args.name, restart=args.restart)
    except ConfigMismatchError as e:
        print(f"samgap run: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, default=str))
    print(f"results: {results_dir(cfg, args.name or args.experiment)}", file=sys.stderr)
    return 0


def _run_module(name: str, prog: str, argv: list[str]) -> int:
    """``main(argv)`` of an installed module, with its usage line naming ``prog``."""
    module = importlib.import_module(name)
    sys.argv[0] = prog
    return int(module.main(argv) or 0)


def _cmd_bench(args: argparse.Namespace) -> int:
    return _run_module(BENCHMARKS[args.what], f"samgap bench {args.what}", args.rest)


def _cmd_study(args: argparse.Namespace) -> int:
    return _run_module(STUDIES[args.what], f"samgap study {args.what}", args.rest)


def _add_train_parser(sub) -> None:
    def run(args: argparse.Namespace) -> int:
        from .training.cli import run_train

        return run_train(args)

    from .training.cli import add_train_arguments

    tr = sub.add_parser("train", help="fine-tune SAM2 / SAM3, or build the orchard-tiny models")
    add_train_arguments(tr)
    tr.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="samgap", description="Measure and teach the SAM2-to-SAM3 gap."
    )
    p.add_argument("--version", action="version", version=f"samgap {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate or download datasets").add_subparsers(
        dest="what", required=True
    )
    syn = data.add_parser(
        "synthetic", help="write the synthetic orchard (MinneApple layout + COCO + SA-Co JSON)"
    )
    syn.add_argument("--out", required=True, help="output folder")
    syn.add_argument("--n", type=int, default=32, help="number of images (default 32)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--size", type=parse_hw, default="256x256", help="HxW (default 256x256)")
    syn.add_argument(
        "--workers", type=int, default=1, help="processes rendering images (same images for any)"
    )
    syn.set_defaults(func=_cmd_data_synthetic)
    mn = data.add_parser("minneapple", help="download and verify MinneApple")
    mn.add_argument("--root", required=True, help="folder to hold detection/")
    mn.add_argument("--verify-only", action="store_true", help="only check an existing copy")
    mn.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the server")
    mn.set_defaults(func=_cmd_data_minneapple)

    from .experiments.config import EXPERIMENTS

    run = sub.add_parser("run", help="run an experiment; results go to results/<profile>/<name>/")
    run.add_argument("experiment", choices=EXPERIMENTS)
    run.add_argument("--config", help="YAML configuration (see samgap_lib/experiments/config.py)")
    run.add_argument("--profile", choices=("smoke", "paper"), help="overrides the file's profile")
    run.add_argument("--name", help="results folder name (default: the experiment)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. --set clicks.max_clicks=5",
    )
    run.add_argument(
        "--restart",
        action="store_true",
        help="discard this run's earlier results instead of resuming",
    )
    run.set_defaults(func=_cmd_run)

    bench = sub.add_parser("bench", help="run a benchmark (samgap_lib.benchmarks)")
    bench.add_argument("what", choices=sorted(BENCHMARKS))
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    bench.set_defaults(func=_cmd_bench)
    study = sub.add_parser("study", help="run a study of the miniature models (samgap_lib.studies)")
    study.add_argument("what", choices=sorted(STUDIES))
    study.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the study")
    study.set_defaults(func=_cmd_study)
    _add_train_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; a refusal by the library (a ``ValueError``, a checkpoint that cannot be
    found, downloaded or loaded, or a missing or existing file naming the problem) prints one
    line and exits with 2 instead of a traceback (``SAMGAP_TRACEBACK=1`` shows the traceback)."""
    from .models.loading import CheckpointError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, CheckpointError, FileNotFoundError, FileExistsError) as e:
        if os.environ.get("SAMGAP_TRACEBACK"):
            raise
        print(f"samgap {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
