"""What the chapters share: a configuration from their parameters cell, and the live appendix.

The live appendix: a chapter run under the ``smoke`` profile also looks for results recorded by a
real ``paper`` run (``results/paper/<experiment>/``) and shows them beside its own, with their
provenance; when there are none it says how to produce them. Nothing is shown that a run did not
write.
"""

from __future__ import annotations

import os
from pathlib import Path

from .api import read_results
from .config import load_config

__all__ = [
    "chapter_config",
    "checkout_root",
    "paper_results",
    "paper_results_note",
    "resolve_results_root",
    "results_root_note",
]


def checkout_root(start: str | Path | None = None) -> Path | None:
    """The samgap checkout holding ``start`` (default: the working folder), or None: the first
    folder up from it with ``pyproject.toml``, ``samgap_lib/`` and ``chapters/``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / n).exists() for n in ("pyproject.toml", "samgap_lib", "chapters")):
            return folder
    return None


def resolve_results_root(results_root: str | Path | None = None) -> Path:
    """Where a chapter records its runs (``<root>/<profile>/<experiment>/``), as an absolute path.

    ``results_root`` as given (a relative path is taken from the working folder); when None,
    ``$SAMGAP_RESULTS``, else the ``results/`` folder of the samgap checkout the chapter runs in
    (chapters/ and book/ pages alike), else ``results/`` in the working folder: in Colab,
    ``/content/results``, beside the notebook in the file browser.
    """
    if results_root is None:
        env = os.environ.get("SAMGAP_RESULTS")
        if env:
            results_root = env
        else:
            root = checkout_root()
            results_root = (root / "results") if root else "results"
    return Path(results_root).expanduser().resolve()


def _shown(path: Path) -> str:
    """``path`` as a reader should see it: relative to the checkout when inside one."""
    root = checkout_root()
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root))
    return str(path)


def results_root_note(results_root: str | Path | None = None) -> str:
    """Markdown: where this page's runs are recorded (inside a checkout, relative to it)."""
    path = resolve_results_root(results_root)
    where = "the checkout's " if checkout_root() and not Path(_shown(path)).is_absolute() else ""
    return f"Runs are recorded in {where}`{_shown(path)}/`."


def chapter_config(
    profile: str,
    seed: int,
    data_root,
    device: str,
    n_images: int,
    results_root: str | Path | None = None,
    sam2_checkpoint: str | None = None,
    sam3_checkpoint: str | None = None,
    **overrides,
) -> dict:
    """A run configuration from a chapter's parameters.

    ``sam2_checkpoint`` / ``sam3_checkpoint`` replace the profile's default sources when given
    (a hub id, a folder, ``"orchard-tiny"`` or ``"tiny-random"``); ``overrides`` are dotted
    keys with ``__`` for dots (``clicks__max_clicks=5``). ``results_root``: see
    `resolve_results_root`.
    """
    items = [
        f"data.n_images={n_images}",
        f"seed={seed}",
        f"device={device}",
        f"output={resolve_results_root(results_root)}",
    ]
    if data_root is not None:
        items.append(f"data.data_root={data_root}")
    if sam2_checkpoint:
        items.append(f"models.sam2.source={sam2_checkpoint}")
    if sam3_checkpoint:
        items += [f"models.sam3.source={sam3_checkpoint}"]
        if profile == "paper":
            items.append(f"models.sam3_tracker.source={sam3_checkpoint}")
    items += [f"{k.replace('__', '.')}={v}" for k, v in overrides.items()]
    return load_config(profile=profile, overrides=items)


def paper_results(results_root: str | Path | None, experiment: str) -> dict | None:
    """The recorded ``paper``-profile results of an experiment, or None."""
    return read_results(resolve_results_root(results_root) / "paper" / experiment)


def paper_results_note(results_root: str | Path | None, experiment: str, chapter: str) -> str:
    """Markdown: the provenance of recorded paper results, or how to produce them."""
    res = paper_results(results_root, experiment)
    if res is None:
        return (
            "**Paper profile:** no recorded results in "
            f"`{_shown(resolve_results_root(results_root) / 'paper' / experiment)}`. "
            f"Produce them on a GPU with `make paper DATA_ROOT=/path/to/minneapple` (or run "
            f'`chapters/{chapter}.ipynb` in Colab with `profile = "paper"`); this section then '
            "shows them beside the smoke run."
        )
    p = res["provenance"]
    ckpts = ", ".join(
        f"{k}: {v.get('requested', v.get('source'))}" for k, v in p.get("checkpoints", {}).items()
    )
    return (
        f"**Paper profile (recorded run):** {p.get('data', '?')}; checkpoints {ckpts}; device "
        f"{p.get('device_name', p.get('device'))}; samgap commit {str(p.get('git_commit'))[:10]}, "
        f"{p.get('time_utc', '?')}."
    )
