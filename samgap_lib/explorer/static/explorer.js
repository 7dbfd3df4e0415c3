/*
 * samgap explorer: orchard-tiny SAM2 and SAM3 in the reader's browser (onnxruntime-web, WASM).
 *
 * The book loads this file on every page (Sphinx html_js_files); it acts only where a page holds
 * a <div class="samgap-explorer"> (chapter 1, written by samgap_lib.explorer.page). Everything it
 * needs sits beside it in _static/explorer/ (manifest.json, the .onnx graphs, images/, the
 * tokenizer) and in _static/onnxruntime-web/; nothing is fetched from another host.
 *
 * It follows manifest.json's steps, the contract samgap_lib.explorer.runtime.OnnxExplorer runs
 * in Python for the parity tests:
 *   SAM2: sam2_encoder once per image; each click runs sam2_decoder with all of the object's
 *         clicks so far; the first click keeps the best of three candidates (slot 1 + argmax of
 *         their predicted IoU), a later click the single mask (slot 0) drawn on the previous
 *         answer's low-res logits.
 *   SAM3: sam3_vision once per image, sam3_text once per phrase, sam3_detector per (image,
 *         phrase); instances are the queries scoring above the threshold, by decreasing score,
 *         with duplicates dropped by mask non-maximum suppression.
 * Where WebAssembly or a fetch of the graphs fails (a page opened from file://, an old browser),
 * the static figure the page was built with stays, with a line that says why.
 *
 * Tests (tests/test_explorer_browser.py) read window.samgapExplorer: `ready` (a promise), the
 * explorers, their last answers and the timings.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var BASE = new URL(".", script ? script.src : document.baseURI).href;
  var ORT_DIR = new URL("../onnxruntime-web/", BASE).href;
  var COLORS = [
    [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66],
    [0, 114, 178], [213, 94, 0], [204, 121, 167], [255, 255, 255],
  ];
  var APPLE_PHRASES = { apple: null, "ripe apple": "ripe", "unripe apple": "unripe", "turning apple": "turning" };

  var api = { explorers: [], timings: {}, ready: Promise.resolve([]), errors: [] };
  window.samgapExplorer = api;

  function time(name, ms) {
    (api.timings[name] = api.timings[name] || []).push(ms);
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }

  var runtime = null;
  function loadRuntime() {
    if (!runtime) {
      runtime = (async function () {
        if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
        if (!window.ort) await loadScript(ORT_DIR + "ort.wasm.min.js");
        if (!window.SamgapTokenizer) await loadScript(BASE + "tokenizer.js");
        window.ort.env.wasm.wasmPaths = ORT_DIR;
        window.ort.env.wasm.numThreads = 1;
        window.ort.env.logLevel = "error";
        return window.ort;
      })();
    }
    return runtime;
  }

  async function fetchOk(url) {
    var r = await fetch(url);
    if (!r.ok) throw new Error("HTTP " + r.status + " for " + url);
    return r;
  }

  // ------------------------------------------------------------------ masks

  // COCO compressed RLE (column-major runs, alternately off/on) -> row-major Uint8Array (h*w).
  function decodeRle(rle) {
    var h = rle.size[0], w = rle.size[1], s = rle.counts, counts = [], p = 0;
    while (p < s.length) {
      var x = 0, k = 0, more = true, c;
      while (more) {
        c = s.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = (c & 0x20) !== 0;
        p += 1;
        k += 1;
        if (!more && (c & 0x10)) x |= -1 << (5 * k);
      }
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
    var out = new Uint8Array(h * w), pos = 0, on = false;
    for (var i = 0; i < counts.length; i++) {
      if (on) {
        for (var j = pos; j < pos + counts[i]; j++) out[(j % h) * w + Math.floor(j / h)] = 1;
      }
      pos += counts[i];
      on = !on;
    }
    return out;
  }

  function maskIou(a, b) {
    var inter = 0, union = 0;
    for (var i = 0; i < a.length; i++) {
      if (a[i] && b[i]) inter++;
      if (a[i] || b[i]) union++;
    }
    return union ? inter / union : 0;
  }

  function area(m) {
    var n = 0;
    for (var i = 0; i < m.length; i++) n += m[i] ? 1 : 0;
    return n;
  }

  // ------------------------------------------------------------------ drawing

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }

  function paint(canvas, rgb, layers, marks, boxes) {
    var n = canvas.width * canvas.height, ctx = canvas.getContext("2d");
    var img = ctx.createImageData(canvas.width, canvas.height), d = img.data;
    for (var i = 0; i < n; i++) {
      d[4 * i] = rgb[3 * i]; d[4 * i + 1] = rgb[3 * i + 1]; d[4 * i + 2] = rgb[3 * i + 2]; d[4 * i + 3] = 255;
    }
    layers.forEach(function (layer) {
      var c = layer.color, a = layer.alpha;
      for (var i = 0; i < n; i++) {
        if (layer.mask[i]) {
          d[4 * i] = (1 - a) * d[4 * i] + a * c[0];
          d[4 * i + 1] = (1 - a) * d[4 * i + 1] + a * c[1];
          d[4 * i + 2] = (1 - a) * d[4 * i + 2] + a * c[2];
        }
      }
    });
    ctx.putImageData(img, 0, 0);
    (boxes || []).forEach(function (b) {
      ctx.strokeStyle = "rgb(" + b.color.join(",") + ")";
      ctx.lineWidth = 1;
      ctx.strokeRect(b.box[0] + 0.5, b.box[1] + 0.5, b.box[2] - b.box[0], b.box[3] - b.box[1]);
      ctx.font = "9px sans-serif";
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(b.box[0], b.box[1] - 10, 24, 10);
      ctx.fillStyle = "#fff";
      ctx.fillText(b.label, b.box[0] + 1, b.box[1] - 2);
    });
    (marks || []).forEach(function (m) {
      ctx.fillStyle = m.label ? "#00e000" : "#ff2020";
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      ctx.arc(m.x + 0.5, m.y + 0.5, 3, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    });
  }

  // ------------------------------------------------------------------ the explorer

  function Explorer(root) {
    this.root = root;
    this.status = root.querySelector(".samgap-explorer-status") || root.appendChild(el("p", { "class": "samgap-explorer-status" }));
    this.sam2Objects = [];
    this.sam2Clicks = 0;
    this.phrasesRun = [];
    this.lastSam2 = null;
    this.lastSam3 = null;
    this.detections = null;
  }

  Explorer.prototype.say = function (text) {
    this.status.textContent = text;
  };

  Explorer.prototype.start = async function () {
    var t0 = performance.now();
    this.say("Loading the two miniature models into your browser...");
    var ort = await loadRuntime();
    this.manifest = await (await fetchOk(BASE + "manifest.json")).json();
    var self = this, names = Object.keys(this.manifest.graphs);
    var sessions = await Promise.all(names.map(async function (name) {
      var bytes = await (await fetchOk(BASE + self.manifest.graphs[name].file)).arrayBuffer();
      return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    }));
    this.sessions = {};
    names.forEach(function (n, i) { self.sessions[n] = sessions[i]; });
    this.size = this.manifest.image_size;
    this.buildUi();
    time("load_ms", performance.now() - t0);
    await this.selectImage(0);
    this.root.classList.add("samgap-explorer-live");
    this.say("");
  };

  Explorer.prototype.buildUi = function () {
    var self = this, h = this.size[0], w = this.size[1];
    var picker = el("div", { "class": "samgap-explorer-images", role: "group", "aria-label": "held-out images" });
    this.manifest.images.forEach(function (im, i) {
      var b = el("button", { type: "button", "data-image": String(i), text: "image " + (i + 1) });
      b.addEventListener("click", function () { self.selectImage(i); });
      picker.appendChild(b);
    });
    this.canvas2 = el("canvas", { width: w, height: h, "class": "samgap-explorer-canvas", "aria-label": "SAM2: click an apple" });
    this.canvas3 = el("canvas", { width: w, height: h, "class": "samgap-explorer-canvas", "aria-label": "SAM3: the phrase's instances" });
    this.canvas2.addEventListener("click", function (e) {
      var c = self.canvas2, r = c.getBoundingClientRect();  // the image fills the padding box
      var x = Math.min(w - 1, Math.floor(((e.clientX - r.left - c.clientLeft) / c.clientWidth) * w));
      var y = Math.min(h - 1, Math.floor(((e.clientY - r.top - c.clientTop) / c.clientHeight) * h));
      self.click(x, y, !(e.shiftKey || e.altKey));
    });
    var fresh = el("button", { type: "button", "class": "samgap-explorer-new", text: "New apple" });
    fresh.addEventListener("click", function () { self.newObject(); self.render2(); });
    var clear = el("button", { type: "button", "class": "samgap-explorer-clear", text: "Clear" });
    clear.addEventListener("click", function () { self.sam2Objects = []; self.sam2Clicks = 0; self.render2(); });
    this.readout2 = el("p", { "class": "samgap-explorer-readout", "aria-live": "polite" });
    var sam2 = el("div", { "class": "samgap-explorer-panel" }, [
      el("h4", { text: "SAM2: point at one apple" }),
      this.canvas2,
      el("p", { "class": "samgap-explorer-help", text: "Click an apple; Shift+click marks background. Each click refines the same apple until \u201cNew apple\u201d." }),
      el("div", {}, [fresh, clear]),
      this.readout2,
    ]);
    this.phrase = el("input", { type: "text", list: "samgap-explorer-phrases", value: "ripe apple", "aria-label": "a phrase", "class": "samgap-explorer-phrase" });
    var list = el("datalist", { id: "samgap-explorer-phrases" });
    this.manifest.sam3.phrases_suggested.forEach(function (p) { list.appendChild(el("option", { value: p })); });
    var go = el("button", { type: "button", "class": "samgap-explorer-go", text: "Segment" });
    go.addEventListener("click", function () { self.segment(self.phrase.value); });
    this.phrase.addEventListener("keydown", function (e) { if (e.key === "Enter") self.segment(self.phrase.value); });
    this.slider = el("input", { type: "range", min: "0.05", max: "0.95", step: "0.05", value: String(this.manifest.sam3.threshold), "aria-label": "score threshold", "class": "samgap-explorer-threshold" });
    this.sliderValue = el("span", { text: String(this.manifest.sam3.threshold) });
    this.slider.addEventListener("input", function () { self.sliderValue.textContent = self.slider.value; self.render3(); });
    this.readout3 = el("p", { "class": "samgap-explorer-readout", "aria-live": "polite" });
    var sam3 = el("div", { "class": "samgap-explorer-panel" }, [
      el("h4", { text: "SAM3: name a concept" }),
      this.canvas3,
      el("div", {}, [this.phrase, list, go]),
      el("label", { "class": "samgap-explorer-help" }, [document.createTextNode("score threshold "), this.slider, this.sliderValue]),
      this.readout3,
    ]);
    this.effort = el("p", { "class": "samgap-explorer-effort", "aria-live": "polite" });
    var ui = el("div", { "class": "samgap-explorer-ui" }, [picker, el("div", { "class": "samgap-explorer-panels" }, [sam2, sam3]), this.effort]);
    this.root.appendChild(ui);
  };

  Explorer.prototype.selectImage = async function (i) {
    var entry = this.manifest.images[i];
    var blob = await (await fetchOk(BASE + entry.file)).blob();
    var bmp = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    var c = document.createElement("canvas");
    c.width = bmp.width;
    c.height = bmp.height;
    var ctx = c.getContext("2d");
    ctx.drawImage(bmp, 0, 0);
    var rgba = ctx.getImageData(0, 0, c.width, c.height).data, n = c.width * c.height;
    var rgb = new Uint8Array(3 * n);
    for (var p = 0; p < n; p++) {
      rgb[3 * p] = rgba[4 * p]; rgb[3 * p + 1] = rgba[4 * p + 1]; rgb[3 * p + 2] = rgba[4 * p + 2];
    }
    this.imageIndex = i;
    this.rgb = rgb;
    this.apples = entry.apples.map(function (a) { return { mask: decodeRle(a.rle), ripeness: a.ripeness }; });
    this.root.querySelectorAll("[data-image]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(Number(b.getAttribute("data-image")) === i));
    });
    var ort = window.ort, image = new ort.Tensor("uint8", rgb, [this.size[0], this.size[1], 3]);
    var t0 = performance.now();
    this.emb2 = await this.sessions.sam2_encoder.run({ image: image });
    time("sam2_encode_ms", performance.now() - t0);
    t0 = performance.now();
    this.fpn = await this.sessions.sam3_vision.run({ image: image });
    time("sam3_encode_ms", performance.now() - t0);
    this.sam2Objects = [];  // the prompts are counted per image
    this.sam2Clicks = 0;
    this.phrasesRun = [];
    this.detections = null;
    this.render2();
    await this.segment(this.phrase.value);
  };

  // -------------------------------------------------------------- SAM2

  Explorer.prototype.newObject = function () {
    var last = this.sam2Objects[this.sam2Objects.length - 1];
    if (last && !last.done) last.done = true;
  };

  Explorer.prototype.click = async function (x, y, positive) {
    var obj = this.sam2Objects[this.sam2Objects.length - 1];
    if (!obj || obj.done) {
      if (!positive) {
        this.readout2.textContent = "Start an apple with a plain click on it; Shift+click then marks what is not that apple.";
        return;
      }
      var under = -1;
      this.apples.forEach(function (a, k) { if (a.mask[y * this.size[1] + x]) under = k; }, this);
      obj = { points: [], labels: [], prev: null, gt: under, done: false };
      this.sam2Objects.push(obj);
    }
    obj.points.push([x, y]);
    obj.labels.push(positive ? 1 : 0);
    this.sam2Clicks += 1;
    var ort = window.ort, h = this.manifest.sam2.mask_input_size[0], w = this.manifest.sam2.mask_input_size[1];
    var feed = {
      emb_s0: this.emb2.emb_s0, emb_s1: this.emb2.emb_s1, emb: this.emb2.emb,
      points: new ort.Tensor("float32", Float32Array.from([].concat.apply([], obj.points)), [1, obj.points.length, 2]),
      labels: new ort.Tensor("float32", Float32Array.from(obj.labels), [1, obj.labels.length]),
      prev_low_res: new ort.Tensor("float32", obj.prev || new Float32Array(h * w), [1, 1, h, w]),
      has_prev: new ort.Tensor("float32", Float32Array.from([obj.prev ? 1 : 0]), [1]),
    };
    var t0 = performance.now();
    var out = await this.sessions.sam2_decoder.run(feed);
    var iou = out.iou.data, slot = 0;
    if (!obj.prev) {  // the first click: the best of the three candidates (slots 1..3)
      slot = 1;
      for (var s = 2; s <= 3; s++) if (iou[s] > iou[slot]) slot = s;
    }
    var n = this.size[0] * this.size[1], logits = out.mask_logits.data.subarray(slot * n, (slot + 1) * n);
    var mask = new Uint8Array(n);
    for (var i = 0; i < n; i++) mask[i] = logits[i] > 0 ? 1 : 0;
    obj.prev = Float32Array.from(out.low_res.data.subarray(slot * h * w, (slot + 1) * h * w));
    obj.mask = mask;
    obj.iouPred = iou[slot];
    obj.slot = slot;
    time("sam2_click_ms", performance.now() - t0);
    obj.iouGt = obj.gt >= 0 ? maskIou(mask, this.apples[obj.gt].mask) : null;
    this.lastSam2 = { mask: mask, iouPred: obj.iouPred, slot: slot, iouGt: obj.iouGt, points: obj.points.slice() };
    this.render2();
  };

  Explorer.prototype.render2 = function () {
    var layers = [], marks = [];
    this.sam2Objects.forEach(function (o, k) {
      if (o.mask) layers.push({ mask: o.mask, color: COLORS[k % COLORS.length], alpha: o.done ? 0.35 : 0.55 });
      if (!o.done) o.points.forEach(function (p, j) { marks.push({ x: p[0], y: p[1], label: o.labels[j] }); });
    });
    paint(this.canvas2, this.rgb, layers, marks);
    var o = this.sam2Objects[this.sam2Objects.length - 1];
    if (!o || !o.mask) {
      this.readout2.textContent = "No apple yet: click one.";
    } else {
      var gt = o.gt >= 0
        ? "IoU with the apple under the first click: " + o.iouGt.toFixed(3) + " (ground truth)."
        : "The first click is on no labelled apple.";
      this.readout2.textContent = "Apple " + this.sam2Objects.length + ": " + o.points.length + " click" + (o.points.length > 1 ? "s" : "")
        + "; predicted IoU " + o.iouPred.toFixed(3) + ". " + gt;
    }
    this.renderEffort();
  };

  // -------------------------------------------------------------- SAM3

  Explorer.prototype.segment = async function (phrase) {
    phrase = String(phrase || "").trim();
    if (!phrase) {
      this.readout3.textContent = "Type a phrase, for example \u201cripe apple\u201d.";
      return;
    }
    var ort = window.ort, enc = window.SamgapTokenizer.encode(phrase), L = enc.input_ids.length;
    var t0 = performance.now();
    var ids = new ort.Tensor("int32", enc.input_ids, [1, L]);
    var att = new ort.Tensor("int32", enc.attention_mask, [1, L]);
    var text = await this.sessions.sam3_text.run({ input_ids: ids, attention_mask: att });
    var out = await this.sessions.sam3_detector.run({
      fpn0: this.fpn.fpn0, fpn1: this.fpn.fpn1, text_features: text.text_features, attention_mask: att,
    });
    time("sam3_phrase_ms", performance.now() - t0);
    this.detections = { phrase: phrase, scores: out.scores.data, boxes: out.boxes.data, masks: out.masks.data, presence: out.presence.data[0] };
    if (this.phrasesRun.indexOf(phrase) < 0) this.phrasesRun.push(phrase);
    this.render3();
  };

  Explorer.prototype.instances = function (threshold) {
    var det = this.detections, n = this.size[0] * this.size[1], q = det.scores.length, order = [];
    for (var i = 0; i < q; i++) if (det.scores[i] > threshold) order.push(i);
    order.sort(function (a, b) { return det.scores[b] - det.scores[a] || a - b; });  // stable by index
    var kept = [], nms = this.manifest.sam3.nms_iou;
    order.forEach(function (qi) {
      var m = det.masks.subarray(qi * n, (qi + 1) * n);
      var dup = nms !== null && kept.some(function (k) { return maskIou(m, k.mask) >= nms; });
      if (!dup) kept.push({ query: qi, mask: m, score: det.scores[qi], box: Array.prototype.slice.call(det.boxes, 4 * qi, 4 * qi + 4) });
    });
    return kept;
  };

  Explorer.prototype.render3 = function () {
    if (!this.detections) return;
    var threshold = Number(this.slider.value), kept = this.instances(threshold);
    var layers = kept.map(function (k, i) { return { mask: k.mask, color: COLORS[i % COLORS.length], alpha: 0.5 }; });
    var boxes = kept.map(function (k, i) { return { box: k.box, color: COLORS[i % COLORS.length], label: k.score.toFixed(2) }; });
    paint(this.canvas3, this.rgb, layers, [], boxes);
    var det = this.detections, text = "\u201c" + det.phrase + "\u201d: " + kept.length + " instance" + (kept.length === 1 ? "" : "s")
      + " at score > " + threshold.toFixed(2) + "; presence " + det.presence.toFixed(3) + ".";
    if (Object.prototype.hasOwnProperty.call(APPLE_PHRASES, det.phrase)) {
      var want = APPLE_PHRASES[det.phrase], named = this.apples.filter(function (a) { return want === null || a.ripeness === want; });
      var used = [], found = 0;
      kept.forEach(function (k) {
        var best = -1, bestIou = 0.5;
        named.forEach(function (a, j) {
          if (used.indexOf(j) < 0) { var v = maskIou(k.mask, a.mask); if (v >= bestIou) { best = j; bestIou = v; } }
        });
        if (best >= 0) { used.push(best); found += 1; }
      });
      text += " Ground truth: " + named.length + " such apple" + (named.length === 1 ? "" : "s") + ", " + found + " found (mask IoU \u2265 0.5).";
    } else if (det.phrase === "pear") {
      text += " This orchard has no pears: every instance is a false positive.";
    } else {
      text += " (No ground truth for this phrase.)";
    }
    this.readout3.textContent = text;
    this.lastSam3 = {
      phrase: det.phrase, threshold: threshold, count: kept.length, presence: det.presence,
      scores: kept.map(function (k) { return k.score; }), masks: kept.map(function (k) { return k.mask; }),
    };
    this.renderEffort();
  };

  Explorer.prototype.renderEffort = function () {
    var objs = this.sam2Objects.length, n = this.apples.length;
    this.effort.textContent = "Prompts on this image (" + n + " labelled apple" + (n === 1 ? "" : "s") + "): SAM2 "
      + this.sam2Clicks + " click" + (this.sam2Clicks === 1 ? "" : "s") + " for " + objs + " apple" + (objs === 1 ? "" : "s")
      + ", one apple per prompt; SAM3 " + this.phrasesRun.length + " phrase" + (this.phrasesRun.length === 1 ? "" : "s")
      + ", each answered with every instance it finds.";
  };

  // ------------------------------------------------------------------ start

  // Each explorer starts when it comes near the viewport: a reader who never scrolls to it
  // downloads neither the runtime nor the graphs. `ready` resolves once every explorer of the
  // page has started or failed.
  function startOne(root) {
    var ex = new Explorer(root);
    api.explorers.push(ex);
    return ex.start().catch(function (err) {
      var why = String((err && err.message) || err);
      api.errors.push(why);
      root.classList.add("samgap-explorer-failed");
      ex.say("The live explorer could not start here (" + why + "). It needs WebAssembly and the "
        + "book served over http(s); the figure above is the same models' answer, computed when "
        + "the book was built.");
      console.warn("samgap explorer:", err);
    });
  }

  function startAll() {
    var roots = Array.prototype.slice.call(document.querySelectorAll(".samgap-explorer"));
    var started = roots.map(function () {
      var resolve, p = new Promise(function (r) { resolve = r; });
      return { promise: p, resolve: resolve };
    });
    api.ready = Promise.all(started.map(function (s) { return s.promise; }));
    function go(i) {
      if (started[i].going) return;
      started[i].going = true;
      startOne(roots[i]).then(started[i].resolve);
    }
    if (!("IntersectionObserver" in window)) {
      roots.forEach(function (r, i) { go(i); });
      return;
    }
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (e.isIntersecting) {
          seen.unobserve(e.target);
          go(roots.indexOf(e.target));
        }
      });
    }, { rootMargin: "600px" });
    roots.forEach(function (r) { seen.observe(r); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();
