"""The vendored onnxruntime-web runs an ONNX model in Chromium, offline (``pytest -m browser``).

A page generated in a temporary folder loads ``book/vendor/onnxruntime-web/ort.wasm.min.js`` and
the explorer's ``tokenizer.js`` with plain ``<script>`` tags, sets ``ort.env.wasm.wasmPaths`` to the
vendored folder and ``ort.env.wasm.numThreads = 1`` (no cross-origin isolation), and runs a tiny
model built here: ``relu(x @ W + b)`` on float32 and an embedding ``Gather`` on the int64 token ids
the JS tokenizer gives for a phrase. Outputs are checked against numpy. The page is served over
http://127.0.0.1 (as the built book is in test_book_browser.py) with every other request
aborted; from file:// Chromium refuses the runtime's import() of its .mjs loader, so the explorer
must be served over http(s).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from _browser import chromium, serve

ROOT = Path(__file__).resolve().parent.parent
ORT_DIR = ROOT / "book" / "vendor" / "onnxruntime-web"
TOKENIZER_JS = ROOT / "samgap_lib" / "explorer" / "static" / "tokenizer.js"
PHRASE = "Red apple, 3 pears!"

pytestmark = pytest.mark.browser

rng = np.random.default_rng(0)
W = rng.standard_normal((4, 3)).astype(np.float32)
B = rng.standard_normal(3).astype(np.float32)
X = rng.standard_normal((2, 4)).astype(np.float32)
EMBED = rng.standard_normal((514, 2)).astype(np.float32)


def _model_bytes() -> bytes:
    """relu(x @ W + b) on x: float32 [2, 4], and EMBED[input_ids] on input_ids: int64 [1, 32]."""
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:  # the legacy TorchScript exporter needs no onnx package
        return _model_bytes_torch()
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["xwb"]),
            helper.make_node("Relu", ["xwb"], ["y"]),
            helper.make_node("Gather", ["E", "input_ids"], ["emb"], axis=0),
        ],
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 32]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("emb", TensorProto.FLOAT, [1, 32, 2]),
        ],
        initializer=[
            numpy_helper.from_array(W, "W"),
            numpy_helper.from_array(B, "b"),
            numpy_helper.from_array(EMBED, "E"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


def _model_bytes_torch() -> bytes:
    import io

    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W = torch.nn.Parameter(torch.from_numpy(W))
            self.b = torch.nn.Parameter(torch.from_numpy(B))
            self.E = torch.nn.Parameter(torch.from_numpy(EMBED))

        def forward(self, x, input_ids):
            return torch.relu(x @ self.W + self.b), self.E[input_ids]

    buf = io.BytesIO()
    args = (torch.from_numpy(X), torch.zeros(1, 32, dtype=torch.int64))
    torch.onnx.export(
        Tiny(), args, buf, dynamo=False, input_names=["x", "input_ids"], output_names=["y", "emb"]
    )
    return buf.getvalue()


# How the page configures the runtime. wasmPaths must be an absolute URL (a relative "ort/" is
# resolved by import() against nothing and fails); left unset, the runtime loads its .mjs and .wasm
# from the folder of ort.wasm.min.js, and without cross-origin isolation numThreads falls to 1.
CONFIGS = {
    "explicit": 'ort.env.wasm.wasmPaths = new URL("ort/", document.baseURI).href;'
    " ort.env.wasm.numThreads = 1;",
    "defaults": "",
}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ort test</title><link rel="icon" href="data:,">
<script src="ort/ort.wasm.min.js"></script>
<script src="tokenizer.js"></script>
</head><body>
<script>
window.result = (async () => {
  try {
    __CONFIG__
    const model = Uint8Array.from(atob("__MODEL__"), (c) => c.charCodeAt(0));
    const session = await ort.InferenceSession.create(model, {executionProviders: ["wasm"]});
    const tok = SamgapTokenizer.encode(__PHRASE__);
    const feeds = {
      x: new ort.Tensor("float32", Float32Array.from(__X__), [2, 4]),
      input_ids: new ort.Tensor("int64", BigInt64Array.from(tok.input_ids, (v) => BigInt(v)), [1, 32]),
    };
    const out = await session.run(feeds);
    return {
      ok: true,
      y: Array.from(out.y.data), y_dims: out.y.dims,
      emb: Array.from(out.emb.data), emb_dims: out.emb.dims,
      input_ids: Array.from(tok.input_ids),
      inputNames: session.inputNames, outputNames: session.outputNames,
      isolated: self.crossOriginIsolated, version: ort.env.versions.common,
    };
  } catch (e) {
    return {ok: false, error: String(e && e.stack || e)};
  }
})();
</script></body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not (ORT_DIR / "ort.wasm.min.js").exists():
        pytest.fail("book/vendor/onnxruntime-web is missing: run `make vendor` first")
    root = tmp_path_factory.mktemp("explorer-runtime")
    (root / "ort").symlink_to(ORT_DIR.resolve(), target_is_directory=True)
    (root / "tokenizer.js").symlink_to(TOKENIZER_JS.resolve())
    page = (
        PAGE.replace("__MODEL__", base64.b64encode(_model_bytes()).decode())
        .replace("__PHRASE__", json.dumps(PHRASE))
        .replace("__X__", json.dumps(X.ravel().tolist()))
    )
    for name, config in CONFIGS.items():
        (root / f"{name}.html").write_text(page.replace("__CONFIG__", config), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def server(site):
    with serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _run_page(browser, url: str) -> tuple[dict, list[str], list[str]]:
    """Open ``url`` with only 127.0.0.1 and file: reachable; return (result, problems, blocked)."""
    ctx = browser.new_context()
    page = ctx.new_page()
    problems: list[str] = []
    blocked: list[str] = []

    def route(r):
        u = r.request.url
        if u.startswith(("data:", "blob:", "file:")) or urlparse(u).hostname == "127.0.0.1":
            r.continue_()
        else:
            blocked.append(u)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None,
    )
    try:
        page.goto(url, wait_until="load")
        result = page.evaluate("window.result")
    finally:
        ctx.close()
    return result, problems, blocked


@pytest.mark.parametrize("config", CONFIGS)
def test_vendored_ort_runs_a_model_over_http(browser, server, config):
    result, problems, blocked = _run_page(browser, f"{server}/{config}.html")
    assert result["ok"], result["error"]
    assert not blocked, f"requests left 127.0.0.1: {blocked}"
    assert not problems, problems
    assert result["isolated"] is False  # single-threaded WASM needs no COOP/COEP headers
    pin = next(
        line.split("@")[-1].strip()
        for line in (ROOT / "book" / "vendor.txt").read_text().splitlines()
        if line.startswith("onnxruntime-web@")
    )
    assert result["version"] == pin, "book/vendor is stale: run `make vendor`"

    y = np.maximum(X @ W + B, 0)
    assert result["y_dims"] == [2, 3]
    np.testing.assert_allclose(np.array(result["y"]).reshape(2, 3), y, rtol=1e-5, atol=1e-6)

    from samgap_lib.models.archs import byte_level_clip_tokenizer

    # tokenizer.js in Chromium gives the Python tokenizer's ids (padding="max_length", 32)
    expected = byte_level_clip_tokenizer()(
        PHRASE, padding="max_length", max_length=32, truncation=True
    )["input_ids"]
    ids = np.array(result["input_ids"])
    assert ids.tolist() == expected
    assert result["emb_dims"] == [1, 32, 2]
    np.testing.assert_allclose(np.array(result["emb"]).reshape(1, 32, 2), EMBED[ids][None])


def test_vendored_ort_from_file_url(browser, site):
    """Opened from file://, the page cannot import() the runtime's .mjs: it needs an http server."""
    result, _, blocked = _run_page(browser, (site / "explicit.html").as_uri())
    assert not blocked
    assert not result["ok"]
    assert "ort-wasm-simd-threaded.mjs" in result["error"] or "import" in result["error"].lower()
