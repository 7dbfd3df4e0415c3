"""coco_ap is a thin wrapper of pycocotools' COCOeval."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from _saco_fixtures import random_blob, rle, xywh
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from samgap_lib.metrics import COCO_STAT_NAMES, coco_ap


def _coco(seed=0, n_images=4, h=40, w=50):
    rng = np.random.default_rng(seed)
    images, anns, res = [], [], []
    k = 1
    for i in range(1, n_images + 1):
        images.append({"id": i, "height": h, "width": w, "file_name": f"{i}.png"})
        for _ in range(int(rng.integers(1, 5))):
            m = random_blob(rng, h, w)
            anns.append(
                {
                    "id": k,
                    "image_id": i,
                    "category_id": 1,
                    "segmentation": rle(m),
                    "bbox": xywh(m),
                    "area": float(m.sum()),
                    "iscrowd": 0,
                }
            )
            k += 1
            p = np.roll(m, int(rng.integers(-2, 3)), 1)
            res.append(
                {
                    "image_id": i,
                    "category_id": 1,
                    "segmentation": rle(p),
                    "bbox": xywh(p),
                    "score": float(rng.random()),
                }
            )
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "apple"}]}, res


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_coco_ap_equals_cocoeval(iou_type):
    gt, res = _coco()
    ours = coco_ap(gt, res, iou_type)
    assert list(ours) == list(COCO_STAT_NAMES)
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = gt
        g.createIndex()
        ev = COCOeval(g, g.loadRes([dict(r) for r in res]), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    np.testing.assert_allclose([ours[k] for k in COCO_STAT_NAMES], ev.stats, atol=1e-12)


def test_coco_ap_perfect_and_empty():
    gt, _ = _coco(1)
    perfect = [
        {
            "image_id": a["image_id"],
            "category_id": 1,
            "segmentation": a["segmentation"],
            "bbox": a["bbox"],
            "score": 1.0,
        }
        for a in gt["annotations"]
    ]
    snapshot = repr(gt)
    assert coco_ap(gt, perfect, "segm")["AP"] == pytest.approx(1.0)
    assert coco_ap(gt, perfect, "bbox")["AP50"] == pytest.approx(1.0)
    assert coco_ap(gt, [], "segm")["AP"] == 0.0
    assert repr(gt) == snapshot  # inputs are not modified


def test_coco_ap_errors():
    gt, res = _coco(2)
    with pytest.raises(ValueError, match="score"):
        coco_ap(gt, [dict(res[0], score=float("nan"))])
    with pytest.raises(ValueError, match="image_id"):
        coco_ap(gt, [dict(res[0], image_id=999)])
    with pytest.raises(ValueError, match="iou_type"):
        coco_ap(gt, res, "keypoints")
    with pytest.raises(ValueError, match="annotations"):
        coco_ap({"images": []}, res)
