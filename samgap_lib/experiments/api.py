"""`run_experiment`: one call from a configuration to a results folder (what `samgap run` does)."""

from __future__ import annotations

from pathlib import Path

from ..data import describe_data, profile_samples, usable_concepts
from ..evaluation import effort_equivalence
from ..io import read_json
from ..prompts.concepts import ORCHARD_ALL
from .config import EXPERIMENTS, checkpoint_fingerprint, load_config, resolve_checkpoint
from .runs import record_clicks, record_concepts, record_hybrid
from .store import ResultStore, read_records

__all__ = [
    "EXPERIMENTS",
    "run_experiment",
    "load_samples",
    "load_concepts",
    "load_models",
    "results_dir",
    "read_results",
]


def load_samples(cfg: dict):
    d = cfg["data"]
    return profile_samples(
        cfg["profile"],
        d["n_images"],
        seed=cfg["seed"],
        data_root=d["data_root"],
        size=tuple(d["size"]),
        split=d["split"],
    )


def load_concepts(cfg: dict, samples):
    phrases = cfg["concepts"]["phrases"]
    return usable_concepts(samples, ORCHARD_ALL if phrases == "orchard" else phrases)


def load_models(
    cfg: dict, which: tuple[str, ...], fingerprints: dict | None = None
) -> tuple[dict, dict]:
    """Load the roles named in ``which`` (``sam2``, ``sam3-concept``, ``sam3-tracker``);
    returns ``(models, provenance)`` with each checkpoint's source and hash.
    ``fingerprints`` (config key -> `checkpoint_fingerprint`) saves hashing the weights again."""
    from ..models import load_sam2, load_sam3

    models, prov = {}, {}
    for name in which:
        family = name.split("-")[0]
        key = "sam3_tracker" if name == "sam3-tracker" else family
        spec = cfg["models"][key]
        source = resolve_checkpoint(spec["source"], key)
        if family == "sam2":
            models[name] = load_sam2(source, backend=spec["backend"], device=cfg["device"])
        else:
            role = name.split("-", 1)[1]
            models[name] = load_sam3(
                source, backend=spec["backend"], device=cfg["device"], role=role
            )
        fp = (fingerprints or {}).get(key) or checkpoint_fingerprint(source)
        prov[name] = {
            **fp,
            "requested": spec["source"],
            "backend": spec["backend"],
        }
    return models, prov


# the checkpoints (keys of the config's ``models``) each experiment reads
MODELS_OF = {
    "sam2-baseline": ("sam2",),
    "sam3-tracker": ("sam3_tracker",),
    "sam3-concept": ("sam3",),
    "hybrid": ("sam3", "sam2"),
    "compare": ("sam2", "sam3"),
}


def results_dir(cfg: dict, name: str) -> Path:
    return Path(cfg["output"]) / cfg["profile"] / name


def read_results(root: str | Path) -> dict | None:
    """``{"summary", "provenance", "config"}`` of a finished run folder, or None if unfinished."""
    root = Path(root)
    if not (root / "summary.json").exists():
        return None
    return {k: read_json(root / f"{k}.json") for k in ("summary", "provenance", "config")}


def run_experiment(
    experiment: str,
    config: dict | str | None = None,
    name: str | None = None,
    restart: bool | str = False,
    overrides: list[str] | None = None,
) -> dict:
    """Run one experiment and return its summary; results go to ``results/<profile>/<name>/``.

    ``config`` is a loaded configuration, a YAML path, or None (profile defaults); ``restart``
    as in `ResultStore` (``"if-changed"`` reuses results only of the same configuration).
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {experiment!r}.")
    cfg = config if isinstance(config, dict) else load_config(config, overrides=overrides)
    name = name or experiment
    samples = load_samples(cfg)
    concepts = load_concepts(cfg, samples)
    data = describe_data(
        cfg["profile"],
        cfg["data"]["n_images"],
        cfg["seed"],
        cfg["data"]["data_root"],
        tuple(cfg["data"]["size"]),
    )
    # the checkpoints' identity is part of the run's: retrained or replaced weights at the same
    # source (orchard-tiny after a code change, an overwritten folder) never reuse old records
    weights = {
        key: checkpoint_fingerprint(resolve_checkpoint(cfg["models"][key]["source"], key))
        for key in MODELS_OF[experiment]
    }
    # where the results live is not part of what they are: a moved checkout reuses its records
    identity = {k: v for k, v in cfg.items() if k != "output"}
    store = ResultStore(
        results_dir(cfg, name),
        {"experiment": experiment, **identity, "checkpoints": weights},
        restart=restart,
    )
    finished = read_results(store.root)
    if (
        finished is not None
        and experiment != "compare"
        and not store.todo(str(s.image_id) for s in samples)
    ):
        return finished["summary"]  # complete: nothing to recompute, no model to load
    mc = cfg["clicks"]["max_clicks"]
    if experiment == "sam2-baseline":
        models, prov = load_models(cfg, ("sam2",), weights)
        summary = record_clicks(
            samples, models["sam2"], store, mc, cfg["clicks"]["refine"], desc=experiment
        )
    elif experiment == "sam3-tracker":
        models, prov = load_models(cfg, ("sam3-tracker",), weights)
        summary = record_clicks(
            samples, models["sam3-tracker"], store, mc, cfg["clicks"]["refine"], desc=experiment
        )
    elif experiment == "sam3-concept":
        models, prov = load_models(cfg, ("sam3-concept",), weights)
        models["sam3-concept"].threshold = cfg["concepts"]["threshold"]
        summary = record_concepts(
            samples,
            models["sam3-concept"],
            concepts,
            store,
            cfg["concepts"]["n_exemplars"],
            desc=experiment,
        )
    elif experiment == "hybrid":
        models, prov = load_models(cfg, ("sam3-concept", "sam2"), weights)
        models["sam3-concept"].threshold = cfg["concepts"]["threshold"]
        summary = record_hybrid(
            samples, models["sam3-concept"], models["sam2"], concepts, store, desc=experiment
        )
    else:  # compare: reuse (or produce) the two baselines, then the effort analysis
        sam2 = run_experiment("sam2-baseline", cfg, restart=restart)
        sam3 = run_experiment("sam3-concept", cfg, restart=restart)
        clicks = read_records(results_dir(cfg, "sam2-baseline"))
        concept_recs = read_records(results_dir(cfg, "sam3-concept"))
        category = next(
            c for c in concepts if not c.attributes and any(s.select(c) for s in samples)
        )
        rows = effort_equivalence(samples, clicks, concept_recs, category)
        for r in rows:
            if not store.done(str(r["image_id"])):
                store.add(str(r["image_id"]), r)
        prov = {}
        for n in ("sam2-baseline", "sam3-concept"):
            prov.update(read_json(results_dir(cfg, n) / "provenance.json")["checkpoints"])
        summary = {
            "sam2-baseline": sam2,
            "sam3-concept": sam3,
            "phrase": category.text,
            "effort": _effort_summary(rows),
        }
    return store.finish(
        summary, {"checkpoints": prov, "data": data, "experiment": experiment}, device=cfg["device"]
    )


def _effort_summary(rows: list[dict]) -> dict:
    import numpy as np

    reached = [r for r in rows if r["k_star"] is not None]
    return {
        "images": len(rows),
        "images_where_sam2_matches": len(reached),
        "median_k_star": float(np.median([r["k_star"] for r in reached])) if reached else None,
        "median_clicks_to_match": float(np.median([r["clicks_to_match"] for r in reached]))
        if reached
        else None,
    }
