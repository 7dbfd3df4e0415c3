"""Execute the book's pages with papermill, once: what `make book`, the notebook tests and
`make paper` run.

A page is a chapter's paired notebook (``chapters/NN_*.ipynb``) or a MyST-markdown page with code
cells (``book/*.md`` with jupytext front matter). `execute_pages` runs each with a profile's
parameters into an executed ``.ipynb``; the HTML book is assembled from those
(``book/assemble.py``) and Jupyter Book does not execute them again. With ``if_stale`` a page is
run only when its executed notebook is missing or older than the page, the library or the
recorded results it reads.

    python -m samgap_lib.execute --out _build/executed                # every page, smoke
    python -m samgap_lib.execute --out _build/executed --pages 01 04   # some of them
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["REPO", "book_pages", "execute_page", "execute_pages", "main"]

REPO = Path(__file__).resolve().parent.parent
SMOKE = {"profile": "smoke", "seed": 0, "device": "cpu"}


def book_pages(root: str | Path = REPO) -> list[Path]:
    """The executable pages of the book at ``root``: the chapters' notebooks, then the pages of
    ``book/`` that hold code cells."""
    root = Path(root)
    chapters = sorted((root / "chapters").glob("[0-9][0-9]_*.ipynb"))
    pages = [p for p in sorted((root / "book").glob("*.md")) if "```{code-cell}" in p.read_text()]
    return chapters + pages


def _newest_mtime(paths: Sequence[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def _inputs_mtime() -> float:
    """The newest modification time of what an executed page depends on besides its source:
    the library's code, configs and recorded results."""
    pkg = Path(__file__).resolve().parent
    files = [f for f in pkg.rglob("*") if f.suffix in (".py", ".yml", ".json")]
    return _newest_mtime(files)


def execute_page(
    page: str | Path, out: str | Path, parameters: Mapping[str, Any] | None = None
) -> Path:
    """Execute one page with papermill into ``out`` (an ``.ipynb``), in the page's folder.

    ``parameters`` are injected when the page declares them in its ``parameters`` cell; others
    are left out. A MyST-markdown page is converted to a notebook first (papermill reads only
    ``.ipynb``). Raises papermill's ``PapermillExecutionError`` when a cell fails.
    """
    import jupytext
    import nbformat
    import papermill as pm

    page, out = Path(page), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = page
        if page.suffix == ".md":
            src = Path(tmp) / f"{page.stem}.ipynb"
            nbformat.write(jupytext.read(page), src)
        declared = pm.inspect_notebook(str(src))
        use = {k: v for k, v in (parameters or {}).items() if k in declared}
        pm.execute_notebook(
            str(src),
            str(out),
            parameters=use,
            cwd=str(page.parent),
            kernel_name="python3",
            progress_bar=False,
        )
    return out


def execute_pages(
    out_dir: str | Path,
    parameters: Mapping[str, Any] | None = None,
    pages: Sequence[str] | None = None,
    if_stale: bool = False,
    root: str | Path = REPO,
) -> list[Path]:
    """Execute the book's pages (`book_pages`; those whose name starts with an entry of
    ``pages`` when given) into ``out_dir/<stem>.ipynb``; returns the executed notebooks.

    ``parameters`` default to the smoke profile's. With ``if_stale`` a page whose executed
    notebook is newer than the page and than the library's code, configs and recorded results
    is kept as it is.
    """
    params = dict(SMOKE if parameters is None else parameters)
    selected = [
        p for p in book_pages(root) if not pages or any(p.stem.startswith(x) for x in pages)
    ]
    if not selected:
        raise FileNotFoundError(f"no page of the book at {root} matches {list(pages or [])}.")
    out_dir = Path(out_dir)
    inputs = _inputs_mtime() if if_stale else 0.0
    done = []
    for page in selected:
        out = out_dir / f"{page.stem}.ipynb"
        if if_stale and out.exists() and out.stat().st_mtime > max(page.stat().st_mtime, inputs):
            print(f"{page.stem}: up to date ({out})", file=sys.stderr)
            done.append(out)
            continue
        start = time.time()
        execute_page(page, out, params)
        print(f"{page.stem}: executed in {time.time() - start:.0f} s -> {out}", file=sys.stderr)
        done.append(out)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m samgap_lib.execute", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", required=True, help="folder for the executed notebooks")
    p.add_argument("--pages", nargs="*", help="page name prefixes, e.g. 01 04 (default: all)")
    p.add_argument(
        "--if-stale",
        action="store_true",
        help="skip a page whose executed notebook is newer than the page and the library",
    )
    a = p.parse_args(argv)
    try:
        execute_pages(a.out, pages=a.pages, if_stale=a.if_stale)
    except FileNotFoundError as e:
        print(f"samgap execute: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
