"""The explorer's place on a page: the HTML a chapter cell displays.

`explorer_block` returns a ``<div class="samgap-explorer">`` holding a static figure: the
explorer's first image with SAM2's answer to one click and SAM3's instances of one phrase, as
the PyTorch models gave them when the explorer was exported (``expected.json``). In the built
book, ``explorer.js`` (loaded on every page from ``_static/explorer/``) finds the div, runs the
exported graphs in the reader's browser and puts the live panels under the figure, which it
then hides; where it cannot (no WebAssembly, a page opened from ``file://``, Jupyter or Colab),
the figure stays with a line saying why. `install_static` puts the files the script needs into
a book's static folder.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .reference import decode_rle

__all__ = ["STATIC", "explorer_block", "fallback_png", "install_static"]

STATIC = Path(__file__).resolve().parent / "static"
_COLORS = np.array([[230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66]], np.float32)


def _overlay(rgb: np.ndarray, masks: list[np.ndarray], alpha: float = 0.5) -> np.ndarray:
    out = rgb.astype(np.float32)
    for i, m in enumerate(masks):
        c = _COLORS[i % len(_COLORS)]
        out[m] = (1 - alpha) * out[m] + alpha * c
    return out.round().astype(np.uint8)


def fallback_png(folder: str | os.PathLike, scale: int = 2) -> bytes:
    """PNG of the static figure: SAM2's answer to the first click of ``expected.json`` (the
    click in green) beside SAM3's instances of its first phrase, on the explorer's first image."""
    from PIL import Image

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    expected = json.loads((folder / manifest["expected"]).read_text())
    entry = manifest["images"][expected["image"]]
    rgb = np.asarray(Image.open(folder / entry["file"]).convert("RGB"))
    click = expected["sam2"]["first_click"]
    left = _overlay(rgb, [decode_rle(click["mask"])])
    x, y = (int(v) for v in click["points"][0])
    left[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = (0, 224, 0)
    phrase = next(iter(expected["sam3"]))
    right = _overlay(rgb, [decode_rle(r) for r in expected["sam3"][phrase]["masks"]])
    gap = np.full((rgb.shape[0], 8, 3), 255, np.uint8)
    both = np.concatenate([left, gap, right], axis=1)
    img = Image.fromarray(both).resize(
        (both.shape[1] * scale, both.shape[0] * scale), Image.Resampling.NEAREST
    )
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def explorer_block(folder: str | os.PathLike) -> str:
    """The HTML a page displays where the explorer goes (see the module docstring)."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    expected = json.loads((folder / manifest["expected"]).read_text())
    click = expected["sam2"]["first_click"]
    phrase = next(iter(expected["sam3"]))
    found = expected["sam3"][phrase]
    png = base64.b64encode(fallback_png(folder)).decode("ascii")
    caption = (
        f"Left: orchard-tiny SAM2's answer to one click (green) on an apple, predicted IoU "
        f"{click['iou_pred']:.2f}, IoU {click['iou_vs_gt']:.2f} with the apple. Right: orchard-tiny "
        f"SAM3's {found['count']} instances of \u201c{phrase}\u201d (presence "
        f"{found['presence']:.2f}). Computed by the PyTorch models when the book was built."
    )
    return (
        '<div class="samgap-explorer">'
        f'<figure class="samgap-explorer-fallback"><img alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{png}" style="max-width:100%;image-rendering:pixelated">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        '<p class="samgap-explorer-status">In the HTML book this figure is live: the two models '
        "run in your browser.</p></div>"
    )


def install_static(folder: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Fill ``dest`` (a book's ``_static/explorer``) with the explorer's graphs, images and
    manifest from ``folder`` (linked, not copied: Sphinx copies them into the HTML) and the
    page's scripts from `STATIC`."""
    folder, dest = Path(folder), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if not f.name.startswith("."):
            (dest / f.name).symlink_to(f.resolve(), target_is_directory=f.is_dir())
    for f in STATIC.iterdir():
        shutil.copy2(f, dest / f.name)
    return dest
