"""How much do the orchard-tiny numbers depend on the seed? Retrain the recipe with other seeds.

The orchard-tiny recipes are deterministic: one seed gives the same checkpoint on every run with
the same thread count on the same kind of CPU. So the held-out numbers on the checkpoint's card
are one draw. This module retrains the unchanged recipe with other initialisation and sampling
seeds (``init.seed`` and ``train.seed``; the training images stay the same) and evaluates each
run as the card does (`samgap_lib.evaluation.evaluate_checkpoint`). With ``--steps`` it trains longer
instead, to show what more compute buys; those runs are kept apart as ``longer``. With ``--set``
it trains the recipe with one change (a JSON object merged into the config) on the given seeds:
a recipe change that was tried, kept apart as ``variants`` and compared seed by seed with the
recipe (`variants_table`).
`recorded_runs` reads the recorded runs (``samgap_lib/results/seed_spread.json``, with their
provenance; ``--merge ... --record`` writes it); the appendix on the miniature reads it, `spread_table` summarises the seeds and `variants_table` the changes. When a change
becomes the recipe, the recipe it replaced keeps its runs and the changes tried on it under
``replaced_recipes`` (`recipe_block`), each change still compared with the recipe it changed. Each
model's runs are stored with `first_losses`, the recipe's loss at its first steps on the code
that trained them: a test retrains those steps, so that a code change that trains the recipe to
other numbers cannot leave the book comparing today's checkpoints with runs of other code.
Another kind of CPU can train the recipe to other numbers too: each training invocation warns
when this machine's first losses are not the recorded ones (`numerics_unlike_recorded`).

Run it (one process per model and seed; about 5 minutes per SAM2 seed and 10 per SAM3 seed on
one thread)::

    OMP_NUM_THREADS=1 python -m samgap_lib.studies.seed_spread --model sam3 --seeds 0 --out s0.json
    OMP_NUM_THREADS=1 python -m samgap_lib.studies.seed_spread --model sam3 --seeds 0 --steps 4800 --out l.json
    OMP_NUM_THREADS=1 python -m samgap_lib.studies.seed_spread --model sam3 --seeds 0 1 \
        --set '{"optim": {"lr": 0.002}}' --out v.json
    python -m samgap_lib.studies.seed_spread --merge s0.json s1.json ... l.json v.json --out all.json
    OMP_NUM_THREADS=1 python -m samgap_lib.studies.seed_spread --model sam3 --first-losses
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, merge
from ..evaluation import evaluate_checkpoint
from ..io import read_json, recorded_result, recorded_result_path, write_json
from ..provenance import device_name, git_commit
from ..training import ORCHARD_TINY, load_config, train
from ..training.orchard_tiny import orchard_tiny_config

__all__ = [
    "METRICS",
    "recorded_runs",
    "run_seed",
    "first_losses",
    "numerics_unlike_recorded",
    "variant_config",
    "merge_runs",
    "recipe_block",
    "recipe_difference",
    "spread_table",
    "variants_table",
    "describe_change",
    "main",
]

# The card metrics recorded per seed.
METRICS: dict[str, list[str]] = {
    "sam2": ["click_mIoU@1", "click_mIoU@3", "box_mIoU", "NoC@0.85"],
    "sam3": [
        "recall[ripe apple]",
        "precision[ripe apple]",
        "recall[unripe apple]",
        "precision[unripe apple]",
        "recall[apple]",
        "precision[apple]",
        "selectivity[ripe apple]",
        "selectivity[unripe apple]",
        "det_per_image[pear]",
        "cgF1",
    ],
}


def recorded_runs() -> dict[str, Any]:
    """The recorded runs (``samgap_lib/results/seed_spread.json``): ``provenance`` and, per
    model, the ``recipe`` they trained, ``torch_threads``, ``first_losses``, the recipe's seed
    ``runs``, the ``longer`` runs, the ``variants`` (changes tried) and ``replaced_recipes`` (the
    recipes this one replaced, each with its own runs and variants)."""
    return recorded_result("seed_spread")


def variant_config(
    model: str,
    seed: int,
    out_dir: str | os.PathLike,
    num_threads: int | None = None,
    steps: int | None = None,
    change: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The validated orchard-tiny ``model`` config with ``init.seed = train.seed = seed``,
    ``train.steps = steps`` (when given) and then ``change`` merged in.

    Raises
    ------
    ConfigError
        ``change`` sets a seed (use ``seed``), or makes an invalid config (unknown key, wrong
        type): before anything is trained.
    """
    cfg = orchard_tiny_config(model, out_dir, num_threads=num_threads)
    over: dict[str, Any] = {"init": {"seed": seed}, "train": {"seed": seed}}
    if steps is not None:
        over["train"]["steps"] = steps
    change = change or {}
    if not isinstance(change, dict):
        raise ConfigError(f"a recipe change must be a JSON object, got {change!r}.")
    seeds = [f"{k}.seed" for k in ("init", "train") if "seed" in (change.get(k) or {})]
    if seeds:
        raise ConfigError(
            f"the change sets {', '.join(seeds)}; pass seeds with --seeds, not in the change."
        )
    return load_config(merge(merge(cfg, over), change), model=model)


def run_seed(
    model: str,
    seed: int,
    n_images: int | None = None,
    num_threads: int | None = None,
    steps: int | None = None,
    change: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train the orchard-tiny ``model`` recipe with ``init.seed = train.seed = seed`` and
    evaluate it on the held-out images; returns ``{"seed", "steps", "train_s", <METRICS>}``
    (and ``"change"`` when one is given). ``steps`` replaces the recipe's schedule (longer
    runs, short tests); ``change`` (a nested dict merged into the config, `variant_config`)
    tries a recipe change; leave both out to measure the recipe itself."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = variant_config(model, seed, Path(tmp) / "run", num_threads, steps, change)
        t0 = time.perf_counter()
        res = train(cfg)
        wall = time.perf_counter() - t0
        m = evaluate_checkpoint(model, res.final, n_images)
    return {
        **({"change": change} if change else {}),
        "seed": seed,
        "steps": cfg["train"]["steps"],
        "train_s": round(wall, 1),
        **{k: round(float(m[k]), 4) for k in METRICS[model]},
    }


class _FirstStepsDone(Exception):
    """Raised from the training callback once `first_losses` has its steps."""


def first_losses(model: str, n: int = 5) -> list[float]:
    """The total training loss of the orchard-tiny ``model`` recipe (seed 0, one torch thread)
    at each of its first ``n`` steps, on the recipe's own schedule: a fingerprint of the
    training numerics (data, initialisation, prompts, loss, optimiser).

    The recorded runs carry it next to each model's runs (``first_losses``), measured on the code
    that trained them. A code change that moves it trains the recipe to other numbers, so the
    recorded runs no longer describe today's recipe: retrain them (``--seeds 0 1 2`` and the
    ``--steps`` run) and record the new fingerprint with ``--first-losses``.

    It also tells machines apart: another CPU (`samgap_lib.provenance.device_name` names its
    model and the vector instructions torch's kernels use) can round sums in another order;
    the six decimals kept here then differ in their last places, and a run of thousands of
    steps ends at another draw of the recipe, as with another seed. Runs to compare must share
    it exactly (`merge_runs` checks)."""
    losses: list[float] = []

    def on_step(step: int, rec: dict[str, Any]) -> None:
        losses.append(round(float(rec["loss/loss"]), 6))
        if step >= n:
            raise _FirstStepsDone

    with tempfile.TemporaryDirectory() as tmp:
        cfg = variant_config(model, 0, Path(tmp) / "run", num_threads=1)
        cfg = merge(cfg, {"train": {"log_every": 1, "checkpoint_every": 0, "progress": False}})
        try:
            train(load_config(cfg, model=model), on_step=on_step)
        except _FirstStepsDone:
            pass
    return losses


def numerics_unlike_recorded(model: str, losses: list[float], machine: str) -> str | None:
    """Why runs of ``model`` trained here cannot be compared seed by seed with the ones
    the recorded runs (`recorded_runs`) hold, or None when they can: this machine's `first_losses` (``losses``)
    differ from the recorded ones, so its code or its CPU trains the recipe to other numbers."""
    recorded = recorded_runs()["models"][model].get("first_losses")
    if recorded is None or losses == recorded:
        return None
    return (
        f"{model}: {machine} trains the recipe to the first losses {losses}, not to the "
        f"{recorded} of the runs recorded in samgap_lib/results/seed_spread.json, so runs trained here are "
        "other draws of the recipe and cannot be compared with the recorded ones seed by seed "
        "(--merge refuses them). Train the recipe's own seeds here too (--seeds without --set) "
        "and compare or record this machine's runs together."
    )


def _change_key(change: dict[str, Any]) -> str:
    return json.dumps(change, sort_keys=True)


def merge_runs(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Join the outputs of several ``--model/--seeds`` runs into one dict shaped as
    `recorded_runs`:
    per model the recipe's ``runs``, the ``longer`` runs made with ``--steps``, the
    ``variants`` made with ``--set``, and the ``first_losses`` of the code that trained them
    (`first_losses`; parts recorded on code, or a machine, that trains to other numbers are
    refused)."""
    out: dict[str, Any] = {"models": {}}
    for p in parts:
        for model, block in p["models"].items():
            have = out["models"].setdefault(
                model,
                {
                    "recipe": block["recipe"],
                    "torch_threads": block["torch_threads"],
                    "first_losses": block.get("first_losses"),
                    "machine": block.get("machine"),
                    "runs": [],
                    "longer": [],
                    "variants": [],
                },
            )
            if have["recipe"] != block["recipe"] or have["torch_threads"] != block["torch_threads"]:
                raise ValueError(
                    f"{model}: the runs to merge used different recipes or thread counts; "
                    "rerun them on one recipe with one OMP_NUM_THREADS."
                )
            if have["first_losses"] != block.get("first_losses"):
                raise ValueError(
                    f"{model}: the runs to merge were trained by code, or on a machine, that "
                    f"trains the recipe to other numbers (first_losses {have['first_losses']} "
                    f"on {have['machine']} against {block.get('first_losses')} on "
                    f"{block.get('machine')}); retrain them on one machine with today's code."
                )
            for key in ("runs", "longer", "variants"):
                have[key] += block.get(key, [])

    def run_id(r: dict[str, Any]) -> tuple[str, int, int]:
        return _change_key(r.get("change", {})), r["steps"], r["seed"]

    for block in out["models"].values():
        for key in ("runs", "longer", "variants"):
            block[key].sort(key=run_id)
            runs = [run_id(r) for r in block[key]]
            if len(set(runs)) != len(runs):
                raise ValueError(f"a seed appears twice in the runs to merge: {runs}.")
    return out


def recipe_block(
    results: dict[str, Any], model: str, replaced: int | None = None
) -> dict[str, Any]:
    """The recorded runs of ``model``'s current recipe (``replaced=None``), or of the recipe it
    replaced ``replaced + 1`` changes ago (``results["models"][model]["replaced_recipes"]
    [replaced]``): a dict with ``recipe``, ``runs``, ``longer`` and ``variants``."""
    block = results["models"][model]
    if replaced is None:
        return block
    before = block.get("replaced_recipes", [])
    if not 0 <= replaced < len(before):
        raise ValueError(
            f"{model}: no replaced recipe {replaced}; {len(before)} are recorded "
            f"(replaced = 0..{len(before) - 1}, or None for the current recipe)."
        )
    return before[replaced]


def recipe_difference(recipe: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``recipe`` that ``other`` sets differently, as a nested dict of
    ``recipe``'s values (`describe_change` names them): how an earlier recipe differs from the
    current one. A setting only ``other`` names is None in ``recipe`` (left at its default)."""
    out: dict[str, Any] = {}
    for k in [*recipe, *(k for k in other if k not in recipe)]:
        v, w = recipe.get(k), other.get(k)
        if isinstance(v, dict) and isinstance(w, dict):
            sub = recipe_difference(v, w)
            if sub:
                out[k] = sub
        elif v != w:
            out[k] = v
    return out


def spread_table(
    results: dict[str, Any], model: str, replaced: int | None = None
) -> list[dict[str, Any]]:
    """One row per metric: each seed's value, then mean, min and max over the seeds (of the
    current recipe, or of an earlier one: `recipe_block`)."""
    runs = recipe_block(results, model, replaced)["runs"]
    rows = []
    for k in METRICS[model]:
        vals = np.array([r[k] for r in runs], float)
        row: dict[str, Any] = {"metric": k}
        row.update({f"seed {r['seed']}": r[k] for r in runs})
        ok = vals[np.isfinite(vals)]
        for name, stat in (("mean", np.mean), ("min", np.min), ("max", np.max)):
            row[name] = round(float(stat(ok)), 3) if len(ok) else float("nan")
        rows.append(row)
    return rows


def describe_change(change: dict[str, Any], prefix: str = "") -> str:
    """``{"optim": {"lr": 0.002}}`` -> ``"optim.lr = 0.002"`` (several keys joined by ``", "``;
    None is written as the configs write it, ``null``)."""
    parts = []
    for k, v in change.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            parts.append(describe_change(v, key + "."))
        else:
            parts.append(f"{key} = {'null' if v is None else v}")
    return ", ".join(parts)


def variants_table(
    results: dict[str, Any],
    model: str,
    metrics: list[str] | None = None,
    replaced: int | None = None,
) -> list[dict[str, Any]]:
    """One row per recipe change tried (``variants``), compared seed by seed with the recipe
    it changed (the current one, or an earlier one: `recipe_block`): for each metric the
    change's mean over its seeds, the recipe's mean over the same seeds, and the difference.
    Seeds the recipe was not run on cannot be compared and are refused. ``change`` names the
    change, ``set`` holds it as the nested dict given to ``--set``; ``became_recipe`` says
    whether the changed recipe is the current one."""
    block = recipe_block(results, model, replaced)
    recipe = {r["seed"]: r for r in block["runs"]}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in block.get("variants", []):
        groups.setdefault(_change_key(r["change"]), []).append(r)
    rows = []
    for runs in groups.values():
        seeds = [r["seed"] for r in runs]
        unpaired = [s for s in seeds if s not in recipe]
        if unpaired:
            raise ValueError(
                f"{model} variant {describe_change(runs[0]['change'])}: seeds {unpaired} have no "
                "recipe run to compare with; run the recipe on them too."
            )
        row: dict[str, Any] = {
            "change": describe_change(runs[0]["change"]),
            "set": runs[0]["change"],
            "seeds": ", ".join(map(str, seeds)),
            "steps": ", ".join(sorted({str(r["steps"]) for r in runs})),
            "became_recipe": _makes_recipe(results, model, block["recipe"], runs[0]["change"]),
        }
        for k in metrics or METRICS[model]:
            tried = float(np.mean([r[k] for r in runs]))
            base = float(np.mean([recipe[s][k] for s in seeds]))
            row[k] = round(tried, 3)
            row[f"{k} (recipe)"] = round(base, 3)
            row[f"{k} change"] = round(tried - base, 3)
        rows.append(row)
    return rows


def _makes_recipe(
    results: dict[str, Any], model: str, recipe: dict[str, Any], change: dict[str, Any]
) -> bool:
    """Whether ``recipe`` with ``change`` merged in is ``model``'s current recipe (compared as
    JSON, where a tuple and a list are one)."""
    current = results["models"][model]["recipe"]
    return json.loads(json.dumps(merge(recipe, change))) == json.loads(json.dumps(current))


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--set takes a JSON object: {e}") from None
    if not isinstance(value, dict) or not value:
        raise argparse.ArgumentTypeError(
            f'--set takes a non-empty JSON object such as \'{{"optim": {{"lr": 0.002}}}}\', '
            f"got {text!r}"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("sam2", "sam3"))  # sam2_video: samgap study video-seeds
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--images", type=int, default=None, help="held-out images (card default)")
    p.add_argument(
        "--steps", type=int, help="train this many steps instead (recorded as 'longer' runs)"
    )
    p.add_argument(
        "--set",
        type=_json_object,
        metavar="JSON",
        help="train the recipe with this change merged into its config (recorded as 'variants')",
    )
    p.add_argument("--merge", nargs="+", metavar="JSON", help="join earlier outputs instead")
    p.add_argument(
        "--record",
        action="store_true",
        help="with --merge: write the joined runs, with their provenance, as samgap's recorded "
        "runs (samgap_lib/results/seed_spread.json), keeping the recipes they replaced",
    )
    p.add_argument(
        "--first-losses",
        action="store_true",
        help="print the recipe's loss at its first 5 steps (the recorded first_losses) and stop",
    )
    p.add_argument("--out", default="seed_spread.json")
    args = p.parse_args(argv)
    if args.first_losses:
        if not args.model:
            p.error("--first-losses needs --model")
        print(json.dumps(first_losses(args.model)))
        return 0
    if args.record and not args.merge:
        p.error("--record needs --merge: record the joined outputs of finished runs")
    if args.merge:
        res = merge_runs([read_json(f) for f in args.merge])
        if args.record:
            old = recorded_runs()
            for model, block in res["models"].items():
                block["replaced_recipes"] = old["models"].get(model, {}).get("replaced_recipes", [])
            machines = sorted({str(b.get("machine")) for b in res["models"].values()})
            res = {
                "provenance": {
                    "what": old["provenance"]["what"],
                    "command": "python -m samgap_lib.studies.seed_spread --merge "
                    + " ".join(Path(f).name for f in args.merge)
                    + " --record",
                    "machine": "; ".join(machines),
                    "recorded_at": {
                        "commit": git_commit(),
                        "date": time.strftime("%Y-%m-%d", time.gmtime()),
                    },
                    "config": old["provenance"]["config"],
                },
                **{k: v for k, v in old.items() if k not in ("provenance", "models")},
                "models": res["models"],
            }
            write_json(res, recorded_result_path("seed_spread"), indent=1)
            print(f"recorded {recorded_result_path('seed_spread')}")
            return 0
    else:
        if not args.model:
            p.error("--model is required unless --merge is given")
        import torch

        threads = int(os.environ.get("OMP_NUM_THREADS", "0")) or None
        change = args.set
        if change is not None and args.steps is not None:
            change = merge(change, {"train": {"steps": args.steps}})
        steps = None if change is not None else args.steps
        with tempfile.TemporaryDirectory() as tmp:  # refuse a bad change before any training
            try:
                variant_config(args.model, args.seeds[0], Path(tmp), threads, steps, change)
            except ConfigError as e:
                p.error(str(e))
        losses = first_losses(args.model)  # the code's fingerprint, recorded with the runs
        machine = device_name("cpu")
        unlike = numerics_unlike_recorded(args.model, losses, machine)
        if unlike:
            print(f"warning: {unlike}", file=sys.stderr, flush=True)
        runs = []
        for s in args.seeds:
            runs.append(run_seed(args.model, s, args.images, threads, steps, change))
            print(runs[-1], flush=True)
        kind = "variants" if change is not None else "longer" if args.steps else "runs"
        res = {
            "models": {
                args.model: {
                    "recipe": ORCHARD_TINY[args.model],
                    "torch_threads": threads or torch.get_num_threads(),
                    "first_losses": losses,
                    "machine": machine,
                    kind: runs,
                }
            }
        }
    res["command"] = "python -m samgap_lib.studies.seed_spread " + " ".join(argv or sys.argv[1:])
    write_json(res, args.out, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
