"""Slow, literal reference implementations, kept only to check the fast ones (tests, benchmarks).

Nothing in the library calls these. Each is a plain transcription of the public code named in
its docstring (REFERENCE.md, "Evaluation protocols"), with the same loops, the same order of
operations and the same tie-breaking, so the fast implementations can be compared to them to
the last bit:

* `davis_f_measure`, `davis_seg2bmap`, `davis_eval_iou`, `davis_statistics`:
  davis2017-evaluation ``davis2017/metrics.py`` and ``davis2017/utils.py``.
* `RITMClicker`, `ritm_get_iou`, `ritm_evaluate_sample`, `ritm_compute_noc_metric`:
  SamsungLabs/ritm_interactive_segmentation ``isegm/inference/{clicker,evaluation,utils}.py``;
  the clicker optionally with exact distances instead of cv2's (see `RITMClicker`).
* `load_sam3_cgf1_module`: imports Meta's ``sam3/eval/cgf1_eval.py`` on its own, without
  running ``sam3/__init__.py`` (which builds the whole model stack: torch, triton, ~3.5 s and CUDA
  warnings on CPU machines). The evaluator only needs numpy, scipy, pycocotools and tqdm.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from types import ModuleType

import cv2
import numpy as np
from scipy import ndimage

__all__ = [
    "RITMClick",
    "RITMClicker",
    "davis_dilate",
    "davis_eval_iou",
    "davis_f_measure",
    "davis_seg2bmap",
    "davis_statistics",
    "load_sam3_cgf1_module",
    "ritm_compute_noc_metric",
    "ritm_evaluate_sample",
    "ritm_get_iou",
]


# --------------------------------------------------------------------------------------------
# DAVIS 2017 (davis2017-evaluation, davis2017/metrics.py and utils.py)
# --------------------------------------------------------------------------------------------


def davis_eval_iou(annotation: np.ndarray, segmentation: np.ndarray) -> float | np.ndarray:
    """``db_eval_iou`` without void pixels: J, 1 when the union is empty."""
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    inters = np.sum(segmentation & annotation, axis=(-2, -1))
    union = np.sum(segmentation | annotation, axis=(-2, -1))
    with np.errstate(invalid="ignore"):
        j = inters / union
    if j.ndim == 0:
        j = 1 if np.isclose(union, 0) else j
    else:
        j[np.isclose(union, 0)] = 1
    return j


def davis_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """``_seg2bmap`` at the mask's own size (width=height=None)."""
    seg = seg.astype(bool)
    seg[seg > 0] = 1
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def _skimage_disk(radius: float) -> np.ndarray:
    """``skimage.morphology.disk(radius)`` (strict radius): ``x^2 + y^2 <= r^2`` on ``-r..r``."""
    grid = np.arange(-radius, radius + 1)
    xx, yy = np.meshgrid(grid, grid)
    return (xx**2 + yy**2 <= radius**2).astype(np.uint8)


def davis_dilate(bmap: np.ndarray, selem: np.ndarray, method: str = "cv2") -> np.ndarray:
    """Binary dilation of ``bmap`` by ``selem`` (odd, centred): DAVIS's ``cv2.dilate`` or a
    cv2-free numpy version (OR of the shifted maps, one shift per element of ``selem``)."""
    if method == "cv2":
        return cv2.dilate(bmap.astype(np.uint8), selem.astype(np.uint8))
    if method != "numpy":
        raise ValueError(f"method must be 'cv2' or 'numpy', got {method!r}.")
    src = bmap.astype(bool)
    h, w = src.shape
    r = selem.shape[0] // 2
    out = np.zeros_like(src)
    for dy, dx in np.argwhere(selem.astype(bool)) - r:
        # out[y, x] |= src[y - dy, x - dx]  (cv2 dilation: max over src(x + k - anchor))
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[yd, xd] |= src[ys, xs]
    return out.astype(np.uint8)


def davis_f_measure(
    foreground_mask: np.ndarray,
    gt_mask: np.ndarray,
    bound_th: float = 0.008,
    dilation: str = "cv2",
) -> float:
    """``f_measure`` (no void pixels); ``dilation`` picks cv2 (as DAVIS) or the numpy version."""
    bound_pix = (
        bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    )
    fg_boundary = davis_seg2bmap(foreground_mask)
    gt_boundary = davis_seg2bmap(gt_mask)
    selem = _skimage_disk(bound_pix)
    fg_dil = davis_dilate(fg_boundary, selem, dilation)
    gt_dil = davis_dilate(gt_boundary, selem, dilation)
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision = 1
        recall = 0
    elif n_fg > 0 and n_gt == 0:
        precision = 0
        recall = 1
    elif n_fg == 0 and n_gt == 0:
        precision = 1
        recall = 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def davis_statistics(per_frame_values: np.ndarray) -> tuple[float, float, float]:
    """``db_statistics``: mean, recall (fraction > 0.5) and decay (first minus last quarter)."""
    per_frame_values = np.asarray(per_frame_values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        m = np.nanmean(per_frame_values)
        o = np.nanmean(per_frame_values > 0.5)
    n_bins = 4
    ids = np.round(np.linspace(1, len(per_frame_values), n_bins + 1) + 1e-10) - 1
    ids = ids.astype(np.uint8)
    d_bins = [per_frame_values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        d = np.nanmean(d_bins[0]) - np.nanmean(d_bins[3])
    return float(m), float(o), float(d)


# --------------------------------------------------------------------------------------------
# RITM (isegm/inference/clicker.py, evaluation.py, utils.py)
# --------------------------------------------------------------------------------------------


class RITMClick:
    """RITM ``Click``: ``coords`` are ``(y, x)``."""

    def __init__(self, is_positive: bool, coords: tuple[int, int], indx: int | None = None):
        self.is_positive = is_positive
        self.coords = coords
        self.indx = indx


class RITMClicker:
    """RITM ``Clicker`` (gt given, no ignore label used): full-frame distance transforms.

    ``dt="cv2"`` is RITM's code verbatim (``cv2.distanceTransform(..., DIST_L2, 0)``, float32
    with position-dependent rounding noise of about one ulp); ``dt="exact"`` swaps in
    ``scipy.ndimage.distance_transform_edt`` (exact distances), the only change.
    """

    def __init__(self, gt_mask: np.ndarray, ignore_label: int = -1, dt: str = "cv2"):
        if dt not in ("cv2", "exact"):
            raise ValueError(f"dt must be 'cv2' or 'exact', got {dt!r}.")
        self.dt = dt
        self.gt_mask = gt_mask == 1
        self.not_ignore_mask = gt_mask != ignore_label
        self.not_clicked_map = np.ones_like(self.gt_mask, dtype="bool")
        self.num_pos_clicks = 0
        self.num_neg_clicks = 0
        self.clicks_list: list[RITMClick] = []

    def make_next_click(self, pred_mask: np.ndarray) -> None:
        self.add_click(self._get_next_click(pred_mask))

    def _get_next_click(self, pred_mask: np.ndarray, padding: bool = True) -> RITMClick:
        fn_mask = np.logical_and(
            np.logical_and(self.gt_mask, np.logical_not(pred_mask)), self.not_ignore_mask
        )
        fp_mask = np.logical_and(
            np.logical_and(np.logical_not(self.gt_mask), pred_mask), self.not_ignore_mask
        )
        if padding:
            fn_mask = np.pad(fn_mask, ((1, 1), (1, 1)), "constant")
            fp_mask = np.pad(fp_mask, ((1, 1), (1, 1)), "constant")
        if self.dt == "cv2":
            fn_mask_dt = cv2.distanceTransform(fn_mask.astype(np.uint8), cv2.DIST_L2, 0)
            fp_mask_dt = cv2.distanceTransform(fp_mask.astype(np.uint8), cv2.DIST_L2, 0)
        else:
            fn_mask_dt = ndimage.distance_transform_edt(fn_mask)
            fp_mask_dt = ndimage.distance_transform_edt(fp_mask)
        if padding:
            fn_mask_dt = fn_mask_dt[1:-1, 1:-1]
            fp_mask_dt = fp_mask_dt[1:-1, 1:-1]
        fn_mask_dt = fn_mask_dt * self.not_clicked_map
        fp_mask_dt = fp_mask_dt * self.not_clicked_map
        fn_max_dist = np.max(fn_mask_dt)
        fp_max_dist = np.max(fp_mask_dt)
        is_positive = fn_max_dist > fp_max_dist
        if is_positive:
            coords_y, coords_x = np.argwhere(fn_mask_dt == fn_max_dist).T
        else:
            coords_y, coords_x = np.argwhere(fp_mask_dt == fp_max_dist).T
        return RITMClick(is_positive=bool(is_positive), coords=(int(coords_y[0]), int(coords_x[0])))

    def add_click(self, click: RITMClick) -> None:
        click.indx = self.num_pos_clicks + self.num_neg_clicks
        if click.is_positive:
            self.num_pos_clicks += 1
        else:
            self.num_neg_clicks += 1
        self.clicks_list.append(click)
        self.not_clicked_map[click.coords[0], click.coords[1]] = False


def ritm_get_iou(gt_mask: np.ndarray, pred_mask: np.ndarray, ignore_label: int = -1) -> float:
    """RITM ``utils.get_iou``."""
    ignore_gt_mask_inv = gt_mask != ignore_label
    obj_gt_mask = gt_mask == 1
    intersection = np.logical_and(np.logical_and(pred_mask, obj_gt_mask), ignore_gt_mask_inv).sum()
    union = np.logical_and(np.logical_or(pred_mask, obj_gt_mask), ignore_gt_mask_inv).sum()
    return intersection / union


def ritm_evaluate_sample(
    gt_mask: np.ndarray,
    predict: Callable[[RITMClicker], np.ndarray],
    max_iou_thr: float = 2.0,
    pred_thr: float = 0.49,
    min_clicks: int = 1,
    max_clicks: int = 20,
    dt: str = "cv2",
) -> tuple[list[RITMClick], np.ndarray]:
    """RITM ``evaluate_sample``; ``predict(clicker)`` returns probabilities (the predictor).

    ``max_iou_thr=2`` (never reached) runs all ``max_clicks`` clicks, as needed for mIoU@k;
    ``dt`` is passed to `RITMClicker`.
    """
    clicker = RITMClicker(gt_mask=gt_mask, dt=dt)
    pred_mask = np.zeros_like(gt_mask)
    ious_list = []
    for click_indx in range(max_clicks):
        clicker.make_next_click(pred_mask)
        pred_probs = predict(clicker)
        pred_mask = pred_probs > pred_thr
        iou = ritm_get_iou(gt_mask, pred_mask)
        ious_list.append(iou)
        if iou >= max_iou_thr and click_indx + 1 >= min_clicks:
            break
    return clicker.clicks_list, np.array(ious_list, dtype=np.float64)


def ritm_compute_noc_metric(
    all_ious: list[np.ndarray], iou_thrs: list[float], max_clicks: int = 20
) -> tuple[list[float], list[int]]:
    """RITM ``utils.compute_noc_metric``: mean NoC and the count with NoC == max_clicks."""

    def _get_noc(iou_arr, iou_thr):
        vals = iou_arr >= iou_thr
        return np.argmax(vals) + 1 if np.any(vals) else max_clicks

    noc_list = []
    over_max_list = []
    for iou_thr in iou_thrs:
        scores_arr = np.array([_get_noc(iou_arr, iou_thr) for iou_arr in all_ious], dtype="int")
        noc_list.append(float(scores_arr.mean()))
        over_max_list.append(int((scores_arr == max_clicks).sum()))
    return noc_list, over_max_list


# --------------------------------------------------------------------------------------------
# SAM3 cgF1 (sam3/eval/cgf1_eval.py)
# --------------------------------------------------------------------------------------------


def load_sam3_cgf1_module() -> ModuleType:
    """Import ``sam3.eval.cgf1_eval`` without executing ``sam3/__init__.py``.

    ``import sam3.eval.cgf1_eval`` first runs ``sam3/__init__.py``, which imports
    ``sam3.model_builder`` and with it torch, triton and the whole SAM3 model (about 3.5 s, with
    CUDA autocast warnings on CPU). The evaluator file itself imports only numpy, scipy,
    pycocotools and tqdm, so it is loaded here from its path as a stand-alone module.

    Raises
    ------
    ImportError
        When the ``sam3`` package is not installed (``pip install sam3==0.1.4``).
    """
    name = "_samgap_sam3_cgf1_eval"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("sam3")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("sam3 is not installed: pip install sam3==0.1.4 (the 'meta' extra).")
    import os

    path = os.path.join(list(spec.submodule_search_locations)[0], "eval", "cgf1_eval.py")
    file_spec = importlib.util.spec_from_file_location(name, path)
    if file_spec is None or file_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[name] = module
    file_spec.loader.exec_module(module)
    return module
