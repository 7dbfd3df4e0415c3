"""The chapters: paired .md/.ipynb in sync, parameters cells, Colab links; execution with papermill.

Execution (marker ``notebooks``) runs each page of the book that holds code (the chapters'
committed .ipynb, and pages of book/ with code cells) with papermill under the smoke profile into
``_build/executed/`` (`samgap_lib.execute`); ``make test`` then validates those executed
notebooks with nbval (``pytest --nbval-lax``), which re-runs them and compares the cells marked
``# NBVAL_CHECK_OUTPUT``, and builds the book from them without executing them again.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from samgap_lib.execute import SMOKE, book_pages, execute_page

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))
EXECUTED = ROOT / "_build" / "executed"
REQUIRED_PARAMETERS = ("profile", "seed", "data_root", "device")


def _cells(nb):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_there_are_chapters():
    assert CHAPTERS, "no chapters/NN_*.md found"


def test_toc_lists_every_chapter_and_page_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        assert (ROOT / f"{f}.md").exists() or (ROOT / f"{f}.ipynb").exists(), (
            f"_toc.yml lists missing page {f}"
        )
    for md in CHAPTERS:
        assert f"chapters/{md.stem}" in files, f"{md.name} is not in _toc.yml"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_pair_in_sync(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run `jupytext --sync {md.relative_to(ROOT)}`"
    from_md = jupytext.read(md)
    committed = nbformat.read(ipynb, as_version=4)
    assert _cells(from_md) == _cells(committed), (
        f"{md.name} and {ipynb.name} differ: run `jupytext --sync {md.relative_to(ROOT)}` and commit both"
    )
    assert all(not c.get("outputs") for c in committed.cells if c.cell_type == "code"), (
        f"{ipynb.name} has outputs committed; clear them (jupytext --sync writes none)"
    )


EXERCISE = re.compile(r"^(`{3,}|:{3,})\{exercise\}[^\n]*\n:label: (\S+)", re.M)
SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution(?:-start)?\} (\S+)", re.M)


def assert_course_apparatus(text: str, name: str) -> None:
    """Learning objectives at the start, key takeaways at the end, and every exercise
    (sphinx-exercise, labelled) with its solution."""
    assert ":::{admonition} Learning objectives" in text, f"{name}: no learning objectives"
    assert ":::{admonition} Key takeaways" in text, f"{name}: no key takeaways"
    assert (
        text.index("Learning objectives") < text.index("Key takeaways") < text.index("## Exercises")
    )
    exercises = [m.group(2) for m in EXERCISE.finditer(text)]
    solutions = [m.group(2) for m in SOLUTION.finditer(text)]
    assert exercises, f"{name}: no {{exercise}} directive"
    assert sorted(exercises) == sorted(solutions), (
        f"{name}: exercises {exercises}, solutions {solutions}"
    )
    assert text.count("{solution-start}") == text.count("{solution-end}"), name


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_structure(md):
    nb = jupytext.read(md)
    assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "myst", (
        "front matter must say format_name: myst"
    )
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged `parameters`"
    names = set(re.findall(r"^(\w+)\s*=", params[0].source, flags=re.M))
    missing = set(REQUIRED_PARAMETERS) - names
    assert not missing, f"parameters cell lacks {sorted(missing)}"
    assert re.search(r'^profile = "smoke"', params[0].source, flags=re.M), (
        "the default profile must be smoke"
    )
    text = md.read_text()
    colab = (
        f"https://colab.research.google.com/github/samgap/samgap/blob/main/chapters/{md.stem}.ipynb"
    )
    assert colab in text, f"{md.name} lacks its Open in Colab link {colab}"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "google.colab" in first_code.source and "pip install" in first_code.source, (
        "the first code cell must install samgap_lib when run in Colab"
    )
    assert "profile_banner(" in text, "each chapter states which profile produced its outputs"
    assert "## Exercises" in text, "each chapter ends with exercises"
    assert_course_apparatus(text, md.name)
    assert colab in (ROOT / "README.md").read_text(), f"README.md lacks the Colab link of {md.name}"


@pytest.mark.notebooks
@pytest.mark.parametrize("page", book_pages(ROOT), ids=lambda p: p.stem)
def test_page_executes_with_papermill(page):
    out = execute_page(page, EXECUTED / f"{page.stem}.ipynb", SMOKE)
    nb = nbformat.read(out, as_version=4)
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    if page.parent.name == "chapters":
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)


def test_the_book_is_built_from_the_executed_pages_without_running_them(tmp_path):
    """Jupyter Book executes nothing (`execute_notebooks: off`); the tree it builds holds each
    executed page in the page's place (book/assemble.py), with papermill's parameters cell
    removed from the page."""
    import importlib.util

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    executed = tmp_path / "executed"
    executed.mkdir()
    for page in book_pages(ROOT):
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["injected-parameters"]}),
            nbformat.v4.new_code_cell(f"print('{page.stem}')"),
            nbformat.v4.new_markdown_cell(
                "```{exercise}\n:label: ex-x\n\nWhy?\n```\n\n"
                "```{solution-start} ex-x\n:class: dropdown\n```\n\nBecause."
            ),
            nbformat.v4.new_code_cell("print('the solution')"),
            nbformat.v4.new_markdown_cell("```{solution-end}\n```\n\nAfter the solution."),
        ]
        nbformat.write(nb, executed / f"{page.stem}.ipynb")
    spec = importlib.util.spec_from_file_location("assemble", ROOT / "book" / "assemble.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.assemble(executed, tmp_path / "book")
    toc = yaml.safe_load((out / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        found = [p for p in (out / f"{f}.md", out / f"{f}.ipynb") if p.exists()]
        assert len(found) == 1, f"{f}: {found}"  # one source per page, no clash
    for page in book_pages(ROOT):
        nb = nbformat.read(out / page.parent.name / f"{page.stem}.ipynb", as_version=4)
        assert "remove-cell" in nb.cells[0].metadata["tags"]
        assert nb.cells[1].source == f"print('{page.stem}')"
    student = mod.assemble(executed, tmp_path / "student", student=True)
    assert yaml.safe_load((student / "_config.yml").read_text())["sphinx"]["config"][
        "hide_solutions"
    ]
    for page in book_pages(ROOT):
        nb = nbformat.read(student / page.parent.name / f"{page.stem}.ipynb", as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        assert "{exercise}" in text and "After the solution." in text
        assert "solution" not in text.replace("After the solution.", "")
    for md in (ROOT / "book").glob("*.md"):
        if md not in book_pages(ROOT) and (student / "book" / md.name).exists():
            assert "{solution" not in (student / "book" / md.name).read_text()
    (executed / f"{book_pages(ROOT)[0].stem}.ipynb").unlink()
    with pytest.raises(FileNotFoundError, match="samgap_lib.execute"):
        mod.assemble(executed, tmp_path / "again")


@pytest.mark.notebooks
def test_a_chapter_runs_from_its_notebook_alone(tmp_path):
    """As in Colab: the chapter's .ipynb copied into an empty folder outside any checkout runs
    with the installed library only, and records its runs beside it (./results), not in the
    checkout it came from."""
    import shutil

    solo = tmp_path / "content"
    solo.mkdir()
    nb = shutil.copy(ROOT / "chapters" / "01_conceptual_break.ipynb", solo)
    recorded = sorted((ROOT / "results").rglob("*")) if (ROOT / "results").exists() else []
    stamps = {p: p.stat().st_mtime for p in recorded if p.is_file()}
    out = execute_page(nb, solo / "executed.ipynb", {**SMOKE, "n_images": 2, "max_clicks": 3})
    assert (solo / "results" / "smoke" / "compare" / "summary.json").is_file()
    text = "".join(
        str(o.get("data", {}).get("text/markdown", ""))
        for c in nbformat.read(out, as_version=4).cells
        for o in c.get("outputs", [])
    )
    assert f"Runs are recorded in `{solo / 'results'}/`" in text
    assert {p: p.stat().st_mtime for p in stamps} == stamps  # the checkout's results untouched
