"""The RITM click simulator (SamsungLabs/ritm_interactive_segmentation, isegm/inference/clicker.py).

Given the ground-truth mask and the current prediction, the next click goes to the pixel
farthest from the boundary of the larger error region:

1. ``FN = gt & ~pred`` and ``FP = ~gt & pred``;
2. each is padded by one zero pixel (so the image border counts as boundary) and its L2
   distance transform taken, then un-padded;
3. already-clicked pixels get distance 0 (RITM's ``not_clicked_map``);
4. the click is positive when ``max(FN dist) > max(FP dist)`` (ties: negative), placed at the
   first maximum in row-major order (``np.argwhere(dt == max)[0]``);
5. with no prediction the FN map is the whole object, so the first click is the object's most
   interior point.

When both error maps are empty (or every error pixel was clicked already) RITM places a
negative click at pixel (0, 0); this is reproduced.

Exact distances. RITM computes the distances with ``cv2.distanceTransform(..., DIST_L2, 0)``,
whose float32 output is not exactly rounded: two pixels at the same true distance (sqrt(545),
say) can get values one ulp apart depending on their position in the image, and that noise,
not the row-major order, then decides among equally distant pixels (and between FN and FP when
their maxima are equal). Here distances are exact (``scipy.ndimage.distance_transform_edt``,
float64), so exact ties really are broken in row-major order as RITM's code intends. The
clicks are identical to `samgap_lib.metrics.reference.RITMClicker` with ``dt="exact"`` (the
literal RITM code with the exact transform); against literal RITM (``dt="cv2"``) they differ
only where cv2's rounding noise breaks such a tie, and the chosen pixel is then equally far
from the boundary (tested).

Speed. Each error map is cropped to its bounding box padded by one pixel before the transform:
all error pixels lie inside, and the nearest non-error pixel of any of them lies in the box or
its one-pixel ring (the ring is all background, or the image border, which RITM pads with zeros
too), so the distances equal the full-frame ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from samgap_lib.data.types import check_mask

__all__ = ["Click", "Clicker"]


@dataclass(frozen=True)
class Click:
    """One simulated click at pixel ``(y, x)`` (row, column)."""

    is_positive: bool
    y: int
    x: int

    @property
    def coords(self) -> tuple[int, int]:
        """``(y, x)``, RITM's order."""
        return (self.y, self.x)

    @property
    def xy(self) -> np.ndarray:
        """``(2,)`` float ``xy`` prompt coordinates."""
        return np.array([self.x, self.y], dtype=np.float64)

    @property
    def label(self) -> int:
        return int(self.is_positive)


def _bbox(rows: np.ndarray, cols: np.ndarray) -> tuple[int, int, int, int] | None:
    ys = np.flatnonzero(rows)
    if ys.size == 0:
        return None
    xs = np.flatnonzero(cols)
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


class Clicker:
    """RITM click simulator for one object.

    Parameters
    ----------
    gt_mask
        ``(H, W)`` bool or 0/1 ground-truth mask (not empty).

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((9, 9), bool); gt[2:7, 2:7] = True
    >>> Clicker(gt).next_click()
    Click(is_positive=True, y=4, x=4)
    """

    def __init__(self, gt_mask: Any):
        self.gt_mask = check_mask(gt_mask, what="gt_mask")
        box = _bbox(self.gt_mask.any(axis=1), self.gt_mask.any(axis=0))
        if box is None:
            raise ValueError(
                "Clicker: the ground-truth mask is empty; there is nothing to click on."
            )
        self._gt_box = box
        self.clicks: list[Click] = []

    @property
    def shape(self) -> tuple[int, int]:
        return self.gt_mask.shape  # type: ignore[return-value]

    def reset(self) -> None:
        """Forget all clicks."""
        self.clicks = []

    def __len__(self) -> int:
        return len(self.clicks)

    def points_and_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """All clicks so far as prompts: ``(N, 2)`` float64 xy and ``(N,)`` int64 labels."""
        if not self.clicks:
            return np.zeros((0, 2), dtype=np.float64), np.zeros(0, dtype=np.int64)
        pts = np.array([[c.x, c.y] for c in self.clicks], dtype=np.float64)
        labels = np.array([c.label for c in self.clicks], dtype=np.int64)
        return pts, labels

    def next_click(self, pred_mask: Any | None = None) -> Click:
        """Compute, record and return the next click given the current binary prediction.

        Parameters
        ----------
        pred_mask
            ``(H, W)`` bool or 0/1 prediction; ``None`` means nothing predicted yet (the first
            click). Threshold probabilities yourself (RITM uses ``probs > 0.49``).
        """
        if pred_mask is None:
            pred = None
            box = self._gt_box
        else:
            pred = check_mask(pred_mask, shape=self.shape, what="pred_mask")
            pbox = _bbox(pred.any(axis=1), pred.any(axis=0))
            box = self._gt_box
            if pbox is not None:
                box = (
                    min(box[0], pbox[0]),
                    max(box[1], pbox[1]),
                    min(box[2], pbox[2]),
                    max(box[3], pbox[3]),
                )
        click = self._click_in_box(pred, box)
        self.clicks.append(click)
        return click

    def _click_in_box(self, pred: np.ndarray | None, box: tuple[int, int, int, int]) -> Click:
        y0, y1, x0, x1 = box
        gt = self.gt_mask[y0:y1, x0:x1]
        if pred is None:
            fn, fp = gt, None
        else:
            pr = pred[y0:y1, x0:x1]
            fn, fp = gt & ~pr, pr & ~gt
        best: list[tuple[float, int, int]] = []  # (max distance, y, x) for FN, then FP
        for region in (fn, fp):
            if region is None:
                best.append((0.0, 0, 0))
                continue
            best.append(self._region_max(region, y0, x0))
        (fn_max, fy, fx), (fp_max, py, px) = best
        is_positive = fn_max > fp_max
        if max(fn_max, fp_max) == 0.0:
            return Click(is_positive=False, y=0, x=0)  # RITM: argwhere(0-map == 0)[0] = (0, 0)
        y, x = (fy, fx) if is_positive else (py, px)
        return Click(is_positive=bool(is_positive), y=y, x=x)

    def _region_max(self, region: np.ndarray, oy: int, ox: int) -> tuple[float, int, int]:
        """Largest exact distance in ``region`` (offset ``oy, ox`` in the image) among pixels not
        clicked yet, and its first position in row-major order."""
        rows = np.flatnonzero(region.any(axis=1))
        if rows.size == 0:
            return 0.0, 0, 0
        cols = np.flatnonzero(region.any(axis=0))
        ry0, ry1, rx0, rx1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        dt = _padded_dt(region[ry0:ry1, rx0:rx1])
        by, bx = oy + ry0, ox + rx0
        for c in self.clicks:  # RITM's not_clicked_map
            if by <= c.y < by + dt.shape[0] and bx <= c.x < bx + dt.shape[1]:
                dt[c.y - by, c.x - bx] = 0.0
        k = int(np.argmax(dt))
        m = float(dt.flat[k])
        if m == 0.0:
            return 0.0, 0, 0
        y, x = divmod(k, dt.shape[1])
        return m, by + y, bx + x


def _padded_dt(region: np.ndarray) -> np.ndarray:
    padded = np.zeros((region.shape[0] + 2, region.shape[1] + 2), dtype=bool)
    padded[1:-1, 1:-1] = region
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
