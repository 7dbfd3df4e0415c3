"""Benchmark the fast metrics against their slow references, asserting identical values.

Run ``samgap bench metrics [--out results.json] [--quick]``. Three comparisons:

* boundary F on a stack of 1280x720 (MinneApple-sized) apple masks: `boundary_f1` vs DAVIS's
  ``f_measure`` (`samgap_lib.metrics.reference.davis_f_measure`, full-frame ``cv2.dilate`` as
  in davis2017-evaluation; the cv2-free numpy-dilation variant used by the tests is timed on a
  few pairs too);
* cgF1 on (image, phrase) pairs: `cgf1` on in-memory dicts vs SAM3's ``CGF1Evaluator`` reading
  the same data from JSON files (its interface); `cgf1` after ``json.load`` of those files is
  shown as well;
* a 20-click NoC run per instance at 1280x720 with a fake disc predictor: `run_clicks` vs RITM's
  loop (`reference.ritm_evaluate_sample`) with exact distances (identical clicks, asserted) and,
  timed beside it, literal RITM with cv2's float32 distances (whose rounding noise breaks ties
  between equally distant pixels differently, so its clicks can differ; counted).

Each time is the best of a few repeats (one for the slow NoC reference). Timings on shared
CPUs are noisy: compare the ratios of one run, not absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.coco import mask_to_rle
from ..evaluation import click_loop
from ..io import write_json
from ..metrics import boundary_f1, cgf1, noc
from ..metrics.reference import (
    davis_f_measure,
    load_sam3_cgf1_module,
    ritm_compute_noc_metric,
    ritm_evaluate_sample,
)

H, W = 1280, 720  # MinneApple: 720 wide x 1280 tall


def _timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _apple(rng: np.random.Generator, h: int, w: int, r_range=(15, 60)) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    r = int(rng.integers(*r_range))
    cy, cx = int(rng.integers(r, h - r)), int(rng.integers(r, w - r))
    axes = (r, int(r * rng.uniform(0.8, 1.2)))
    cv2.ellipse(m, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return m.view(bool)


def _near(rng: np.random.Generator, m: np.ndarray) -> np.ndarray:
    dy, dx = rng.integers(-6, 7, 2)
    out = np.roll(np.roll(m, dy, 0), dx, 1)
    k = int(rng.integers(0, 3))
    if k:
        out = cv2.dilate(out.view(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).view(bool)
    return out


def bench_boundary(n_pairs: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    gt = np.stack([_apple(rng, H, W) for _ in range(n_pairs)])
    pred = np.stack([_near(rng, g) for g in gt])
    t_fast, fast = _timed(lambda: boundary_f1(pred, gt), repeat=3)
    t_ref, ref = _timed(
        lambda: np.array(
            [davis_f_measure(p, g, 0.008, "cv2") for p, g in zip(pred, gt, strict=True)]
        )
    )
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
    k = min(5, n_pairs)
    t_np, ref_np = _timed(
        lambda: [
            davis_f_measure(p, g, 0.008, "numpy") for p, g in zip(pred[:k], gt[:k], strict=True)
        ]
    )
    np.testing.assert_allclose(fast[:k], ref_np, rtol=0, atol=1e-12)
    return {
        "what": f"boundary_f1, {n_pairs} pairs {H}x{W}",
        "fast_s": t_fast,
        "reference_s": t_ref,
        "ratio": t_ref / t_fast,
        "target": 10.0,
        "extra": {
            "numpy_dilation_reference_s_per_pair": t_np / k,
            "fast_s_per_pair": t_fast / n_pairs,
        },
    }


def _saco(rng: np.random.Generator, n_pairs: int, h: int = 256, w: int = 256):
    images, anns, preds = [], [], []
    aid = 1
    for pid in range(1, n_pairs + 1):
        images.append(
            {
                "id": pid,
                "height": h,
                "width": w,
                "text_input": f"phrase {pid % 9}",
                "is_instance_exhaustive": True,
                "file_name": f"{pid}.png",
            }
        )
        n_gt = 0 if rng.random() < 0.3 else int(rng.integers(1, 12))
        for _ in range(n_gt):
            m = _apple(rng, h, w, (6, 30))
            rle = mask_to_rle(m)
            anns.append(
                {
                    "id": aid,
                    "image_id": pid,
                    "category_id": 1,
                    "segmentation": rle,
                    "bbox": [float(v) for v in cv2.boundingRect(m.view(np.uint8))],
                    "area": float(m.sum()),
                    "iscrowd": int(rng.random() < 0.03),
                }
            )
            aid += 1
            if rng.random() < 0.85:
                p = _near(rng, m)
                preds.append(
                    {
                        "image_id": pid,
                        "category_id": 1,
                        "segmentation": mask_to_rle(p),
                        "score": float(rng.choice([0.5, rng.random(), 0.9])),
                    }
                )
        for _ in range(int(rng.integers(0, 3))):
            p = _apple(rng, h, w, (6, 30))
            preds.append(
                {
                    "image_id": pid,
                    "category_id": 1,
                    "segmentation": mask_to_rle(p),
                    "score": float(rng.random()),
                }
            )
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "object"}]}
    return gt, preds


def bench_cgf1(n_pairs: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    gt, preds = _saco(rng, n_pairs)
    mod = load_sam3_cgf1_module()
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, pred_path = os.path.join(tmp, "gt.json"), os.path.join(tmp, "preds.json")
        Path(gt_path).write_text(json.dumps(gt))
        Path(pred_path).write_text(json.dumps(preds))

        def reference():
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = mod.CGF1Evaluator(gt_path, iou_type="segm").evaluate(pred_path)
            return {k.removeprefix("cgF1_eval_segm_"): v for k, v in out.items()}

        def fast_from_files():
            return cgf1(
                json.loads(Path(gt_path).read_text()), json.loads(Path(pred_path).read_text())
            )

        t_ref, ref = _timed(reference, repeat=3)
        t_fast, fast = _timed(lambda: cgf1(gt, preds), repeat=3)
        t_files, fast2 = _timed(fast_from_files, repeat=3)
    for k, v in ref.items():
        assert abs(fast[k] - v) <= 1e-9 and abs(fast2[k] - v) <= 1e-9, (k, fast[k], v)
    return {
        "what": f"cgf1 (segm), {n_pairs} pairs, {len(gt['annotations'])} GT, {len(preds)} results",
        "fast_s": t_fast,
        "reference_s": t_ref,
        "ratio": t_ref / t_fast,
        "target": 5.0,
        "extra": {
            "fast_with_json_load_s": t_files,
            "ratio_with_json_load": t_ref / t_files,
            "cgF1": fast["cgF1"],
        },
    }


def _disc_predictor(radius: int):
    """Fake model: discs around positive clicks, minus discs around negative ones (cv2)."""

    def draw(yx, labels) -> np.ndarray:
        m = np.zeros((H, W), np.uint8)
        for (y, x), lab in zip(yx, labels, strict=True):
            cv2.circle(m, (int(x), int(y)), radius, 1 if lab else 0, -1)
        return m.view(bool)

    def predict_fn(points, labels, prev):
        return draw(points[:, ::-1], labels), None

    def ritm_predict(clicker):
        return draw(
            [c.coords for c in clicker.clicks_list], [c.is_positive for c in clicker.clicks_list]
        )

    return predict_fn, ritm_predict


def bench_noc(n_instances: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    gts = [_apple(rng, H, W, (20, 70)) for _ in range(n_instances)]
    radii = [int(rng.integers(8, 25)) for _ in gts]

    def fast():
        return [
            click_loop(_disc_predictor(r)[0], g, max_clicks=20, return_clicks=True)
            for g, r in zip(gts, radii, strict=True)
        ]

    def reference(dt):
        return [
            ritm_evaluate_sample(g.astype(np.int64), _disc_predictor(r)[1], max_clicks=20, dt=dt)
            for g, r in zip(gts, radii, strict=True)
        ]

    t_ref, ref = _timed(lambda: reference("exact"))
    t_cv2, ref_cv2 = _timed(lambda: reference("cv2"))
    t_fast, ours = _timed(fast, repeat=3)
    for (a, _), (_, b) in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    ious = [a for a, _ in ours]
    res = noc(ious)
    ref_noc, ref_over = ritm_compute_noc_metric([b for _, b in ref], [0.8, 0.85, 0.9])
    assert [res["NoC@0.8"], res["NoC@0.85"], res["NoC@0.9"]] == ref_noc
    assert [res["NoF@0.8"], res["NoF@0.85"], res["NoF@0.9"]] == ref_over
    # literal RITM (cv2 float32 distances): same clicks except where cv2's rounding noise
    # breaks a tie between equally distant pixels
    diverged = sum(
        [(c.is_positive, c.y, c.x) for c in cl] != [(c.is_positive, *c.coords) for c in rc]
        for (_, cl), (rc, _) in zip(ours, ref_cv2, strict=True)
    )
    cv2_noc = ritm_compute_noc_metric([b for _, b in ref_cv2], [0.85])[0][0]
    return {
        "what": f"20-click NoC run, {n_instances} instances {H}x{W}",
        "fast_s": t_fast,
        "reference_s": t_ref,
        "ratio": t_ref / t_fast,
        "target": 5.0,
        "extra": {
            "literal_cv2_ritm_s": t_cv2,
            "ratio_vs_literal_cv2_ritm": t_cv2 / t_fast,
            "instances_whose_clicks_differ_from_cv2_ritm": diverged,
            "NoC@0.85": res["NoC@0.85"],
            "NoC@0.85_cv2_ritm": cv2_noc,
            "mIoU@5": res["mIoU@5"],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a speed target is missed")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    sizes = (10, 50, 3) if args.quick else (100, 500, 10)
    rows = [bench_boundary(sizes[0]), bench_cgf1(sizes[1]), bench_noc(sizes[2])]
    print(f"{'benchmark':<62} {'reference s':>11} {'fast s':>9} {'ratio':>7} {'target':>7}")
    for r in rows:
        ok = "ok" if r["ratio"] >= r["target"] else "MISSED"
        print(
            f"{r['what']:<62} {r['reference_s']:>11.3f} {r['fast_s']:>9.4f} "
            f"{r['ratio']:>6.1f}x {r['target']:>5.0f}x {ok}"
        )
        for k, v in r["extra"].items():
            print(f"    {k}: {v:.4g}")
    print("values identical to the references: yes (asserted)")
    if args.out:
        write_json({"results": rows, "quick": args.quick}, args.out, indent=2)
    missed = [r for r in rows if r["ratio"] < r["target"]]
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
