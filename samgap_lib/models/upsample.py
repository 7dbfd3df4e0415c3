"""Low-resolution mask logits to binary masks at the image's size, fast and exactly as
``F.interpolate(mode="bilinear", align_corners=False) > threshold``.

SAM2 and SAM3 predict masks at a quarter of the model's input size; the official predictors
resize every candidate mask (three per object when ``multimask_output``) to the image with one
bilinear interpolation and threshold it. For 50 objects on one image that resize is as costly
as the mask decoder itself on CPU. Two facts make it cheap:

1. Bilinear resizing is separable and linear: ``out = Ay @ L @ Ax.T`` with fixed, non-negative
   ``(H, h)`` and ``(W, w)`` weight matrices whose rows sum to 1 (`bilinear_matrix`). Each row
   has at most two non-zero weights, so ``out[i, j]`` is a convex combination of the logits of at
   most 2 x 2 low-resolution cells.
2. A convex combination of values ``<= t`` is ``<= t``. An output pixel can exceed the
   threshold only if one of its supporting cells does. So only the output rows and columns that
   the cells above the threshold support need computing; the rest of the mask is False.

`upsample_masks` computes each mask on that crop with two small matrix products. The result
equals the interpolate-then-threshold masks except where the interpolated logit is within float
rounding (~1e-6) of the threshold (tested against ``F.interpolate``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["bilinear_matrix", "upsample_masks"]


@lru_cache(maxsize=64)
def _matrix(n_in: int, n_out: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    eye = torch.eye(n_in, dtype=torch.float32)[None, None]
    # resizing the identity along one axis gives the weights PyTorch's kernel uses, bit for bit
    a = F.interpolate(eye, size=(n_out, n_in), mode="bilinear", align_corners=False)[0, 0]
    nz = (a > 0).numpy()
    # per input cell: the first and last output row it supports
    first_out = np.where(nz.any(0), nz.argmax(0), n_out)
    last_out = np.where(nz.any(0), n_out - 1 - nz[::-1].argmax(0), -1)
    # per output row: the first and last input cell it reads
    first_in = nz.argmax(1)
    last_in = n_in - 1 - nz[:, ::-1].argmax(1)
    return a.contiguous(), np.stack([first_out, last_out]), np.stack([first_in, last_in])


def bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``(n_out, n_in)`` float32 weights of a 1-D bilinear resize (``align_corners=False``)."""
    return _matrix(int(n_in), int(n_out))[0]


def _span(cells: np.ndarray, n_in: int, n_out: int) -> tuple[int, int, int, int] | None:
    """Output range ``[o0, o1)`` supported by input cells ``cells``, and the input range
    ``[i0, i1)`` those output rows read; None when no output reads any of the cells (a
    downsampling resize skips cells)."""
    _, out_of_in, in_of_out = _matrix(n_in, n_out)
    first, last = out_of_in[0, cells], out_of_in[1, cells]
    used = last >= 0
    if not used.any():
        return None
    o0, o1 = int(first[used].min()), int(last[used].max()) + 1
    return o0, o1, int(in_of_out[0, o0:o1].min()), int(in_of_out[1, o0:o1].max()) + 1


def upsample_masks(
    logits: torch.Tensor | np.ndarray, size: tuple[int, int], threshold: float = 0.0
) -> np.ndarray:
    """Binary masks ``(..., H, W)`` of low-resolution logits ``(..., h, w)`` resized to ``size``.

    Same result as ``F.interpolate(logits, size, mode="bilinear", align_corners=False) >
    threshold`` (up to float rounding at the threshold), computed only where a mask can be on.

    Parameters
    ----------
    logits
        Mask logits, any leading shape (``(N, C, h, w)`` for N objects x C candidates).
    size
        ``(H, W)`` of the output (the original image).
    threshold
        Logit threshold (0 = probability 0.5, SAM's default).

    On CUDA / MPS tensors this is plain ``F.interpolate`` on the device (fast there).
    """
    t = torch.as_tensor(logits).detach()
    if t.ndim < 2:
        raise ValueError(f"logits must be (..., h, w), got shape {tuple(t.shape)}.")
    lead, (h, w) = t.shape[:-2], t.shape[-2:]
    big_h, big_w = int(size[0]), int(size[1])
    if t.device.type != "cpu":  # accelerators resize whole stacks faster than crop by crop
        up = F.interpolate(
            t.reshape(-1, 1, h, w).float(),
            size=(big_h, big_w),
            mode="bilinear",
            align_corners=False,
        )
        return (up > threshold).cpu().numpy().reshape(*lead, big_h, big_w)
    flat = t.reshape(-1, h, w).float().cpu()
    out = np.zeros((flat.shape[0], big_h, big_w), dtype=bool)
    if flat.shape[0] == 0:
        return out.reshape(*lead, big_h, big_w)
    ay, ax = bilinear_matrix(h, big_h), bilinear_matrix(w, big_w)
    on = (flat > threshold).numpy()
    rows_on, cols_on = on.any(2), on.any(1)
    for k in np.nonzero(rows_on.any(1))[0]:
        rs = _span(np.nonzero(rows_on[k])[0], h, big_h)
        cs = _span(np.nonzero(cols_on[k])[0], w, big_w)
        if rs is None or cs is None:
            continue
        (r0, r1, a0, a1), (c0, c1, b0, b1) = rs, cs
        crop = ay[r0:r1, a0:a1] @ (flat[k, a0:a1, b0:b1] @ ax[c0:c1, b0:b1].T)
        out[k, r0:r1, c0:c1] = (crop > threshold).numpy()
    return out.reshape(*lead, big_h, big_w)
