"""Chapter 1's explorer in the built book: orchard-tiny SAM2 and SAM3 running in headless
Chromium (onnxruntime-web, WASM) with the network closed, held to the PyTorch models' answers.

Run after `make book` (``pytest -m browser``). The answers to hold it to are the explorer's
``expected.json`` (computed by the PyTorch models through `samgap_lib.models` when the graphs were
exported), with the manifest's tolerances. The page weight the explorer adds and its latency per
click and per phrase are written to ``_build/explorer_metrics.json``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from test_book_browser import HTML, _visit, browser, server  # noqa: F401 (fixtures)

from samgap_lib.explorer.reference import decode_rle

pytestmark = pytest.mark.browser

PAGE = "chapters/01_conceptual_break"
STATIC = HTML / "_static" / "explorer"
METRICS = HTML.parent / "explorer_metrics.json"


def _json(name):
    path = STATIC / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book` first")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def live(browser, server):  # noqa: F811 (the fixtures imported above)
    """Chapter 1 with its explorer started: (page, problems, blocked)."""
    page, ctx, problems, blocked = _visit(browser, server, PAGE)
    page.locator(".samgap-explorer").scroll_into_view_if_needed()
    page.wait_for_function("window.samgapExplorer.explorers.length > 0")
    page.evaluate("window.samgapExplorer.ready")
    errors = page.evaluate("window.samgapExplorer.errors")
    assert not errors, f"the explorer did not start: {errors}"
    yield page, problems, blocked
    ctx.close()


def _iou(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def _click(page, x, y, shift=False):
    canvas = page.locator(".samgap-explorer canvas").first
    # Playwright's position is from the border box's corner; the image fills the padding box
    left, top, width, height = canvas.evaluate(
        "c => [c.clientLeft, c.clientTop, c.clientWidth, c.clientHeight]"
    )
    size = _json("manifest.json")["image_size"]
    position = {"x": left + (x + 0.5) / size[1] * width, "y": top + (y + 0.5) / size[0] * height}
    before = page.evaluate("window.samgapExplorer.timings.sam2_click_ms?.length || 0")
    canvas.click(position=position, modifiers=["Shift"] if shift else [])
    page.wait_for_function(f"(window.samgapExplorer.timings.sam2_click_ms?.length || 0) > {before}")
    return page.evaluate(
        "(() => { const s = window.samgapExplorer.explorers[0].lastSam2;"
        " return {mask: Array.from(s.mask), iouPred: s.iouPred, slot: s.slot, iouGt: s.iouGt}; })()"
    )


def test_the_explorer_runs_offline_and_replaces_the_static_figure(live):
    page, problems, blocked = live
    assert not blocked, f"requests to other hosts: {blocked[:3]}"
    assert not problems, problems
    assert page.locator(".samgap-explorer-live").count() == 1
    assert not page.locator(".samgap-explorer-fallback").is_visible()
    assert page.locator(".samgap-explorer canvas").count() == 2
    assert "Prompts on this image" in page.locator(".samgap-explorer-effort").inner_text()


def test_a_click_gives_the_python_models_mask(live):
    """The clicks of `expected.json` on the canvas: the mask PyTorch gave for each (IoU >= 0.99,
    and within the manifest's pixel tolerance), the same candidate kept and the same
    predicted IoU."""
    page = live[0]
    expected = _json("expected.json")["sam2"]
    tol = _json("manifest.json")["tolerance"]
    page.locator(".samgap-explorer-clear").click()
    for name in ("first_click", "second_click"):
        e = expected[name]
        x, y = (int(v) for v in e["points"][-1])
        got = _click(page, x, y, shift=e["labels"][-1] == 0)
        want = decode_rle(e["mask"]).reshape(-1)
        assert _iou(got["mask"], want) >= 0.99, name
        assert int((np.asarray(got["mask"], bool) != want).sum()) <= tol["mask_pixels_max"], name
        assert got["slot"] == e["slot"]
        assert got["iouPred"] == pytest.approx(e["iou_pred"], abs=tol["iou_pred_abs"])
        assert got["iouGt"] == pytest.approx(e["iou_vs_gt"], abs=0.01)
    effort = page.locator(".samgap-explorer-effort").inner_text()
    assert "SAM2 2 clicks for 1 apple" in effort


def test_a_phrase_gives_the_python_models_instances(live):
    """ "ripe apple" (typed), then every phrase of `expected.json`: the instance count, scores
    and presence PyTorch gave, and masks within the pixel tolerance."""
    page = live[0]
    tol = _json("manifest.json")["tolerance"]
    for phrase, e in _json("expected.json")["sam3"].items():
        before = page.evaluate("window.samgapExplorer.timings.sam3_phrase_ms.length")
        page.locator(".samgap-explorer-phrase").fill(phrase)
        page.locator(".samgap-explorer-phrase").press("Enter")
        page.wait_for_function(f"window.samgapExplorer.timings.sam3_phrase_ms.length > {before}")
        got = page.evaluate(
            "(() => { const s = window.samgapExplorer.explorers[0].lastSam3;"
            " return {phrase: s.phrase, count: s.count, scores: s.scores, presence: s.presence,"
            " masks: s.masks.map(m => Array.from(m))}; })()"
        )
        assert got["phrase"] == phrase
        assert got["count"] == e["count"], phrase
        assert got["scores"] == pytest.approx(e["scores"], abs=tol["score_abs"])
        assert got["presence"] == pytest.approx(e["presence"], abs=tol["presence_abs"])
        for m, rle in zip(got["masks"], e["masks"], strict=True):
            differ = int((np.asarray(m, bool) != decode_rle(rle).reshape(-1)).sum())
            assert differ <= tol["mask_pixels_max"], phrase
    text = page.locator(".samgap-explorer-readout").nth(1).inner_text()
    assert "instance" in text and "presence" in text


def test_the_threshold_slider_changes_the_instances(live):
    page = live[0]
    page.locator(".samgap-explorer-phrase").fill("apple")
    page.locator(".samgap-explorer-phrase").press("Enter")
    page.wait_for_function("window.samgapExplorer.explorers[0].lastSam3.phrase === 'apple'")
    counts = {}
    for value in ("0.05", "0.95"):
        page.locator(".samgap-explorer-threshold").fill(value)
        counts[value] = page.evaluate("window.samgapExplorer.explorers[0].lastSam3.count")
    assert counts["0.05"] > counts["0.95"]


def test_report_page_weight_and_latency(live):
    """What the explorer adds to the page (bytes fetched, and gzip-compressed as a static host
    would serve them) and its latency per click and per phrase in headless Chromium."""
    page = live[0]
    entries = page.evaluate(
        "performance.getEntriesByType('resource').map(e => ({url: e.name, bytes: e.decodedBodySize}))"
    )
    ours = [
        e
        for e in entries
        if "/_static/explorer/" in e["url"] or "/_static/onnxruntime-web/" in e["url"]
    ]
    assert any(e["url"].endswith(".wasm") for e in ours)
    root = HTML / "_static"
    gz = 0
    for e in ours:
        path = root / e["url"].split("/_static/", 1)[1].split("?", 1)[0]
        gz += len(gzip.compress(Path(path).read_bytes(), 6))
    timings = page.evaluate("window.samgapExplorer.timings")
    metrics = {
        "files": len(ours),
        "bytes": sum(e["bytes"] for e in ours),
        "bytes_gzip": gz,
        "timings_ms": {k: {"n": len(v), "median": float(np.median(v))} for k, v in timings.items()},
        "browser": page.context.browser.version,
    }
    METRICS.write_text(json.dumps(metrics, indent=1))
    print(json.dumps(metrics))
    assert metrics["timings_ms"]["sam2_click_ms"]["n"] >= 2


def test_without_webassembly_the_static_figure_stays(browser, server):  # noqa: F811
    ctx = browser.new_context()
    ctx.add_init_script("delete window.WebAssembly;")
    page = ctx.new_page()
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    page.goto(f"{server}/{PAGE}.html", wait_until="load")
    page.locator(".samgap-explorer").scroll_into_view_if_needed()
    page.wait_for_function("window.samgapExplorer.explorers.length > 0")
    page.evaluate("window.samgapExplorer.ready")
    assert page.locator(".samgap-explorer-fallback img").is_visible()
    assert "could not start" in page.locator(".samgap-explorer-status").inner_text()
    ctx.close()
