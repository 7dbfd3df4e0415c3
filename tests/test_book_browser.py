"""The built book as a reader's browser sees it: headless Chromium, network closed.

Run after `make book` (``pytest -m browser``). Serves ``_build/html`` on 127.0.0.1, aborts every
request to any other host, and checks each page of ``_toc.yml``: no console errors or failed local
requests, every image loaded, math typeset by the vendored MathJax, widget views rendered where a
page has widget state, the Colab link of each chapter, and the profile statement. A full-page
screenshot of each page goes to ``_build/screenshots/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from _browser import chromium, serve

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
pytestmark = pytest.mark.browser


def _pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail("_build/html is missing: run `make book` first")
    with serve(HTML) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _visit(browser, server, page_path):
    """Load one page with the network closed; return (page, context, problems, blocked)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    problems: list[str] = []
    blocked: list[str] = []

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "requestfailed",
        lambda r: (
            problems.append(f"failed request {r.url}: {r.failure}")
            if urlparse(r.url).hostname == "127.0.0.1"
            else None
        ),
    )
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None,
    )
    page.goto(f"{server}/{page_path}.html", wait_until="load")
    page.wait_for_load_state("networkidle")
    return page, ctx, problems, blocked


@pytest.mark.parametrize("page_path", _pages())
def test_page_renders_offline(browser, server, page_path):
    page, ctx, problems, blocked = _visit(browser, server, page_path)
    try:
        # MathJax: wait for typesetting when the page holds math
        has_math = page.locator(".math").count() > 0
        if has_math:
            page.wait_for_function(
                "window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000
            )
            page.evaluate("MathJax.startup.promise")
            assert page.locator("mjx-container").count() > 0, (
                f"{page_path}: math present but MathJax rendered nothing"
            )
        body = (
            page.inner_text("article")
            if page.locator("article").count()
            else page.inner_text("body")
        )
        assert not re.search(r"\\\(|\\\[", body), (
            f"{page_path}: raw LaTeX delimiters left in the text (MathJax did not run)"
        )

        # Widgets: pages that carry widget state must show rendered views
        if page.locator('script[type="application/vnd.jupyter.widget-state+json"]').count():
            page.wait_for_function(
                "document.querySelectorAll('.jupyter-widgets, .lm-Widget').length > 0",
                timeout=20_000,
            )
            assert page.locator(".jupyter-widgets:visible, .lm-Widget:visible").count() > 0, (
                f"{page_path}: widget state but no visible rendered widget"
            )
            # image widgets must show their picture, not an empty frame
            for img in page.locator(".jupyter-widgets img, .widget-image").all():
                assert img.evaluate("e => e.naturalWidth > 0"), (
                    f"{page_path}: an image widget rendered empty"
                )

        # Images: every figure loaded
        page.evaluate("Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
        broken = page.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
        )
        assert not broken, f"{page_path}: images that did not load: {broken}"

        text = page.inner_text("body")
        if page_path.startswith("chapters/"):
            stem = page_path.split("/")[-1]
            hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
            colab = [h for h in hrefs if "colab.research.google.com" in h]
            assert colab, f"{page_path}: no Open in Colab link"
            assert all(h.endswith(f"chapters/{stem}.ipynb") for h in colab), (
                f"{page_path}: Colab link targets {colab}"
            )
            assert page.locator("div.cell_output").count() > 0, f"{page_path}: no executed outputs"
            assert page.locator("div.cell_output img").count() > 0, (
                f"{page_path}: no figure in the executed outputs"
            )
        if page.locator("div.cell_output").count():
            assert "Outputs on this page: profile" in text, (
                f"{page_path}: does not say which profile produced its outputs"
            )

        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{page_path.replace('/', '__')}.png"), full_page=True)
        assert not problems, f"{page_path}: " + "; ".join(problems)
    finally:
        ctx.close()


def _height(browser, server, page_path):
    page, ctx, _, _ = _visit(browser, server, page_path)
    try:
        return page.evaluate("document.documentElement.scrollHeight")
    finally:
        ctx.close()


def test_chapter_4_is_about_the_gap_not_the_miniature(browser, server):
    """Chapter 4 keeps to the recipes and the fine-tuning; how the miniature was built is an
    appendix: the built chapter is at most twice as tall as chapter 1."""
    ch1 = _height(browser, server, "chapters/01_conceptual_break")
    ch4 = _height(browser, server, "chapters/04_training")
    assert ch4 <= 2 * ch1, f"chapter 4 is {ch4} px tall, chapter 1 {ch1} px"


def test_the_claims_page_judges_every_claim_and_links_its_evidence(browser, server):
    from samgap_lib.studies.claims import CLAIMS, VERDICTS

    page, ctx, problems, _ = _visit(browser, server, "book/claims")
    try:
        rows = page.locator("table").first.locator("tbody tr")
        assert rows.count() == len(CLAIMS)
        for i in range(rows.count()):
            cells = rows.nth(i).locator("td")
            assert cells.nth(2).inner_text().strip() in VERDICTS
            links = cells.nth(4).locator("a")
            assert links.count() >= 1, f"claim {i + 1}: no link to its evidence"
            for href in links.evaluate_all("els => els.map(e => e.href)"):
                target = urlparse(href)
                assert target.hostname == "127.0.0.1", href
                resp = page.request.get(href.split("#")[0])
                assert resp.ok, href
                if target.fragment:  # the anchor exists on the page it points to
                    other = ctx.new_page()
                    other.goto(href.split("#")[0])
                    assert other.locator(f"[id='{target.fragment}']").count() == 1, href
                    other.close()
        assert not problems, "; ".join(problems)
    finally:
        ctx.close()


STUDENT = ROOT / "_build" / "student" / "_build" / "html"


@pytest.mark.parametrize("page_path", [p for p in _pages() if p.startswith("chapters/")])
def test_the_student_edition_has_the_exercises_and_no_solutions(page_path):
    """`make book-student`: every exercise, numbered as in the reader's book, and no solution
    (neither the solution boxes nor the code cells of gated solutions)."""
    reader = (HTML / f"{page_path}.html").read_text()
    student_page = STUDENT / f"{page_path}.html"
    assert student_page.exists(), "run `make book-student` first"
    student = student_page.read_text()
    assert reader.count('class="exercise') == student.count('class="exercise') > 0
    assert 'class="solution' in reader
    assert 'class="solution' not in student
    assert len(student) < len(reader)
