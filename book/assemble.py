"""Assemble the HTML book's source tree from the executed pages (`make book`).

The chapters and the pages with code are executed once by papermill
(``python -m samgap_lib.execute --out _build/executed``); Jupyter Book then builds from a tree
that holds those executed notebooks in the pages' places, with ``execute_notebooks: off``, so no
page runs a third time:

    _build/book/_config.yml, _toc.yml, book/{*.md, references.bib, _ext, static, vendor}
    _build/book/book/static/explorer/    the in-browser explorer (samgap_lib.explorer)
    _build/book/chapters/NN_*.ipynb      executed, from _build/executed/
    _build/book/book/<page>.ipynb        executed pages of book/ (in place of their .md)

The cell papermill injects with the run's parameters is removed from the page (``remove-cell``);
the executed notebook keeps it.

``--student`` assembles the student edition: every solution is left out (the cells from a
``{solution-start}`` to its ``{solution-end}``, and ``{solution}`` directives), and the book is
configured with ``hide_solutions: true``. Exercises stay, numbered as in the reader's book.

    python book/assemble.py [--executed _build/executed] [--out _build/book] [--student]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent


# directive blocks in a markdown cell: the fence (3 or more backticks or colons), the directive,
# and everything up to the matching closing fence
def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"^(?P<f>`{{3,}}|:{{3,}})\{{{name}\}}.*?^(?P=f)[ \t]*$\n?", re.M | re.S)


_SOLUTION, _START, _END = _block("solution"), _block("solution-start"), _block("solution-end")


def _cut_gated(text: str, inside: bool) -> tuple[str, bool]:
    """``text`` with the parts inside gated solutions removed; ``inside``: whether the text
    starts inside one. Returns the kept text and whether it ends inside one."""
    kept = []
    while text:
        if inside:
            end = _END.search(text)
            if end is None:
                return "".join(kept), True
            text, inside = text[end.end() :], False
        else:
            start = _START.search(text)
            if start is None:
                kept.append(text)
                break
            kept.append(text[: start.start()])
            text, inside = text[start.end() :], True
    return "".join(kept), inside


def without_solutions(cells: list) -> list:
    """The cells of a page with its solutions left out: everything from a ``{solution-start}``
    block to its ``{solution-end}`` block (code cells between them included) and every
    ``{solution}`` directive. A markdown cell left empty is dropped."""
    out, inside = [], False
    for cell in cells:
        if cell.cell_type != "markdown":
            if not inside:
                out.append(cell)
            continue
        text, inside = _cut_gated(cell.source, inside)
        text = _SOLUTION.sub("", text)
        if text.strip():
            cell.source = text
            out.append(cell)
    if inside:
        raise ValueError("a {solution-start} without its {solution-end}.")
    return out


def _executed_page(src: Path, dst: Path, student: bool = False) -> None:
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    if student:
        nb.cells = without_solutions(nb.cells)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)


def _markdown_page(src: Path, dst: Path, student: bool) -> None:
    text = src.read_text()
    if student:
        text, inside = _cut_gated(text, False)
        if inside:
            raise ValueError(f"{src}: a {{solution-start}} without its {{solution-end}}.")
        text = _SOLUTION.sub("", text)
    dst.write_text(text)


def assemble(
    executed: Path,
    out: Path,
    root: Path = ROOT,
    student: bool = False,
    explorer: Path | None = None,
) -> Path:
    """Write the book's source tree into ``out`` (replaced) and return it. Every page the table
    of contents lists with code cells must have its executed notebook in ``executed``. With
    ``student`` the solutions are left out (see the module docstring); ``explorer``, an
    `ensure_explorer` folder, goes to ``_static/explorer`` with the page scripts."""
    sys.path.insert(0, str(root))
    from samgap_lib.execute import book_pages
    from samgap_lib.explorer import install_static

    pages = book_pages(root)
    missing = [p.stem for p in pages if not (executed / f"{p.stem}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(
            f"no executed notebook in {executed} for {missing}: run "
            f"`python -m samgap_lib.execute --out {executed}` first."
        )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(root / "_toc.yml", out / "_toc.yml")
    config = yaml.safe_load((root / "_config.yml").read_text())
    if student:
        config["title"] += " (student edition)"
        config["sphinx"]["config"]["hide_solutions"] = True
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    executable = {p.resolve() for p in pages}
    for f in (root / "book").iterdir():
        if f.name in ("vendor", "__pycache__") or f.name == Path(__file__).name:
            continue
        if f.is_dir():
            shutil.copytree(f, out / "book" / f.name)
        elif f.resolve() not in executable:
            (out / "book").mkdir(exist_ok=True)
            if f.suffix == ".md":
                _markdown_page(f, out / "book" / f.name, student)
            else:
                shutil.copy2(f, out / "book" / f.name)
    vendor = root / "book" / "vendor"
    if vendor.is_dir():  # MathJax, the widget manager, onnxruntime-web: served as they are
        (out / "book" / "vendor").symlink_to(vendor.resolve(), target_is_directory=True)
    if explorer is not None:  # _static/explorer: the graphs, images, manifest and scripts
        install_static(explorer, out / "book" / "static" / "explorer")
    for page in pages:
        dst = out / page.parent.name / f"{page.stem}.ipynb"
        _executed_page(executed / f"{page.stem}.ipynb", dst, student)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--executed", type=Path, default=ROOT / "_build" / "executed")
    p.add_argument("--out", type=Path, default=ROOT / "_build" / "book")
    p.add_argument("--student", action="store_true", help="leave every solution out")
    p.add_argument(
        "--no-explorer", action="store_true", help="leave the in-browser explorer's files out"
    )
    a = p.parse_args(argv)
    try:
        explorer = None
        if not a.no_explorer:
            from samgap_lib.explorer import ensure_explorer

            explorer = ensure_explorer()  # cached with the orchard-tiny checkpoints
        out = assemble(a.executed, a.out, student=a.student, explorer=explorer)
        print(f"book source: {out}")
    except FileNotFoundError as e:
        print(f"assemble: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
