"""The explorer's ONNX export (samgap_lib.explorer) against the library it stands in for.

Unit parts (no checkpoint): the in-graph image pre-processing equals the transformers image
processor bit for bit, the torch twin of the dense prompt drawing equals the numpy one, the
page's tokenizer steps equal the transformers tokenizer, its RLE decoder pycocotools', its SAM3
post-processing the library's.

Parity (the real orchard-tiny checkpoints, exported once by `ensure_explorer` and cached beside
them): the graphs run in onnxruntime (CPU, one thread) as the page runs them, against
`load_sam2` / `load_sam3` in PyTorch on held-out images. Tolerances are the manifest's
(`samgap_lib.explorer.TOLERANCE`): a mask pixel may differ only where its logit is within
``logit_abs`` of the cut. Each parity test prints its largest differences (``pytest -s``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from samgap_lib.explorer import TOLERANCE, OnnxExplorer, ensure_explorer
from samgap_lib.explorer import export as export_mod
from samgap_lib.explorer.assets import first_clicks
from samgap_lib.explorer.graphs import ProcessorInput, draw_dense_prompts_torch
from samgap_lib.explorer.reference import decode_rle, mask_iou_counts, sam2_slot, sam3_instances
from samgap_lib.explorer.tokenizer import encode_phrase, tokenizer_table
from samgap_lib.models.dense import draw_dense_prompts
from samgap_lib.models.upsample import bilinear_matrix

TOL = TOLERANCE


# ----------------------------------------------------------------------------- unit


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 3),
    p=st.integers(1, 6),
    hw=st.sampled_from([((224, 224), (64, 64)), ((128, 128), (64, 64)), ((200, 150), (32, 48))]),
    first=st.sampled_from([None, 3.0, 2.5]),
    radius=st.sampled_from([1.5, 1.0, 2.2]),
    with_box=st.booleans(),
    with_prev=st.booleans(),
)
def test_dense_twin_equals_draw_dense_prompts(seed, n, p, hw, first, radius, with_box, with_prev):
    """Clicks at integer pixels (what the page sends), inside the image or a little outside."""
    rng = np.random.default_rng(seed)
    (ih, iw), mask_hw = hw
    pts = np.stack([rng.integers(-4, iw + 4, (n, p)), rng.integers(-4, ih + 4, (n, p))], -1)
    pts = pts.astype(np.float32)
    lab = rng.choice([1, 0, -1], (n, p), p=[0.5, 0.4, 0.1])
    boxes = None
    if with_box:
        x = np.sort(rng.integers(-3, iw + 3, (n, 2)), 1)
        y = np.sort(rng.integers(-3, ih + 3, (n, 2)), 1)
        boxes = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1).astype(np.float32)
    prev = rng.normal(0, 15, (n, 1, *mask_hw)).astype(np.float32) if with_prev else None
    want = draw_dense_prompts(pts, lab, boxes, prev, (ih, iw), mask_hw, radius, 10.0, first)
    got = draw_dense_prompts_torch(
        torch.from_numpy(pts),
        torch.from_numpy(lab.astype(np.float32)),
        None if boxes is None else torch.from_numpy(boxes),
        None if prev is None else torch.from_numpy(prev),
        None if prev is None else torch.ones(n),
        (ih, iw),
        mask_hw,
        radius,
        10.0,
        first,
    ).numpy()
    np.testing.assert_array_equal(got, want)
    # has_prev = 0 with logits given draws as if none were given (the page's first click)
    if prev is not None:
        base = draw_dense_prompts(pts, lab, boxes, None, (ih, iw), mask_hw, radius, 10.0, first)
        off = draw_dense_prompts_torch(
            torch.from_numpy(pts),
            torch.from_numpy(lab.astype(np.float32)),
            None if boxes is None else torch.from_numpy(boxes),
            torch.from_numpy(prev),
            torch.zeros(n),
            (ih, iw),
            mask_hw,
            radius,
            10.0,
            first,
        ).numpy()
        np.testing.assert_array_equal(off, base)


@pytest.mark.parametrize("kind,size,mask", [("sam2", 256, 64), ("sam3", 224, 32)])
@pytest.mark.parametrize("image_size", [224, 200, 300])
def test_in_graph_preprocessing_is_the_image_processor_bit_for_bit(kind, size, mask, image_size):
    """torch resizes uint8 images in fixed point (int16 weights, rounded to uint8 per pass);
    the graph repeats that arithmetic exactly in float32, then the fused rescale-normalise."""
    from samgap_lib.models.archs import image_processor

    proc = image_processor(kind, size, mask)
    pre = ProcessorInput((image_size, image_size), proc)
    rng = np.random.default_rng(image_size)
    for _ in range(3):
        img = rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
        want = proc(images=[img], return_tensors="pt")["pixel_values"]
        got = pre(torch.from_numpy(img))
        assert got.shape == want.shape
        assert torch.equal(got, want)


_TEXT = st.lists(
    st.one_of(
        st.characters(max_codepoint=0x4FF, blacklist_categories=("Cs", "Cn")),
        st.sampled_from(list(" \t\n\x85\xa0\u3000\ufeff'!.,-0123456789")),
        st.sampled_from(["<|endoftext|>", "<|startoftext|>", "<|StartOfText|>", "'re", "'S"]),
    ),
    max_size=40,
).map("".join)


@pytest.fixture(scope="module")
def clip_tokenizer():
    from samgap_lib.models.archs import byte_level_clip_tokenizer

    return byte_level_clip_tokenizer()


def _hf_encode(tok, phrase):
    out = tok([phrase], padding="max_length", max_length=32, truncation=True)
    return out["input_ids"][0], out["attention_mask"][0]


@settings(max_examples=300, deadline=None)
@given(phrase=_TEXT)
def test_page_tokenizer_steps_equal_the_transformers_tokenizer(clip_tokenizer, phrase):
    table = tokenizer_table(clip_tokenizer)
    assert encode_phrase(phrase, table) == _hf_encode(clip_tokenizer, phrase)


def test_tokenizer_table_is_the_fixed_length_byte_table(clip_tokenizer):
    table = tokenizer_table(clip_tokenizer)
    assert table["max_length"] == 32
    assert (table["bos_id"], table["eos_id"], table["pad_id"]) == (512, 513, 513)
    ids = table["byte_ids"] + table["byte_ids_end_of_word"]
    assert sorted(ids) == list(range(512))
    for phrase in ("ripe apple", "x" * 50, "", "apple<|endoftext|>pear"):
        assert encode_phrase(phrase, table) == _hf_encode(clip_tokenizer, phrase)
    assert encode_phrase("ripe apple", table)[0][:11] == [
        512,
        81,
        72,
        79,
        324,
        64,
        79,
        79,
        75,
        324,
        513,
    ]


def test_rle_decoder_is_pycocotools():
    from samgap_lib.data.coco import mask_to_rle, rle_to_mask

    rng = np.random.default_rng(0)
    for h, w in [(224, 224), (7, 13), (1, 1), (40, 3)]:
        for p in (0.0, 0.02, 0.5, 1.0):
            m = rng.random((h, w)) < p
            if p == 0.02:  # blobs: long runs, multi-character counts
                m[h // 4 : h // 2, w // 3 : w // 2] = True
            rle = mask_to_rle(m)
            np.testing.assert_array_equal(decode_rle(rle), rle_to_mask(rle))
            np.testing.assert_array_equal(decode_rle(rle), m)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), q=st.integers(1, 12), nms=st.sampled_from([0.5, 0.3, None]))
def test_page_sam3_postprocessing_is_the_library(seed, q, nms):
    """Threshold, order, mask NMS on masks already cut to their boxes (in-graph) equal
    `postprocess_prediction` (mask_in_box, then NMS) on the thresholded instances."""
    from samgap_lib.models.base import ConceptPrediction
    from samgap_lib.models.postprocess import clip_masks_to_boxes, postprocess_prediction

    rng = np.random.default_rng(seed)
    h = w = 24
    scores = rng.random(q).astype(np.float32)
    x = np.sort(rng.uniform(-2, w + 2, (q, 2)), 1)
    y = np.sort(rng.uniform(-2, h + 2, (q, 2)), 1)
    boxes = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1).astype(np.float32)
    base = rng.random((3, h, w)) < 0.4  # a few shapes, so duplicates occur
    masks = base[rng.integers(0, 3, q)] | (rng.random((q, h, w)) < 0.05)
    got = sam3_instances(scores, boxes, clip_masks_to_boxes(masks, boxes), 0.5, nms)
    keep = np.flatnonzero(scores > 0.5)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    pred = ConceptPrediction("p", masks[keep], boxes[keep], scores[keep], 1.0)
    want = postprocess_prediction(pred, mask_in_box=True, nms_iou=nms)
    np.testing.assert_array_equal(got["scores"], want.scores)
    np.testing.assert_array_equal(got["boxes"], want.boxes)
    np.testing.assert_array_equal(got["masks"], want.masks)


def test_sam2_slot():
    assert sam2_slot(np.array([0.9, 0.1, 0.7, 0.3]), multimask=True) == 2
    assert sam2_slot(np.array([0.1, 0.5, 0.5, 0.3]), multimask=True) == 1  # first on ties
    assert sam2_slot(np.array([0.9, 0.1, 0.7, 0.3]), multimask=False) == 0
    with pytest.raises(ValueError, match="4 predicted"):
        sam2_slot(np.zeros(3), multimask=True)


# ----------------------------------------------------------------------------- the cache


def _fake_tiny(tmp_path: Path) -> dict[str, Path]:
    for m in ("sam2", "sam3"):
        (tmp_path / "ckpt" / m).mkdir(parents=True)
    return {m: tmp_path / "ckpt" / m for m in ("sam2", "sam3")}


def test_an_interrupted_export_publishes_nothing(tmp_path, monkeypatch):
    tiny = _fake_tiny(tmp_path)
    target = export_mod.explorer_folder(tiny)
    calls = []

    def interrupted(folder, tiny, log):
        calls.append(folder)
        (Path(folder) / "sam2_encoder.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(export_mod, "export_explorer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_explorer(tiny, verbose=False)
    assert not target.exists()
    assert not list(target.parent.glob(f".{target.name}.tmp-*"))  # cleaned up
    # what a killed process leaves: a temporary folder, and (older code) a folder w/o manifest
    (target.parent / f".{target.name}.tmp-killed").mkdir()
    target.mkdir()
    (target / "sam2_encoder.onnx").write_bytes(b"half")

    def complete(folder, tiny, log):
        calls.append(folder)
        (Path(folder) / "manifest.json").write_text("{}")
        return {"export": {"seconds": 0.0}}

    monkeypatch.setattr(export_mod, "export_explorer", complete)
    assert ensure_explorer(tiny, verbose=False) == target
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json"]
    assert not list(target.parent.glob(f".{target.name}.tmp-*"))
    assert Path(calls[-1]) != target  # written elsewhere, then renamed

    def fail(folder, tiny, log):
        raise AssertionError("exported again")

    monkeypatch.setattr(export_mod, "export_explorer", fail)
    assert ensure_explorer(tiny, verbose=False) == target  # cached


def test_the_cache_key_follows_the_explorer_code(monkeypatch):
    before = export_mod.explorer_key()
    target = Path(export_mod.__file__).resolve()
    original = Path.read_bytes

    def read_bytes(self):
        data = original(self)
        return data + b"\n# changed" if self == target else data

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert export_mod.explorer_key() != before


# ----------------------------------------------------------------------------- parity


def _trained_tiny() -> dict[str, Path]:
    """The orchard-tiny checkpoints of this code, or a skip (training takes minutes: `make
    models` trains them, as `make test` does before the tests)."""
    from samgap_lib.io import cache_root
    from samgap_lib.training import ensure_orchard_tiny
    from samgap_lib.training.orchard_tiny import orchard_tiny_hash

    base = cache_root() / "orchard-tiny" / orchard_tiny_hash()
    if not all((base / m / "card.json").is_file() for m in ("sam2", "sam3")):
        pytest.skip(f"orchard-tiny is not trained for this code ({base}): run `make models`")
    return ensure_orchard_tiny(models=("sam2", "sam3"), verbose=False)


@pytest.fixture(scope="module")
def tiny():
    return _trained_tiny()


@pytest.fixture(scope="module")
def folder(tiny):
    return ensure_explorer(tiny, verbose=False)


@pytest.fixture(scope="module")
def onnx_explorer(folder):
    return OnnxExplorer(folder, threads=1)


@pytest.fixture(scope="module")
def library(tiny):
    from samgap_lib.models import load_sam2, load_sam3

    return load_sam2(tiny["sam2"], device="cpu"), load_sam3(tiny["sam3"], device="cpu")


@pytest.fixture(scope="module")
def samples():
    from samgap_lib.explorer.assets import explorer_samples

    return explorer_samples(3)


def _mask_diff(got_logits: np.ndarray, want: np.ndarray) -> tuple[int, float]:
    """Pixels where the page's mask (logit > 0) differs from ``want``, and the largest |logit|
    among them (0 when none)."""
    diff = (got_logits > 0) != want
    return int(diff.sum()), float(np.abs(got_logits[diff]).max()) if diff.any() else 0.0


@pytest.mark.slow
def test_the_manifest_describes_the_files(folder, onnx_explorer, tiny):
    m = json.loads((folder / "manifest.json").read_text())
    assert m["format"] == "samgap-explorer/1" and m["image_size"] == [224, 224]
    assert set(m["graphs"]) == {
        "sam2_encoder",
        "sam2_decoder",
        "sam2_box_decoder",
        "sam3_vision",
        "sam3_text",
        "sam3_detector",
    }
    dtypes = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int32)": "int32"}
    for name, g in m["graphs"].items():
        data = (folder / g["file"]).read_bytes()
        assert g["bytes"] == len(data) and g["sha256"] == hashlib.sha256(data).hexdigest()
        sess = onnx_explorer.sessions[name]
        for declared, actual in (
            (g["inputs"], sess.get_inputs()),
            (g["outputs"], sess.get_outputs()),
        ):
            assert [d["name"] for d in declared] == [a.name for a in actual]
            assert [d["dtype"] for d in declared] == [dtypes[a.type] for a in actual]
            assert [d["shape"] for d in declared] == [a.shape for a in actual]
            assert all(d["meaning"] for d in declared), name
    assert m["sam3"]["text_max_length"] == 32 and m["sam3"]["mask_in_box"] is True
    assert m["sam3"]["nms_iou"] == 0.5 and m["sam3"]["threshold"] == 0.5
    assert m["sam2"]["dense_prompt"] == {
        "radius": 1.5,
        "first_radius": 3.0,
        "logit": 10.0,
        "drawn": "in-graph (the clicks and the box into the mask prompt)",
    }
    for model, ckpt in tiny.items():
        weights = m["checkpoints"][model]["weights_sha256"]["model.safetensors"]
        assert weights == hashlib.sha256((ckpt / "model.safetensors").read_bytes()).hexdigest()
    assert m["checks"]["page_vs_expected"]["sam3_counts_equal"] is True
    # the images: PNG decodes to the held-out RGB bytes; ground truth RLE to their masks
    from PIL import Image

    from samgap_lib.explorer.assets import explorer_samples

    shipped = explorer_samples(len(m["images"]))
    for entry, sample in zip(m["images"], shipped, strict=True):
        rgb = np.asarray(Image.open(folder / entry["file"]).convert("RGB"))
        np.testing.assert_array_equal(rgb, sample.image)
        assert entry["rgb_sha256"] == hashlib.sha256(rgb.tobytes()).hexdigest()
        gt = np.stack([decode_rle(a["rle"]) for a in entry["apples"]])
        np.testing.assert_array_equal(gt, sample.masks)
        assert [a["ripeness"] for a in entry["apples"]] == [
            i.attributes["ripeness"] for i in sample.instances
        ]
    tok = json.loads((folder / m["sam3"]["tokenizer"]).read_text())
    assert tok["max_length"] == 32


@pytest.mark.slow
def test_sam2_clicks_and_boxes_match_the_library(onnx_explorer, library, samples):
    """First click (3 candidates, the best kept), a correction click with the previous
    logits, and a box, on every instance of 3 held-out images."""
    from samgap_lib.prompts import boxes_from_masks

    sam2, _ = library
    worst = {"pixels": 0, "pixel_logit": 0.0, "low_res": 0.0, "iou": 0.0, "n": 0}
    for s in samples:
        sam2.set_image(s.image)
        emb = onnx_explorer.sam2_embeddings(s.image)
        for gt in s.masks:
            pts, lab, clicker = first_clicks(gt)
            lib = sam2.predict(points=pts, point_labels=lab.astype(np.int64), multimask=True)
            got = onnx_explorer.sam2_click(emb, pts, lab)
            out = got["outputs"]
            assert got["slot"] == 1 + int(lib.scores[0].argmax())
            np.testing.assert_allclose(out["iou"][0, 1:], lib.scores[0], atol=TOL["iou_pred_abs"])
            for c in range(3):  # every candidate, not only the kept one
                px, lg = _mask_diff(out["mask_logits"][0, 1 + c], lib.masks[0, c])
                assert lg < TOL["logit_abs"] and px <= TOL["mask_pixels_max"], (px, lg)
                worst["pixels"], worst["pixel_logit"] = (
                    max(worst["pixels"], px),
                    max(worst["pixel_logit"], lg),
                )
            low_diff = np.abs(out["low_res"][0, 1:] - lib.low_res_logits[0]).max()
            assert low_diff < TOL["logit_abs"]
            k = got["slot"] - 1
            pts2, lab2, _ = first_clicks(gt, lib.masks[0, k], clicker)
            lib2 = sam2.predict(
                points=pts2,
                point_labels=lab2.astype(np.int64),
                mask_input=lib.low_res_logits[:, k],
                multimask=False,
            )
            got2 = onnx_explorer.sam2_click(emb, pts2, lab2, got["low_res"])
            assert got2["slot"] == 0
            box = boxes_from_masks(gt[None]).astype(np.float32)
            lib3 = sam2.predict(boxes=box, multimask=False)
            got3 = onnx_explorer.sam2_box(emb, box[0])
            for g, want in ((got2, lib2), (got3, lib3)):
                assert abs(g["iou_pred"] - float(want.scores[0])) < TOL["iou_pred_abs"]
                px, lg = _mask_diff(g["mask_logits"], want.masks[0])
                assert lg < TOL["logit_abs"] and px <= TOL["mask_pixels_max"], (px, lg)
                d = float(np.abs(g["low_res"] - want.low_res_logits[0]).max())
                assert d < TOL["logit_abs"]
                worst["pixels"] = max(worst["pixels"], px)
                worst["pixel_logit"] = max(worst["pixel_logit"], lg)
                worst["low_res"] = max(worst["low_res"], d)
                worst["iou"] = max(worst["iou"], abs(g["iou_pred"] - float(want.scores[0])))
            worst["low_res"] = max(worst["low_res"], float(low_diff))
            worst["n"] += 1
    print(f"\nSAM2 parity over {worst['n']} objects x 3 prompts: {worst}")


@pytest.mark.slow
def test_sam2_decoder_takes_any_number_of_clicks(onnx_explorer, library, samples):
    """Eight RITM rounds on one apple: the click count is the graph's one dynamic axis."""
    from samgap_lib.evaluation import click_loop

    sam2, _ = library
    s = samples[1]
    gt = s.masks[int(np.argmax(s.masks.reshape(len(s.masks), -1).sum(1)))]
    sam2.set_image(s.image)
    emb = onnx_explorer.sam2_embeddings(s.image)

    def lib_fn(points, labels, prev):
        multi = prev is None
        res = sam2.predict(
            points=points[None].astype(np.float32),
            point_labels=labels[None],
            mask_input=None if multi else prev,
            multimask=multi,
        )
        k = int(res.scores[0].argmax()) if multi else None
        low = res.low_res_logits[:, k] if multi else res.low_res_logits
        return (res.masks[0, k] if multi else res.masks[0]), low

    def page_fn(points, labels, prev):
        got = onnx_explorer.sam2_click(emb, points, labels, prev)
        return got["mask"], got["low_res"]

    want = click_loop(lib_fn, gt, max_clicks=8)
    got = click_loop(page_fn, gt, max_clicks=8)
    np.testing.assert_allclose(got, want, atol=2e-3)  # IoU after each click


@pytest.mark.slow
def test_sam3_phrases_match_the_library(onnx_explorer, library, samples):
    """ "ripe apple", "unripe apple", "apple", "pear" on 3 held-out images, post-processed as
    the checkpoint asks (mask in box in-graph, NMS on the page)."""
    _, sam3 = library
    h, w = samples[0].image.shape[:2]
    worst = {"pixels": 0, "pixel_logit": 0.0, "score": 0.0, "presence": 0.0, "box": 0.0}
    texts = {p: onnx_explorer.sam3_text(p) for p in ("ripe apple", "unripe apple", "apple", "pear")}
    counts = []
    for s in samples:
        feats = onnx_explorer.sam3_features(s.image)
        sam3.set_image(s.image)
        for phrase, text in texts.items():
            want = sam3.segment(phrases=[phrase])[phrase]
            got = onnx_explorer.sam3_segment(feats, text)
            counts.append(len(want))
            assert len(got["scores"]) == len(want), phrase
            assert abs(got["presence"] - want.presence) < TOL["presence_abs"]
            np.testing.assert_allclose(got["scores"], want.scores, atol=TOL["score_abs"])
            np.testing.assert_allclose(got["boxes"], want.boxes, atol=TOL["box_px_abs"])
            low = got["outputs"]["low_res_masks"][0]
            ay, ax = (
                bilinear_matrix(low.shape[-2], h).numpy(),
                bilinear_matrix(low.shape[-1], w).numpy(),
            )
            for q, gm, wm in zip(got["queries"], got["masks"], want.masks, strict=True):
                diff = gm != wm
                logit = ay @ low[q] @ ax.T
                lg = float(np.abs(logit[diff]).max()) if diff.any() else 0.0
                assert lg < TOL["logit_abs"], (phrase, int(diff.sum()), lg)
                assert diff.sum() <= TOL["mask_pixels_max"]
                worst["pixels"] = max(worst["pixels"], int(diff.sum()))
                worst["pixel_logit"] = max(worst["pixel_logit"], lg)
            worst["score"] = max([worst["score"], *np.abs(got["scores"] - want.scores).tolist()])
            worst["presence"] = max(worst["presence"], abs(got["presence"] - want.presence))
            if len(want):
                worst["box"] = max(worst["box"], float(np.abs(got["boxes"] - want.boxes).max()))
    assert sum(counts) > 5  # the images do hold apples the model finds
    print(f"\nSAM3 parity over {len(counts)} (image, phrase) pairs: {worst}, counts {counts}")


@pytest.mark.slow
def test_expected_json_is_reproduced_by_the_graphs(folder, onnx_explorer):
    """What the page's own test checks in the browser, here with onnxruntime in Python."""
    from PIL import Image

    m = json.loads((folder / "manifest.json").read_text())
    exp = json.loads((folder / m["expected"]).read_text())
    image = np.asarray(Image.open(folder / m["images"][exp["image"]]["file"]).convert("RGB"))
    emb = onnx_explorer.sam2_embeddings(image)
    s2 = exp["sam2"]
    first = onnx_explorer.sam2_click(emb, s2["first_click"]["points"], s2["first_click"]["labels"])
    second = onnx_explorer.sam2_click(
        emb, s2["second_click"]["points"], s2["second_click"]["labels"], first["low_res"]
    )
    boxed = onnx_explorer.sam2_box(emb, s2["box"]["box"])
    for got, want in ((first, s2["first_click"]), (second, s2["second_click"]), (boxed, s2["box"])):
        assert got["slot"] == want["slot"]
        assert abs(got["iou_pred"] - want["iou_pred"]) < TOL["iou_pred_abs"]
        assert (got["mask"] != decode_rle(want["mask"])).sum() <= TOL["mask_pixels_max"]
    gt = decode_rle(m["images"][0]["apples"][s2["apple"]]["rle"])
    assert abs(mask_iou_counts(first["mask"], gt) - s2["first_click"]["iou_vs_gt"]) < 0.01
    feats = onnx_explorer.sam3_features(image)
    assert exp["sam3"]["ripe apple"]["count"] > 0
    for phrase, want in exp["sam3"].items():
        got = onnx_explorer.sam3_segment(feats, onnx_explorer.sam3_text(phrase))
        assert len(got["scores"]) == want["count"], phrase
        assert abs(got["presence"] - want["presence"]) < TOL["presence_abs"]
        np.testing.assert_allclose(got["scores"], want["scores"], atol=TOL["score_abs"])
        for mask, rle in zip(got["masks"], want["masks"], strict=True):
            assert (mask != decode_rle(rle)).sum() <= TOL["mask_pixels_max"]


@pytest.mark.slow
def test_a_second_call_reuses_the_export(folder, tiny, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(export_mod, "export_explorer", fail)
    assert ensure_explorer(tiny, verbose=False) == folder
