"""orchard-tiny SAM2 and SAM3 as ONNX graphs for the book's in-browser explorer, cached.

`ensure_explorer` exports once per checkpoint and explorer code and returns the folder:

```
<orchard-tiny/<hash>>/explorer/<key>/
  manifest.json        the contract: every graph's inputs and outputs, the steps the page does,
                       thresholds, tolerances, provenance, file sizes and sha256
  expected.json        the PyTorch answers (through samgap_lib.models) the page must reproduce
  tokenizer.json       SAM3's byte-level tokenizer as a table + its steps
  sam2_encoder.onnx sam2_decoder.onnx sam2_box_decoder.onnx
  sam3_vision.onnx sam3_text.onnx sam3_detector.onnx
  images/0.png ...     held-out images at 224 px (ground truth in the manifest, COCO RLE)
```

The graphs (`samgap_lib.explorer.graphs`) go through ``torch.onnx.export(dynamo=True)``
(torch.export, then onnxscript) at opset `OPSET`, every shape static but SAM2's number of
clicks. The TorchScript exporter also works, but torch deprecates it and it leaves
shape-computing ``If`` nodes and dynamic output shapes in the graphs. The exported files are
stripped of the exporter's per-node metadata (stack traces) and duplicate weights (SAM2's mask
decoder runs twice in its graphs), then checked with onnxruntime against the PyTorch graphs and
the library's segmenters before the folder is published; a failed check publishes nothing.

The folder is written into a temporary folder beside it and renamed at the end, under a file
lock, so an interrupted export never leaves a folder that looks finished. ``<key>`` is a hash of
this package's code and of the torch, onnx, onnxscript, onnxruntime and transformers versions: a
change to either exports again (the checkpoints' own hash is the folder above).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..io import file_lock, read_json, write_json
from ..provenance import environment
from .assets import EXPECTED_PHRASES, expected_outputs, explorer_samples, write_images
from .graphs import EXPLORER_SIZE, build_graphs
from .reference import decode_rle
from .tokenizer import tokenizer_table

__all__ = [
    "FORMAT",
    "GRAPHS",
    "OPSET",
    "TOLERANCE",
    "ensure_explorer",
    "explorer_folder",
    "explorer_key",
    "export_explorer",
    "export_graph",
]

FORMAT = "samgap-explorer/1"
OPSET = 18  # onnxruntime(-web) >= 1.14 runs it; every op is in the default ai.onnx domain
_KEY_PACKAGES = ("torch", "onnx", "onnxscript", "onnxruntime", "transformers")

# What each graph's tensors mean, for the manifest (names, dtypes and shapes are read from the
# exported files themselves).
GRAPHS: dict[str, dict[str, Any]] = {
    "sam2_encoder": {
        "run": "once per image",
        "inputs": {"image": "RGB bytes of the shipped image, row-major (ImageData without alpha)"},
        "outputs": {
            "emb_s0": "SAM2 image embedding, level 0 (keep for the decoders)",
            "emb_s1": "level 1",
            "emb": "level 2",
        },
    },
    "sam2_decoder": {
        "run": "once per click, all the object's clicks so far",
        "inputs": {
            "emb_s0": "from sam2_encoder",
            "emb_s1": "from sam2_encoder",
            "emb": "from sam2_encoder",
            "points": "the object's clicks in order, x y in pixels of the image (integers: the "
            "pixel clicked, 0..223), the first click first",
            "labels": "1.0 foreground click, 0.0 background click",
            "prev_low_res": "the previous answer's low_res[0, slot] (zeros at the first click)",
            "has_prev": "[0.0] at the first click, [1.0] after",
        },
        "outputs": {
            "low_res": "low-resolution mask logits of the 4 slots (clamped to +-32)",
            "iou": "predicted IoU of the 4 slots",
            "mask_logits": "mask logits of the 4 slots at image size; mask = logit > 0",
        },
    },
    "sam2_box_decoder": {
        "run": "once per box",
        "inputs": {
            "emb_s0": "from sam2_encoder",
            "emb_s1": "from sam2_encoder",
            "emb": "from sam2_encoder",
            "box": "x0 y0 x1 y1 in pixels of the image (x1, y1: one past the last pixel)",
            "prev_low_res": "zeros (or a previous answer's low_res to refine it)",
            "has_prev": "[0.0] (or [1.0] with prev_low_res)",
        },
        "outputs": {
            "low_res": "as sam2_decoder",
            "iou": "as sam2_decoder",
            "mask_logits": "as sam2_decoder",
        },
    },
    "sam3_vision": {
        "run": "once per image",
        "inputs": {"image": "RGB bytes of the shipped image, row-major"},
        "outputs": {"fpn0": "SAM3 feature level 0", "fpn1": "SAM3 feature level 1"},
    },
    "sam3_text": {
        "run": "once per phrase (reusable on every image)",
        "inputs": {
            "input_ids": "token ids (tokenizer.json's steps)",
            "attention_mask": "1 for real tokens, 0 for padding",
        },
        "outputs": {"text_features": "the phrase's features for sam3_detector"},
    },
    "sam3_detector": {
        "run": "once per (image, phrase)",
        "inputs": {
            "fpn0": "from sam3_vision",
            "fpn1": "from sam3_vision",
            "text_features": "from sam3_text",
            "attention_mask": "the phrase's attention_mask, as given to sam3_text",
        },
        "outputs": {
            "scores": "per query: sigmoid(logit) x presence",
            "presence": "sigmoid(presence_logit): is the concept in the image at all",
            "boxes": "per query: x0 y0 x1 y1 in pixels of the image",
            "masks": "per query: 1 where the mask is on (logit > 0 at image size, cut to the "
            "query's own box), else 0",
            "logits": "raw query logits",
            "presence_logit": "raw presence logit",
            "low_res_masks": "raw low-resolution mask logits",
        },
    },
}

# What the parity tests hold the exported graphs to against the PyTorch segmenters, and what
# the page's own tests may hold onnxruntime-web to against expected.json (another CPU's float
# kernels round differently, so a mask pixel whose logit is within rounding of 0 can flip).
TOLERANCE = {
    "logit_abs": 1e-3,
    "iou_pred_abs": 1e-4,
    "score_abs": 1e-4,
    "presence_abs": 1e-4,
    "box_px_abs": 1e-2,
    "mask_pixels_max": 10,
    "mask_pixels": "a mask may differ from the reference in at most mask_pixels_max pixels, each "
    "where the mask logit at image size is within logit_abs of 0 (SAM2: mask_logits; SAM3: the "
    "query's low_res_masks resized bilinearly, or a box edge within box_px_abs of the pixel)",
    "why": "onnxruntime and PyTorch run the same float32 math with other kernels (other "
    "summation orders, fused multiply-adds; onnxruntime-web's WASM kernels are others again): "
    "measured differences are below 1e-4 on logits and 1e-6 on scores, so masks agree except "
    "at pixels whose logit is that close to 0, and a score that close to the threshold could "
    "change the instance count (none is on the shipped images).",
}


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def explorer_key() -> str:
    """16 hex digits over the code that makes the export (this package but `page`, which only
    shows it) and the exporting/checking packages' versions."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
        if f.name == "page.py":
            continue
        h.update(f.name.encode())
        h.update(f.read_bytes())
    for name, version in _versions().items():
        h.update(f"{name}=={version}".encode())
    return h.hexdigest()[:16]


def explorer_folder(tiny: dict[str, Path]) -> Path:
    """Where `ensure_explorer` keeps the export of these orchard-tiny checkpoints."""
    parents = {Path(p).resolve().parent for p in tiny.values()}
    if len(parents) != 1:
        raise ValueError(
            f"the sam2 and sam3 checkpoints live in different folders ({sorted(map(str, parents))}); "
            "pass the two folders ensure_orchard_tiny() returns."
        )
    return parents.pop() / "explorer" / explorer_key()


# ----------------------------------------------------------------------------- one graph


def _slim(model: Any) -> Any:
    """Strip per-node metadata and doc strings and share duplicate weights (in place)."""
    from onnx import numpy_helper

    graph = model.graph
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
        for attr in node.attribute:
            if attr.g.node or attr.graphs:
                raise ValueError(f"unexpected subgraph in {node.op_type}: not slimmed")
    for vi in (*graph.input, *graph.output, *graph.value_info):
        del vi.metadata_props[:]
    for init in graph.initializer:
        del init.metadata_props[:]
    graph.doc_string = ""
    del model.metadata_props[:]
    seen: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    keep = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        key = (init.data_type, tuple(init.dims), hashlib.sha256(arr.tobytes()).hexdigest())
        if key in seen:
            rename[init.name] = seen[key]
        else:
            seen[key] = init.name
            keep.append(init)
    if rename:
        del graph.initializer[:]
        graph.initializer.extend(keep)
        for node in graph.node:
            node.input[:] = [rename.get(x, x) for x in node.input]
    return model


_DTYPES = {1: "float32", 2: "uint8", 6: "int32", 7: "int64", 9: "bool", 11: "float64"}


def _tensors(values: Any, docs: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for v in values:
        t = v.type.tensor_type
        shape = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
        out.append(
            {
                "name": v.name,
                "dtype": _DTYPES.get(t.elem_type, str(t.elem_type)),
                "shape": shape,
                "meaning": docs.get(v.name, ""),
            }
        )
    return out


def export_graph(
    module: Any,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic: dict[str, dict[int, str]] | None = None,
) -> dict[str, Any]:
    """Export one module to ``path`` (dynamo exporter, `OPSET`), slim and check it.

    Returns
    -------
    dict
        ``inputs`` and ``outputs`` as written in the file (ONNX value infos), the ``ops`` it
        uses and its ``ir_version``.
    """
    import onnx
    import torch

    dynamic_shapes = None
    if dynamic:
        dims: dict[str, Any] = {}
        spec = []
        for name in input_names:
            axes = dynamic.get(name)
            if axes:
                spec.append(
                    {
                        ax: dims.setdefault(label, torch.export.Dim(label, min=1, max=4096))
                        for ax, label in axes.items()
                    }
                )
            else:
                spec.append(None)
        dynamic_shapes = tuple(spec)
    tmp = path.with_suffix(".raw.onnx")
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(tmp),
            input_names=input_names,
            output_names=output_names,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
    model = _slim(onnx.load(str(tmp)))
    tmp.unlink()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return {
        "inputs": list(model.graph.input),
        "outputs": list(model.graph.output),
        "ops": sorted({n.op_type for n in model.graph.node}),
        "ir_version": int(model.ir_version),
    }


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter prints its progress; keep the book build's output clean."""
    import io
    from contextlib import redirect_stdout

    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with redirect_stdout(io.StringIO()):
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


# ----------------------------------------------------------------------------- the folder


def _load(tiny: dict[str, Path], eager: bool = False) -> tuple[Any, Any]:
    from transformers.utils import logging as hf_logging

    from ..models import load_sam2, load_sam3

    sam2 = load_sam2(tiny["sam2"], device="cpu")
    sam3 = load_sam3(tiny["sam3"], device="cpu")
    if eager:  # torch.onnx's dynamo path cannot decompose SAM3's sdpa; eager is the same math
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            sam3.model.set_attn_implementation("eager")
        finally:
            hf_logging.set_verbosity(verbosity)
    return sam2, sam3


def _examples(graphs: dict[str, Any], image: np.ndarray, sam3: Any) -> dict[str, tuple]:
    """Example inputs of every graph (SAM2's clicks: two, so the count stays symbolic)."""
    import torch

    img = torch.from_numpy(np.ascontiguousarray(image))
    with torch.no_grad():
        e = graphs["sam2_encoder"](img)
        f = graphs["sam3_vision"](img)
        tok = sam3.tokenize(["ripe apple"])
        ids, am = tok["input_ids"].to(torch.int32), tok["attention_mask"].to(torch.int32)
        t = graphs["sam3_text"](ids, am)
    h, w = graphs["sam2_decoder"].mask_hw
    prev, flag = torch.zeros(1, 1, h, w), torch.zeros(1)
    pts, lab = torch.tensor([[[100.0, 100.0], [50.0, 60.0]]]), torch.tensor([[1.0, 0.0]])
    box = torch.tensor([[40.0, 50.0, 90.0, 120.0]])
    return {
        "sam2_encoder": (img,),
        "sam2_decoder": (*e, pts, lab, prev, flag),
        "sam2_box_decoder": (*e, box, prev, flag),
        "sam3_vision": (img,),
        "sam3_text": (ids, am),
        "sam3_detector": (*f, t, am),
    }


_NAMES = {
    "sam2_encoder": (["image"], ["emb_s0", "emb_s1", "emb"]),
    "sam2_decoder": (
        ["emb_s0", "emb_s1", "emb", "points", "labels", "prev_low_res", "has_prev"],
        ["low_res", "iou", "mask_logits"],
    ),
    "sam2_box_decoder": (
        ["emb_s0", "emb_s1", "emb", "box", "prev_low_res", "has_prev"],
        ["low_res", "iou", "mask_logits"],
    ),
    "sam3_vision": (["image"], ["fpn0", "fpn1"]),
    "sam3_text": (["input_ids", "attention_mask"], ["text_features"]),
    "sam3_detector": (
        ["fpn0", "fpn1", "text_features", "attention_mask"],
        ["scores", "presence", "boxes", "masks", "logits", "presence_logit", "low_res_masks"],
    ),
}
_DYNAMIC = {"sam2_decoder": {"points": {1: "num_points"}, "labels": {1: "num_points"}}}


def _check_graphs(folder: Path, graphs: dict[str, Any], examples: dict[str, tuple]) -> dict:
    """Largest |onnxruntime - PyTorch graph| per graph output on the export's examples."""
    import torch

    from .runtime import session

    out: dict[str, dict[str, float]] = {}
    for name, args in examples.items():
        ins, outs = _NAMES[name]
        sess = session(folder / f"{name}.onnx")
        feed = {k: a.numpy() for k, a in zip(ins, args, strict=True)}
        got = sess.run(outs, feed)
        with torch.no_grad():
            want = graphs[name](*args)
        want = want if isinstance(want, tuple) else (want,)
        out[name] = {
            k: float(np.abs(g.astype(np.float64) - w.numpy().astype(np.float64)).max())
            for k, g, w in zip(outs, got, want, strict=True)
        }
        floats = [d for k, d in out[name].items() if k != "masks"]  # masks: 0/1, may flip
        if max(floats) > 1e-2:
            raise RuntimeError(
                f"{name}: onnxruntime differs from PyTorch by {out[name]}; the export is not "
                f"published. The exporter or runtime versions may disagree: {_versions()}."
            )
    return out


def _check_expected(folder: Path, expected: dict, image: np.ndarray) -> dict[str, float]:
    """The exported graphs, run as the page runs them, against ``expected`` (the library)."""
    from .runtime import OnnxExplorer

    ex = OnnxExplorer(folder)
    emb = ex.sam2_embeddings(image)
    s2 = expected["sam2"]
    first = ex.sam2_click(emb, s2["first_click"]["points"], s2["first_click"]["labels"])
    second = ex.sam2_click(
        emb, s2["second_click"]["points"], s2["second_click"]["labels"], first["low_res"]
    )
    boxed = ex.sam2_box(emb, s2["box"]["box"])
    pixels, dpred = [], []
    for got, want in ((first, s2["first_click"]), (second, s2["second_click"]), (boxed, s2["box"])):
        if got["slot"] != want["slot"]:
            raise RuntimeError(
                f"the SAM2 graph answers with slot {got['slot']}, the library with "
                f"{want['slot']}; the export is not published ({_versions()})."
            )
        pixels.append(int((got["mask"] != decode_rle(want["mask"])).sum()))
        dpred.append(abs(got["iou_pred"] - want["iou_pred"]))
    feats = ex.sam3_features(image)
    counts_equal, dscore, sam3_pixels = True, 0.0, []
    for phrase, want in expected["sam3"].items():
        got = ex.sam3_segment(feats, ex.sam3_text(phrase))
        counts_equal &= len(got["scores"]) == want["count"]
        if len(got["scores"]) == want["count"]:
            dscore = max([dscore, *np.abs(got["scores"] - np.array(want["scores"])).tolist()])
            sam3_pixels += [
                int((m != decode_rle(r)).sum())
                for m, r in zip(got["masks"], want["masks"], strict=True)
            ]
    result = {
        "sam2_max_mask_pixels_differing": max(pixels),
        "sam2_max_iou_pred_diff": float(max(dpred)),
        "sam3_counts_equal": bool(counts_equal),
        "sam3_max_mask_pixels_differing": max(sam3_pixels, default=0),
        "sam3_max_score_diff": float(dscore),
    }
    limit = TOLERANCE["mask_pixels_max"]
    if (
        not counts_equal
        or result["sam2_max_mask_pixels_differing"] > limit
        or result["sam3_max_mask_pixels_differing"] > limit
    ):
        raise RuntimeError(
            f"the exported graphs do not reproduce the library: {result}; the export is not "
            f"published ({_versions()})."
        )
    return result


def _checkpoint(folder: Path) -> dict[str, Any]:
    folder = folder.resolve()
    card = read_json(folder / "card.json")
    keep = ("name", "arch", "params", "steps", "code_hash", "wall_time_s", "device_name")
    weights = {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.glob("*.safetensors"))
    }
    return {
        "folder": str(folder),
        "orchard_tiny_hash": folder.parent.name,
        "weights_sha256": weights,
        **{k: card.get(k) for k in keep},
        "held_out_metrics": card.get("held_out", {}).get("metrics"),
    }


def _file_entry(folder: Path, rel: str) -> dict[str, Any]:
    data = (folder / rel).read_bytes()
    return {"file": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def export_explorer(
    folder: str | os.PathLike,
    tiny: dict[str, Path],
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Write the whole explorer folder (graphs, tokenizer, images, expected outputs, manifest
    last) into ``folder``; returns the manifest. `ensure_explorer` calls it on a temporary
    folder."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    samples = explorer_samples()
    image = samples[0].image
    # the answers come from the library's own segmenters (sdpa attention), not the graphs
    ref2, ref3 = _load(tiny)
    expected = expected_outputs(ref2, ref3, samples[0])
    write_json(expected, folder / "expected.json", indent=1)
    sam2, sam3 = _load(tiny, eager=True)
    graphs = build_graphs(sam2, sam3, EXPLORER_SIZE)
    examples = _examples(graphs, image, sam3)
    entries: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name, module in graphs.items():
        t0 = time.perf_counter()
        ins, outs = _NAMES[name]
        io_ = export_graph(
            module, examples[name], folder / f"{name}.onnx", ins, outs, _DYNAMIC.get(name)
        )
        seconds[name] = round(time.perf_counter() - t0, 2)
        doc = GRAPHS[name]
        entries[name] = {
            **_file_entry(folder, f"{name}.onnx"),
            "run": doc["run"],
            "inputs": _tensors(io_["inputs"], doc["inputs"]),
            "outputs": _tensors(io_["outputs"], doc["outputs"]),
            "onnx": {"opset": OPSET, "ir_version": io_["ir_version"], "ops": io_["ops"]},
        }
        log(f"explorer: {name} exported in {seconds[name]} s ({entries[name]['bytes']} bytes)")
    write_json(tokenizer_table(ref3.processor.tokenizer), folder / "tokenizer.json", indent=1)
    images = write_images(samples, folder)
    manifest = _manifest(folder, tiny, ref2, ref3, entries, images, seconds, t_start)
    # the checks read the manifest: write it, check, then write it again with their numbers
    write_json(manifest, folder / "manifest.json", indent=1)
    manifest["checks"] = {
        "graphs_vs_pytorch_max_abs": _check_graphs(folder, graphs, examples),
        "page_vs_expected": _check_expected(folder, expected, image),
    }
    manifest["export"]["seconds"] = round(time.perf_counter() - t_start, 1)
    write_json(manifest, folder / "manifest.json", indent=1)
    return manifest


def _manifest(
    folder: Path,
    tiny: dict[str, Path],
    sam2: Any,
    sam3: Any,
    entries: dict[str, Any],
    images: list[dict[str, Any]],
    seconds: dict[str, float],
    t_start: float,
) -> dict[str, Any]:
    import torch

    mask_hw = [int(s) for s in sam2.inner.mask_input_size]
    versions = _versions()
    return {
        "format": FORMAT,
        "image_size": [EXPLORER_SIZE, EXPLORER_SIZE],
        "graphs": entries,
        "sam2": {
            "model_input_size": int(sam2.inner.input_size),
            "mask_input_size": mask_hw,
            "dense_prompt": {
                "radius": sam2.radius,
                "first_radius": sam2.first_radius,
                "logit": sam2.logit,
                "drawn": "in-graph (the clicks and the box into the mask prompt)",
            },
            "slots": {"single": 0, "candidates": [1, 2, 3]},
            "mask_threshold_logit": 0.0,
            "steps": [
                "image: run sam2_encoder once; keep emb_s0, emb_s1, emb.",
                "first click of an object (x, y integer pixels, label 1): sam2_decoder with "
                "points [[x, y]], labels [1], prev_low_res zeros [1,1,h,w], has_prev [0]; "
                "slot = 1 + argmax(iou[0][1..3]) (three candidates, the highest predicted IoU "
                "kept).",
                "every later click: append (x, y, label 1 or 0) to the object's clicks (all of "
                "them, in order: the first stays first, it is drawn wider); sam2_decoder with "
                "prev_low_res = the previous answer's low_res[0][slot], has_prev [1]; slot = 0.",
                "box (x0, y0, x1, y1): sam2_box_decoder with prev zeros, has_prev [0]; slot = 0.",
                "answer: mask = mask_logits[0][slot] > 0 (image pixels), predicted IoU = "
                "iou[0][slot]; keep low_res[0][slot] for the next click.",
            ],
        },
        "sam3": {
            "tokenizer": "tokenizer.json",
            "text_max_length": int(tokenizer_table(sam3.processor.tokenizer)["max_length"]),
            "threshold": float(sam3.threshold),
            "mask_threshold": float(sam3.mask_threshold),
            "mask_in_box": bool(sam3.mask_in_box),
            "nms_iou": sam3.nms_iou,
            "steps": [
                "image: run sam3_vision once; keep fpn0, fpn1.",
                "phrase: tokenize by tokenizer.json's steps -> input_ids, attention_mask "
                "(int32 [1, 32]); run sam3_text once; keep text_features (valid for every "
                "image).",
                "(image, phrase): run sam3_detector(fpn0, fpn1, text_features, attention_mask).",
                "instances: keep queries q with scores[0][q] > threshold; order them by "
                "decreasing score (stable).",
                "mask_in_box is done in-graph: masks[0][q] is already cut to boxes[0][q].",
                "NMS (nms_iou not null): walk that order; drop q when, for a kept j, "
                "|m_q & m_j| / |m_q | m_j| >= nms_iou (pixel counts of masks[0][q] != 0; an "
                "empty union is IoU 0).",
                "show: per kept q its mask, boxes[0][q] (x0 y0 x1 y1 pixels) and scores[0][q]; "
                "the phrase's presence[0].",
            ],
            "phrases_suggested": list(EXPECTED_PHRASES),
        },
        "images": images,
        "rle": "COCO compressed RLE (pycocotools): counts is a string, column-major pixel "
        "order, runs alternately off/on starting with off; decoder: "
        "samgap_lib.explorer.reference.decode_rle",
        "expected": "expected.json",
        "tolerance": TOLERANCE,
        "checkpoints": {m: _checkpoint(Path(p)) for m, p in tiny.items()},
        "export": {
            "exporter": "torch.onnx.export(dynamo=True): torch.export, then onnxscript",
            "opset": OPSET,
            "key": explorer_key(),
            "versions": versions,
            "torch_threads": torch.get_num_threads(),
            "seconds_per_graph": seconds,
            "seconds": round(time.perf_counter() - t_start, 1),
            "sam3_attention": "eager in the graphs (torch.onnx's dynamo path cannot decompose "
            "sdpa there); the same math as the library's sdpa",
            "created_by": "samgap_lib.explorer.ensure_explorer",
        },
        "provenance": environment("cpu"),
    }


# ----------------------------------------------------------------------------- the cache


def _readable(folder: Path) -> None:
    """Files as a static web server can serve them (temporary files are private): the modes
    of newly created ones under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    for p in (folder, *folder.rglob("*")):
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


def ensure_explorer(tiny: dict[str, Path] | None = None, verbose: bool = True) -> Path:
    """The explorer folder of the orchard-tiny checkpoints, exported first if not cached.

    Parameters
    ----------
    tiny
        ``{"sam2": folder, "sam3": folder}`` as `samgap_lib.training.ensure_orchard_tiny`
        returns (default: it is called, training the models first if they are not cached).
    verbose
        Print one line per exported graph.

    Returns
    -------
    Path
        ``<checkpoints' folder>/explorer/<explorer_key()>``, with ``manifest.json`` (written
        last) and the files it names.
    """
    if tiny is None:
        from ..training import ensure_orchard_tiny

        tiny = ensure_orchard_tiny(models=("sam2", "sam3"), verbose=verbose)
    target = explorer_folder(tiny)
    if (target / "manifest.json").is_file():
        return target

    def log(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    with file_lock(target.parent / f".{target.name}.lock"):
        if (target / "manifest.json").is_file():
            return target
        if target.exists():  # a folder without its manifest is not a finished export
            shutil.rmtree(target)
        for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a killed export
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        try:
            log(f"explorer: exporting orchard-tiny to ONNX into {target} ...")
            manifest = export_explorer(tmp, tiny, log)
            _readable(tmp)
            os.rename(tmp, target)
            log(f"explorer: done in {manifest['export']['seconds']} s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
