"""`make paper`: rerun every chapter under the ``paper`` profile with papermill.

Each chapter's committed notebook runs with ``profile="paper"``, the MinneApple root, the device,
and optionally other checkpoints; the executed notebooks go to ``<results>/paper/notebooks/`` and
the experiments they run record their results under ``<results>/paper/<experiment>/``, which the
smoke book then shows as its live appendix.

    python -m samgap_lib.paper --data-root data/minneapple --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["run_paper", "main"]

REPO = Path(__file__).resolve().parent.parent


def run_paper(
    data_root: str | Path,
    device: str = "auto",
    results_root: str | Path = "results",
    chapters: list[str] | None = None,
    sam2_checkpoint: str | None = None,
    sam3_checkpoint: str | None = None,
    extra: dict | None = None,
    chapters_dir: str | Path | None = None,
) -> list[Path]:
    """Execute the chapters (all ``NN_*.ipynb``, or those whose stem starts with an entry of
    ``chapters``) under the paper profile; returns the executed notebooks' paths."""
    from .data.minneapple import load_minneapple
    from .execute import execute_page

    load_minneapple(data_root, "train")  # fail now, with the download hint, not inside a notebook
    src = Path(chapters_dir) if chapters_dir else REPO / "chapters"
    results_root = Path(results_root).resolve()
    out_dir = results_root / "paper" / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(src.glob("[0-9][0-9]_*.ipynb"))
    if chapters:
        notebooks = [nb for nb in notebooks if any(nb.stem.startswith(c) for c in chapters)]
    if not notebooks:
        raise FileNotFoundError(f"no chapter notebooks in {src} match {chapters}.")
    params = {
        "profile": "paper",
        "data_root": str(Path(data_root).resolve()),
        "device": device,
        "results_root": str(results_root),
    }
    if sam2_checkpoint:
        params["sam2_checkpoint"] = sam2_checkpoint
    if sam3_checkpoint:
        params["sam3_checkpoint"] = sam3_checkpoint
    params.update(extra or {})
    done = []
    for nb in notebooks:
        start = time.time()
        out = execute_page(nb, out_dir / nb.name, params)
        print(f"{nb.stem}: {time.time() - start:.0f} s -> {out}", file=sys.stderr)
        done.append(out)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m samgap_lib.paper", description=__doc__.splitlines()[0]
    )
    p.add_argument("--data-root", required=True, help="MinneApple folder holding detection/")
    p.add_argument("--device", default="auto")
    p.add_argument("--results", default=str(REPO / "results"))
    p.add_argument("--chapters", nargs="*", help="chapter prefixes, e.g. 01 05 (default: all)")
    p.add_argument("--sam2-checkpoint")
    p.add_argument("--sam3-checkpoint")
    a = p.parse_args(argv)
    try:
        run_paper(
            a.data_root, a.device, a.results, a.chapters, a.sam2_checkpoint, a.sam3_checkpoint
        )
    except FileNotFoundError as e:
        print(f"make paper: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
