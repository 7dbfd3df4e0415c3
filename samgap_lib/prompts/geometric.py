"""Geometric prompts from ground-truth masks: interior points, (jittered) boxes, mask prompts.

Coordinates are those of the input image in pixels:

* points: ``(N, 2)`` float ``xy`` where ``x`` is the column index and ``y`` the row index of a
  pixel (the convention of SAM2's training code and of RITM's clicks), with labels ``(N,)`` int,
  1 = foreground, 0 = background;
* boxes: ``(N, 4)`` float ``xyxy`` with an exclusive right/bottom edge, as
  `samgap_lib.data.mask_to_box` (a one-pixel mask at column ``x`` spans ``x .. x + 1``);
* mask prompts: ``(N, H, W)`` float32 logits (or resized to a model's low-resolution input).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from samgap_lib.data.types import check_mask

__all__ = [
    "boxes_from_masks",
    "box_ellipse_masks",
    "interior_points",
    "jitter_boxes",
    "mask_prompts",
    "most_interior_point",
    "padded_distance",
    "random_exterior_points",
    "random_interior_points",
]


def _stack(masks: Any, what: str = "masks") -> np.ndarray:
    arr = np.asarray(masks)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{what}: expected (H, W) or (N, H, W) masks, got shape {arr.shape}.")
    if arr.dtype != bool:
        arr = np.stack([check_mask(m, what=what) for m in arr]) if len(arr) else arr.astype(bool)
    return arr


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError(
            "a seed or numpy Generator is required for random prompts (determinism): pass "
            "rng=np.random.default_rng(seed)."
        )
    return np.random.default_rng(rng)


def padded_distance(region: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of each pixel of ``region`` to the nearest pixel outside it.

    The image border counts as outside (the map is padded by one zero pixel first, as RITM's
    clicker does). Distances are exact (``scipy.ndimage.distance_transform_edt``, float64: the
    correctly rounded square root of an integer), so equal distances compare equal anywhere in
    the image. RITM uses ``cv2.distanceTransform(..., DIST_L2, 0)``, whose float32 values differ
    by about one ulp between pixels at the same true distance, depending on where they lie.
    """
    return ndimage.distance_transform_edt(np.pad(np.asarray(region, dtype=bool), 1))[1:-1, 1:-1]


def most_interior_point(mask: Any) -> np.ndarray:
    """The pixel of ``mask`` farthest from its boundary (maximum of the distance transform).

    Distances are exact (`padded_distance`; the image border counts as background) and ties go
    to the first pixel in row-major order (``np.argwhere(...)[0]``, as RITM), so the point is
    the first click of `samgap_lib.prompts.Clicker`.

    Parameters
    ----------
    mask
        ``(H, W)`` bool or 0/1 mask, not empty.

    Returns
    -------
    numpy.ndarray
        ``(2,)`` float64 ``xy`` (column, row).
    """
    m = check_mask(mask)
    ys = np.flatnonzero(m.any(axis=1))
    if ys.size == 0:
        raise ValueError("most_interior_point: the mask is empty; an object prompt needs pixels.")
    xs = np.flatnonzero(m.any(axis=0))
    crop = m[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1]
    dt = padded_distance(crop)
    k = int(np.argmax(dt))
    y, x = divmod(k, dt.shape[1])
    return np.array([xs[0] + x, ys[0] + y], dtype=np.float64)


def interior_points(masks: Any) -> tuple[np.ndarray, np.ndarray]:
    """One most-interior point per mask (see `most_interior_point`).

    Parameters
    ----------
    masks
        ``(N, H, W)`` (or one ``(H, W)``) non-empty masks.

    Returns
    -------
    points, labels
        ``(N, 2)`` float64 xy and ``(N,)`` int64 ones.
    """
    stack = _stack(masks)
    pts = np.stack([most_interior_point(m) for m in stack]) if len(stack) else np.zeros((0, 2))
    return pts.astype(np.float64), np.ones(len(stack), dtype=np.int64)


def random_interior_points(
    mask: Any,
    n: int,
    rng: np.random.Generator | int | None,
    min_distance: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct foreground points drawn uniformly from the mask's pixels.

    Parameters
    ----------
    mask
        ``(H, W)`` bool or 0/1 mask.
    n
        Number of points (``>= 0``).
    rng
        numpy Generator or seed (required).
    min_distance
        Only pixels at least this far (Euclidean, as `padded_distance`) from the background are
        eligible; 0 allows every mask pixel.

    Returns
    -------
    points, labels
        ``(n, 2)`` float64 xy and ``(n,)`` int64 ones.
    """
    m = check_mask(mask)
    gen = _rng(rng)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    eligible = m if min_distance <= 0 else padded_distance(m) >= min_distance
    ys, xs = np.nonzero(eligible)
    if len(ys) < n:
        raise ValueError(
            f"random_interior_points: asked for {n} distinct points but only {len(ys)} mask pixels "
            f"are eligible (min_distance={min_distance}); ask for fewer or lower min_distance."
        )
    idx = gen.choice(len(ys), size=n, replace=False)
    pts = np.stack([xs[idx], ys[idx]], axis=1).astype(np.float64)
    return pts, np.ones(n, dtype=np.int64)


def random_exterior_points(
    mask: Any, n: int, rng: np.random.Generator | int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct background points (outside ``mask``) drawn uniformly; labels are 0."""
    m = check_mask(mask)
    pts, _ = random_interior_points(~m, n, rng)
    return pts, np.zeros(n, dtype=np.int64)


def jitter_boxes(
    boxes: Any,
    image_size: tuple[int, int],
    rng: np.random.Generator | int | None,
    noise: float = 0.1,
    noise_bound: float = 20.0,
) -> np.ndarray:
    """Perturb boxes with SAM2's training box noise.

    Each coordinate moves by ``u * min(noise * side, noise_bound)`` with ``u ~ U(-1, 1)`` drawn
    independently (``side`` = box width for x, height for y), then boxes are clipped to the image
    (``0 .. W``, ``0 .. H``): ``sam2.modeling.sam2_utils.sample_box_points`` (noise 0.1, bound 20
    px). With ``noise <= 0.25`` a box can shrink by at most half its side, so it never inverts.

    Parameters
    ----------
    boxes
        ``(N, 4)`` xyxy pixels.
    image_size
        ``(H, W)`` of the image the boxes live in.
    rng
        numpy Generator or seed (required).
    noise, noise_bound
        Relative noise and its cap in pixels.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64 jittered boxes.
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) xyxy, got shape {b.shape}.")
    if not np.isfinite(b).all():
        raise ValueError("boxes contain NaN or inf.")
    if noise < 0 or noise_bound < 0:
        raise ValueError(f"noise and noise_bound must be >= 0, got {noise}, {noise_bound}.")
    gen = _rng(rng)
    h, w = image_size
    max_dx = np.minimum((b[:, 2] - b[:, 0]) * noise, noise_bound)
    max_dy = np.minimum((b[:, 3] - b[:, 1]) * noise, noise_bound)
    u = 2 * gen.random((len(b), 4)) - 1
    out = b + u * np.stack([max_dx, max_dy, max_dx, max_dy], axis=1)
    return np.clip(out, 0, np.array([w, h, w, h], dtype=np.float64))


def boxes_from_masks(
    masks: Any,
    jitter: float = 0.0,
    rng: np.random.Generator | int | None = None,
    noise_bound: float = 20.0,
) -> np.ndarray:
    """Tight boxes of masks, optionally jittered with SAM2's noise model (`jitter_boxes`).

    Parameters
    ----------
    masks
        ``(N, H, W)`` (or one ``(H, W)``) masks; an empty mask gives an all-zero box.
    jitter
        Relative noise (0 = exact boxes; SAM2 trains with 0.1).
    rng
        numpy Generator or seed, required when ``jitter > 0``.
    noise_bound
        Cap of the noise in pixels.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64 xyxy boxes (exclusive right/bottom edge).
    """
    stack = _stack(masks)
    n, h, w = stack.shape
    boxes = np.zeros((n, 4), dtype=np.float64)
    rows, cols = stack.any(axis=2), stack.any(axis=1)
    for i in range(n):
        ys, xs = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
        if ys.size:
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    if jitter > 0:
        boxes = jitter_boxes(boxes, (h, w), rng, noise=jitter, noise_bound=noise_bound)
    return boxes


def mask_prompts(
    masks: Any, size: tuple[int, int] | None = None, logit: float = 10.0
) -> np.ndarray:
    """Dense mask prompts: ``+logit`` inside the mask, ``-logit`` outside.

    Parameters
    ----------
    masks
        ``(N, H, W)`` (or one ``(H, W)``) masks.
    size
        ``(h, w)`` to resize to (e.g. ``(256, 256)``, SAM2's low-resolution mask input), by
        area averaging of the 0/1 mask then mapping ``[0, 1]`` to ``[-logit, logit]``; ``None``
        keeps the image's size.
    logit
        Magnitude of the logits (positive).

    Returns
    -------
    numpy.ndarray
        ``(N, h, w)`` float32 logits.
    """
    stack = _stack(masks)
    if logit <= 0:
        raise ValueError(f"logit must be positive, got {logit}.")
    if size is None:
        return np.where(stack, logit, -logit).astype(np.float32)
    h, w = int(size[0]), int(size[1])
    out = np.empty((len(stack), h, w), dtype=np.float32)
    for i, m in enumerate(stack):
        frac = cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        out[i] = (2 * frac - 1) * logit
    return out


def box_ellipse_masks(boxes: Any, hw: tuple[int, int]) -> np.ndarray:
    """The ellipse inscribed in each box, as masks: a model-free answer to a box prompt.

    Round objects (apples) fill about pi/4 of their box, so this is the baseline a promptable
    segmenter must beat on box prompts before it has learned anything but "round thing in a box".

    Parameters
    ----------
    boxes
        ``(N, 4)`` xyxy boxes in pixels (exclusive right/bottom edge, as `boxes_from_masks`).
    hw
        ``(H, W)`` of the masks.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` bool; pixel ``(y, x)`` is in when its centre ``(x + 0.5, y + 0.5)`` lies in
        the ellipse. A box narrower than a pixel gives an empty mask.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = int(hw[0]), int(hw[1])
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    rx, ry = (b[:, 2] - b[:, 0]) / 2, (b[:, 3] - b[:, 1]) / 2
    ok = (rx > 0) & (ry > 0)
    rx, ry = np.where(ok, rx, 1.0), np.where(ok, ry, 1.0)
    x = (np.arange(w) + 0.5)[None, None, :]
    y = (np.arange(h) + 0.5)[None, :, None]
    with np.errstate(over="ignore"):  # a sub-pixel radius overflows to inf: outside, as it should
        inside = ((x - cx[:, None, None]) / rx[:, None, None]) ** 2 + (
            (y - cy[:, None, None]) / ry[:, None, None]
        ) ** 2 <= 1.0
    return inside & ok[:, None, None]
