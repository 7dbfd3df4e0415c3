"""The synthetic orchard: apple-tree images with exact instance masks, generated from a seed.

Each image is textured foliage (multi-scale green-brown noise with leaf blobs), with sky gaps and
red leaves as distractors, and 0 to many apples drawn back to front: shaded ellipses, ripe (red),
turning (red over yellow-green) or unripe (green), healthy or damaged (dark lesions), some in
touching clusters, some occluded by later apples or by leaves drawn in front. Each apple's
instance mask is its *visible* region; its attributes record ripeness, health, the visible
fraction (``visible_fraction``) and the amodal area.

Image ``i`` of ``synthetic_orchard(n, seed)`` depends only on ``(seed, i)``, so the first ``k``
images are the same whatever ``n`` is, and the same on every machine (numpy's PCG64 and pure
numpy drawing, no platform-dependent libraries).
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from .types import Instance, Sample

__all__ = ["OrchardConfig", "RIPENESS", "HEALTH", "synthetic_orchard", "render_orchard_scene"]

RIPENESS = ("ripe", "turning", "unripe")
HEALTH = ("healthy", "damaged")

# Base colours (RGB, 0-1) of the apple types and of the scene; each is jittered per object.
_APPLE_RGB = {
    "ripe": (0.78, 0.10, 0.09),
    "turning": (0.85, 0.45, 0.15),
    "unripe": (0.45, 0.72, 0.20),
}
_LEAF_RGB = (0.16, 0.42, 0.12)
_RED_LEAF_RGB = (0.62, 0.13, 0.10)
_SKY_RGB = (0.70, 0.82, 0.95)
CHUNK = 50  # images per task of a parallel `synthetic_orchard`


@dataclass(frozen=True)
class OrchardConfig:
    """Generator parameters (all sizes in pixels unless stated).

    Attributes
    ----------
    max_apples
        Apples per image are drawn uniformly from ``0..max_apples`` (before dropping apples
        whose visible area falls under ``min_visible_area``).
    p_empty
        Probability that an image has no apples at all (a negative image).
    radius
        ``(min, max)`` apple radius as a fraction of ``min(H, W)``.
    p_cluster
        Probability that an apple is placed touching the previous one.
    ripeness_p
        Probabilities of ripe, turning, unripe.
    p_damaged
        Probability that an apple has dark lesions.
    n_leaves
        ``(min, max)`` leaves drawn in front of the apples (occluders).
    n_red_leaves, n_sky_gaps
        ``(min, max)`` distractors: red leaves (apple-coloured, not apples) and sky gaps.
    min_visible_area
        Apples whose visible mask is smaller than this are dropped from the annotation (and from
        the image, so no unannotated apple remains).
    """

    max_apples: int = 12
    p_empty: float = 0.08
    radius: tuple[float, float] = (0.035, 0.09)
    p_cluster: float = 0.3
    ripeness_p: tuple[float, float, float] = (0.45, 0.2, 0.35)
    p_damaged: float = 0.2
    n_leaves: tuple[int, int] = (4, 14)
    n_red_leaves: tuple[int, int] = (0, 3)
    n_sky_gaps: tuple[int, int] = (0, 2)
    min_visible_area: int = 12

    def __post_init__(self) -> None:
        if self.max_apples < 0:
            raise ValueError(f"max_apples must be >= 0, got {self.max_apples}.")
        if not 0 < self.radius[0] <= self.radius[1] < 0.5:
            raise ValueError(f"radius must satisfy 0 < min <= max < 0.5, got {self.radius}.")
        if abs(sum(self.ripeness_p) - 1) > 1e-6 or min(self.ripeness_p) < 0:
            raise ValueError(
                f"ripeness_p must be 3 probabilities summing to 1, got {self.ripeness_p}."
            )
        for name in ("p_empty", "p_cluster", "p_damaged"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v}.")


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.random((gh, gw))
    ys = np.arange(h) / cell
    xs = np.arange(w) / cell
    y0 = ys.astype(int)
    x0 = xs.astype(int)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    s = min(h, w)
    n = (
        0.5 * _smooth_noise(rng, h, w, max(2, s // 4))
        + 0.3 * _smooth_noise(rng, h, w, max(2, s // 16))
        + 0.2 * _smooth_noise(rng, h, w, max(2, s // 48))
    )
    dark = np.array([0.10, 0.22, 0.06])
    light = np.array([0.30, 0.55, 0.18])
    brown = np.array([0.32, 0.24, 0.12])
    img = dark + (light - dark) * n[..., None]
    branches = _smooth_noise(rng, h, w, max(2, s // 6))
    twig = np.clip((branches - 0.72) * 6, 0, 1)[..., None]
    return img * (1 - twig) + brown * twig


def _ellipse(h, w, cy, cx, ry, rx, theta):
    """Bool mask, normalised radial coordinate and local (u, v) coords of a rotated ellipse,
    cropped to its bounding box: returns (y0, y1, x0, x1, inside, r2, u, v)."""
    r = max(ry, rx) + 1
    y0, y1 = max(0, int(cy - r)), min(h, int(cy + r) + 2)
    x0, x1 = max(0, int(cx - r)), min(w, int(cx + r) + 2)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dy, dx = yy + 0.5 - cy, xx + 0.5 - cx
    c, s = np.cos(theta), np.sin(theta)
    u = (c * dx + s * dy) / rx
    v = (-s * dx + c * dy) / ry
    r2 = u * u + v * v
    return y0, y1, x0, x1, r2 <= 1.0, r2, u, v


def _jitter(rng, rgb, amount=0.06):
    return np.clip(np.asarray(rgb) + rng.normal(0, amount, 3), 0, 1)


def _draw_leaf(rng, img, h, w, rgb, size, *, cy=None, cx=None):
    """Draw a pointed leaf (lens shape with a midrib); returns its full-image bool mask."""
    cy = rng.uniform(0, h) if cy is None else cy
    cx = rng.uniform(0, w) if cx is None else cx
    length = size * rng.uniform(0.8, 1.4)
    res = _ellipse(h, w, cy, cx, length * rng.uniform(0.3, 0.45), length, rng.uniform(0, np.pi))
    mask = np.zeros((h, w), bool)
    if res is None:
        return mask
    y0, y1, x0, x1, _, _, u, v = res
    inside = np.abs(v) <= 0.999 * (1 - u * u) * (np.abs(u) <= 1)  # lens: pointed at both ends
    if not inside.any():
        return mask
    colour = _jitter(rng, rgb, 0.05)
    shade = (0.85 + 0.25 * (1 - np.abs(v)))[..., None]
    rib = (np.abs(v) < 0.08)[..., None]
    patch = np.clip(colour * shade * np.where(rib, 1.25, 1.0), 0, 1)
    region = img[y0:y1, x0:x1]
    region[inside] = patch[inside]
    mask[y0:y1, x0:x1] = inside
    return mask


def _draw_apple(rng, img, h, w, cy, cx, radius, ripeness, damaged):
    """Draw a shaded apple; returns its full-image bool (amodal) mask."""
    ry = radius * rng.uniform(0.88, 1.0)
    rx = radius * rng.uniform(0.92, 1.08)
    res = _ellipse(h, w, cy, cx, ry, rx, rng.uniform(-0.4, 0.4))
    mask = np.zeros((h, w), bool)
    if res is None:
        return mask
    y0, y1, x0, x1, inside, r2, u, v = res
    base = _jitter(rng, _APPLE_RGB[ripeness], 0.05)
    if ripeness == "turning":  # red blush over a yellow-green side
        blush = np.clip(0.5 + 0.9 * (u * np.cos(1.0) + v * np.sin(1.0)), 0, 1)[..., None]
        colour = blush * _jitter(rng, (0.80, 0.18, 0.10), 0.04) + (1 - blush) * _jitter(
            rng, (0.78, 0.75, 0.25), 0.04
        )
    else:
        colour = np.broadcast_to(base, u.shape + (3,))
    # Lambertian-ish shading from the upper left plus a specular highlight.
    lx, ly = -0.5, -0.6
    nz = np.sqrt(np.clip(1 - r2, 0, 1))
    lambert = np.clip(0.35 + 0.75 * (nz * 0.6 - u * lx * 0.5 - v * ly * 0.5), 0.2, 1.15)
    spec = np.exp(-((u + 0.35) ** 2 + (v + 0.4) ** 2) / 0.03) * 0.35
    patch = np.clip(colour * lambert[..., None] + spec[..., None], 0, 1)
    if damaged:  # dark brown lesions inside the apple
        for _ in range(rng.integers(1, 4)):
            lu, lv = rng.uniform(-0.55, 0.55, 2)
            lr = rng.uniform(0.12, 0.28)
            spot = ((u - lu) ** 2 + (v - lv) ** 2) < lr * lr
            patch[spot] = _jitter(rng, (0.22, 0.13, 0.06), 0.03)
    region = img[y0:y1, x0:x1]
    region[inside] = patch[inside]
    mask[y0:y1, x0:x1] = inside
    return mask


def render_orchard_scene(
    rng: np.random.Generator, height: int, width: int, config: OrchardConfig
) -> tuple[np.ndarray, list[dict]]:
    """Render one scene: the float RGB image in [0, 1] and a record per apple, back to front.

    Each record holds ``mask`` (visible), ``amodal`` (the full apple), ``ripeness``, ``health``.
    Exposed for the video generator, which renders a wide scene and crops frames from it.
    """
    h, w = height, width
    s = min(h, w)
    img = _background(rng, h, w)
    for _ in range(rng.integers(config.n_sky_gaps[0], config.n_sky_gaps[1] + 1)):
        res = _ellipse(
            h,
            w,
            rng.uniform(0, h),
            rng.uniform(0, w),
            s * rng.uniform(0.04, 0.12),
            s * rng.uniform(0.06, 0.2),
            rng.uniform(0, np.pi),
        )
        if res is not None:
            y0, y1, x0, x1, inside, r2, _, _ = res
            sky = _jitter(rng, _SKY_RGB, 0.03) * (0.95 + 0.05 * (1 - r2[..., None]))
            img[y0:y1, x0:x1][inside] = np.clip(sky, 0, 1)[inside]
    for _ in range(rng.integers(2, 8)):  # leaves behind the apples
        _draw_leaf(rng, img, h, w, (0.2, 0.5, 0.15), s * rng.uniform(0.05, 0.12))

    n = 0 if rng.random() < config.p_empty else int(rng.integers(0, config.max_apples + 1))
    apples: list[dict] = []
    prev = None
    for _ in range(n):
        radius = s * rng.uniform(*config.radius)
        if prev is not None and rng.random() < config.p_cluster:
            ang = rng.uniform(0, 2 * np.pi)
            dist = (prev[2] + radius) * rng.uniform(0.85, 1.0)  # touching or slightly overlapping
            cy, cx = prev[0] + dist * np.sin(ang), prev[1] + dist * np.cos(ang)
        else:
            cy, cx = (
                rng.uniform(radius * 0.5, h - radius * 0.5),
                rng.uniform(radius * 0.5, w - radius * 0.5),
            )
        ripeness = RIPENESS[int(rng.choice(3, p=config.ripeness_p))]
        damaged = bool(rng.random() < config.p_damaged)
        amodal = _draw_apple(rng, img, h, w, cy, cx, radius, ripeness, damaged)
        if not amodal.any():
            continue
        for a in apples:  # later apples occlude earlier ones
            a["mask"] &= ~amodal
        apples.append(
            {
                "mask": amodal.copy(),
                "amodal": amodal,
                "ripeness": ripeness,
                "health": "damaged" if damaged else "healthy",
            }
        )
        prev = (cy, cx, radius)

    occluders = np.zeros((h, w), bool)
    for _ in range(rng.integers(config.n_leaves[0], config.n_leaves[1] + 1)):
        if apples and rng.random() < 0.5:  # aim some leaves at apples so occlusion happens
            a = apples[int(rng.integers(len(apples)))]
            ys, xs = np.nonzero(a["amodal"])
            k = int(rng.integers(len(ys)))
            occluders |= _draw_leaf(
                rng,
                img,
                h,
                w,
                _LEAF_RGB,
                s * rng.uniform(0.04, 0.1),
                cy=ys[k] + 0.5,
                cx=xs[k] + 0.5,
            )
        else:
            occluders |= _draw_leaf(rng, img, h, w, _LEAF_RGB, s * rng.uniform(0.04, 0.1))
    for _ in range(rng.integers(config.n_red_leaves[0], config.n_red_leaves[1] + 1)):
        occluders |= _draw_leaf(rng, img, h, w, _RED_LEAF_RGB, s * rng.uniform(0.05, 0.1))
    for a in apples:
        a["mask"] &= ~occluders
    # Mild sensor noise, so no region is perfectly flat.
    img = img + rng.normal(0, 0.015, img.shape)
    return np.clip(img, 0, 1), apples


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(img * 255).astype(np.uint8)


def _instances(apples: list[dict], min_visible_area: int) -> list[Instance]:
    out = []
    for a in apples:
        area = int(a["mask"].sum())
        if area < min_visible_area:
            continue
        amodal_area = int(a["amodal"].sum())
        out.append(
            Instance(
                mask=a["mask"],
                attributes={
                    "ripeness": a["ripeness"],
                    "health": a["health"],
                    "visible_fraction": round(area / amodal_area, 4),
                    "amodal_area": amodal_area,
                },
                category="apple",
                instance_id=len(out) + 1,
            )
        )
    return out


def _hide_tiny_apples(
    img: np.ndarray, apples: list[dict], min_visible_area: int, rng: np.random.Generator
) -> None:
    """Paint foliage over apples too small to annotate, so every visible apple is annotated."""
    for a in apples:
        area = int(a["mask"].sum())
        if 0 < area < min_visible_area:
            img[a["mask"]] = _jitter(rng, _LEAF_RGB, 0.03)


def synthetic_orchard(
    n_images: int,
    seed: int = 0,
    size: tuple[int, int] = (256, 256),
    config: OrchardConfig | None = None,
    start: int = 0,
    workers: int = 1,
) -> list[Sample]:
    """Generate ``n_images`` orchard samples.

    Parameters
    ----------
    n_images
        Number of images.
    seed
        Seed; image ``i`` depends only on ``(seed, start + i)``.
    size
        ``(H, W)`` of every image.
    config
        Generator parameters (`OrchardConfig`); defaults when None.
    start
        Index of the first image, for generating a dataset in chunks or a disjoint split.
    workers
        Processes that render in parallel, in chunks of `CHUNK` images (forked; on Linux only,
        elsewhere this process renders them all). The samples are the same for any number,
        since each image has its own seed.

    Returns
    -------
    list of Sample
        ``image_id`` is ``start + i``; ``meta`` holds the seed, the index and the config.
    """
    if n_images < 0:
        raise ValueError(f"n_images must be >= 0, got {n_images}.")
    h, w = (int(size[0]), int(size[1]))
    if h < 16 or w < 16:
        raise ValueError(f"size must be at least 16x16 pixels, got {size}.")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")
    config = config or OrchardConfig()
    chunks = [(c, min(c + CHUNK, start + n_images)) for c in range(start, start + n_images, CHUNK)]
    # forked workers, as torch's DataLoader's on Linux: the children run numpy only. Elsewhere a
    # worker would be spawned, and a spawned child re-runs a calling script without a main guard.
    if workers == 1 or len(chunks) < 2 or not sys.platform.startswith("linux"):
        return [s for a, b in chunks for s in _render_range(seed, a, b, h, w, config)]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=ctx) as pool:
        firsts, stops = [a for a, _ in chunks], [b for _, b in chunks]
        n = len(chunks)
        parts = pool.map(_render_range, [seed] * n, firsts, stops, [h] * n, [w] * n, [config] * n)
        return [s for part in parts for s in part]


def _render_range(
    seed: int, first: int, stop: int, h: int, w: int, config: OrchardConfig
) -> list[Sample]:
    """Samples ``first..stop-1`` of the orchard of ``seed``."""
    out = []
    for i in range(first, stop):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
        img, apples = render_orchard_scene(rng, h, w, config)
        _hide_tiny_apples(img, apples, config.min_visible_area, rng)
        out.append(
            Sample(
                image=_to_uint8(img),
                instances=_instances(apples, config.min_visible_area),
                image_id=i,
                meta={
                    "source": "synthetic_orchard",
                    "seed": int(seed),
                    "index": i,
                    "config": asdict(config),
                },
            )
        )
    return out
