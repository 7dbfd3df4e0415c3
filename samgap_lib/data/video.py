"""Synthetic orchard video: a camera panning along a tree row, with stable instance ids.

One wide scene is rendered (`render_orchard_scene`) and the frames are windows sliding across
it, with a little vertical camera shake. An apple keeps its ``instance_id`` in every frame where
it is visible, enters at one edge and leaves at the other, so temporal metrics and video
propagation (SAM2 memory, SAM3 tracking) have exact ground truth.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np

from .synthetic import OrchardConfig, _hide_tiny_apples, _to_uint8, render_orchard_scene
from .types import Instance, Sample

__all__ = ["clip_tracks", "synthetic_orchard_clips", "synthetic_orchard_video"]


def synthetic_orchard_video(
    n_frames: int = 8,
    seed: int | tuple[int, ...] = 0,
    size: tuple[int, int] = (256, 256),
    pan: int = 12,
    shake: int = 2,
    config: OrchardConfig | None = None,
    min_frame_area: int = 1,
) -> list[Sample]:
    """Generate one panning sequence of ``n_frames`` frames.

    Parameters
    ----------
    n_frames
        Number of frames (>= 1).
    seed
        Seed (an int, or a tuple of ints for a separate stream); the whole sequence depends
        only on it and the other arguments.
    size
        ``(H, W)`` of each frame.
    pan
        Horizontal camera motion in pixels per frame (>= 0).
    shake
        Maximum vertical camera offset in pixels (a seeded random walk, clipped).
    config
        Scene parameters; by default an `OrchardConfig` whose apple count is scaled to the
        scene width, so apple density matches `synthetic_orchard`.
    min_frame_area
        Instances with fewer visible pixels in a frame are left out of that frame.

    Returns
    -------
    list of Sample
        One per frame; ``image_id`` is the frame index, ``meta`` holds ``frame_index``,
        ``offset`` (x, y of the window in the scene) and the generator parameters. Instance
        ids are stable across frames.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}.")
    if pan < 0 or shake < 0:
        raise ValueError(f"pan and shake must be >= 0, got pan={pan}, shake={shake}.")
    h, w = int(size[0]), int(size[1])
    scene_w = w + pan * (n_frames - 1)
    scene_h = h + 2 * shake
    base = config or OrchardConfig(p_empty=0.0)
    scale = scene_w / w
    cfg = replace(
        base,
        max_apples=max(1, round(base.max_apples * scale)),
        n_leaves=tuple(round(v * scale) for v in base.n_leaves),
    )
    entropy = [int(s) for s in (seed if isinstance(seed, tuple) else (seed,))]
    rng = np.random.default_rng(np.random.SeedSequence([*entropy, 0x51DE0]))
    img, apples = render_orchard_scene(rng, scene_h, scene_w, cfg)
    _hide_tiny_apples(img, apples, cfg.min_visible_area, rng)
    img = _to_uint8(img)
    # Keep the ids of annotated apples only (those at least min_visible_area in the scene).
    kept = [a for a in apples if a["mask"].sum() >= cfg.min_visible_area]
    dy = np.clip(np.cumsum(rng.integers(-1, 2, n_frames)), -shake, shake) + shake
    frames = []
    for t in range(n_frames):
        x0, y0 = t * pan, int(dy[t])
        win = (slice(y0, y0 + h), slice(x0, x0 + w))
        instances = []
        for k, a in enumerate(kept):
            m = a["mask"][win]
            area = int(m.sum())
            if area >= min_frame_area:
                instances.append(
                    Instance(
                        mask=m.copy(),
                        attributes={
                            "ripeness": a["ripeness"],
                            "health": a["health"],
                            "visible_fraction": round(area / int(a["amodal"].sum()), 4),
                        },
                        category="apple",
                        instance_id=k + 1,
                    )
                )
        frames.append(
            Sample(
                image=img[win].copy(),
                instances=instances,
                image_id=t,
                meta={
                    "source": "synthetic_orchard_video",
                    "seed": list(entropy) if isinstance(seed, tuple) else int(seed),
                    "frame_index": t,
                    "offset": (x0, y0),
                    "pan": pan,
                    "config": asdict(cfg),
                },
            )
        )
    return frames


def synthetic_orchard_clips(
    n: int,
    n_frames: int,
    seed: int = 0,
    size: tuple[int, int] = (256, 256),
    pan: tuple[int, int] = (6, 20),
    start: int = 0,
) -> list[list[Sample]]:
    """``n`` short panning clips (`synthetic_orchard_video`), clip ``i`` from its own seed
    stream ``(seed, start + i)`` and a pan speed drawn in ``pan`` (px per frame, inclusive), so
    clips of the training, validation and test parts (``start`` as `SPLIT_START`) never meet the
    single-seed videos of the chapters."""
    if n < 0 or n_frames < 1:
        raise ValueError(f"need n >= 0 clips of n_frames >= 1, got n={n}, n_frames={n_frames}.")
    lo, hi = int(pan[0]), int(pan[1])
    if not 0 <= lo <= hi:
        raise ValueError(f"pan must be (low, high) with 0 <= low <= high, got {pan}.")
    out = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), start + i, 0xC1195]))
        speed = int(rng.integers(lo, hi + 1))
        out.append(
            synthetic_orchard_video(
                n_frames, seed=(int(seed), start + i, 0xC1195), size=size, pan=speed
            )
        )
    return out


def clip_tracks(clip: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """A clip as arrays: frames ``(T, H, W, 3)`` and one track per instance ``(K, T, H, W)``
    bool, rows in instance-id order (empty where the instance is out of view)."""
    ids = sorted({i.instance_id for f in clip for i in f.instances})
    row = {k: r for r, k in enumerate(ids)}
    h, w = clip[0].image.shape[:2]
    tracks = np.zeros((len(ids), len(clip), h, w), bool)
    for t, f in enumerate(clip):
        for inst in f.instances:
            tracks[row[inst.instance_id], t] = inst.mask
    return np.stack([f.image for f in clip]), tracks
