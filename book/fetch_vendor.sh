#!/usr/bin/env bash
# Fetch MathJax 3, require.js, the ipywidgets HTML manager and ONNX Runtime Web (WASM backend) from
# the npm registry into $1 (default book/vendor), so the built book renders math and widgets and
# runs the explorer's models with no internet access.
set -euo pipefail
dest=${1:-book/vendor}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mapfile -t pkgs < <(grep -v '^\s*#' "$here/vendor.txt" | grep -v '^\s*$')
(cd "$tmp" && npm pack --silent "${pkgs[@]}" >/dev/null)
rm -rf "$dest"
mkdir -p "$dest/mathjax" "$dest/html-manager" "$dest/onnxruntime-web"
tar xzf "$tmp"/mathjax-*.tgz -C "$tmp" && cp -r "$tmp"/package/es5/. "$dest/mathjax/" && rm -rf "$tmp/package"
tar xzf "$tmp"/requirejs-*.tgz -C "$tmp" && cp "$tmp"/package/require.js "$dest/require.js" && rm -rf "$tmp/package"
tar xzf "$tmp"/jupyter-widgets-html-manager-*.tgz -C "$tmp"
find "$tmp/package/dist" -maxdepth 1 -type f ! -name '*.map' -exec cp {} "$dest/html-manager/" \;
# html-manager 1.0.6 typesets widget labels through MathJax 2's MathJax.Hub.Queue, which MathJax 3
# lacks ("Cannot read properties of undefined (reading 'Queue')"): call MathJax 3's API when present.
old='MathJax.Hub.Queue(["Typeset",MathJax.Hub,e])'
new='(MathJax.typesetPromise?MathJax.typesetPromise([e]):MathJax.Hub.Queue(["Typeset",MathJax.Hub,e]))'
for f in "$dest"/html-manager/*.js; do
  if grep -qF "$old" "$f"; then
    python3 - "$f" "$old" "$new" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
open(path, "w").write(text.replace(old, new))
PY
  fi
done
# onnxruntime-web: only the WASM build that a classic <script> loads. ort.wasm.min.js defines the
# global `ort` and fetches ort-wasm-simd-threaded.mjs (import()) and .wasm from env.wasm.wasmPaths;
# with env.wasm.numThreads = 1 it needs no cross-origin isolation (no SharedArrayBuffer workers).
# The .jsep/.jspi/.asyncify builds (WebGPU/WebNN) and source maps are left out.
tar xzf "$tmp"/onnxruntime-web-*.tgz -C "$tmp"
for f in ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm; do
  cp "$tmp/package/dist/$f" "$dest/onnxruntime-web/"
done
rm -rf "$tmp/package"
grep -qF "MathJax.typesetPromise([e])" "$dest/html-manager/embed-amd.js"
test -s "$dest/mathjax/tex-chtml.js" && test -s "$dest/require.js" && test -s "$dest/html-manager/embed-amd.js"
test -s "$dest/onnxruntime-web/ort.wasm.min.js" && test -s "$dest/onnxruntime-web/ort-wasm-simd-threaded.wasm"
echo "vendored ${pkgs[*]} into $dest"
