"""upsample_masks: the same masks as interpolate-then-threshold, computed only where needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from samgap_lib.models.upsample import bilinear_matrix, upsample_masks


def reference(logits: torch.Tensor, size: tuple[int, int], threshold: float) -> np.ndarray:
    lead, (h, w) = logits.shape[:-2], logits.shape[-2:]
    up = F.interpolate(
        logits.reshape(-1, 1, h, w).float(), size=size, mode="bilinear", align_corners=False
    )
    return (up > threshold).numpy().reshape(*lead, *size)


@pytest.mark.parametrize(
    "shape,size",
    [
        ((5, 3, 64, 64), (384, 512)),
        ((4, 32, 32), (128, 128)),
        ((2, 1, 16, 24), (50, 37)),  # downsampling along one axis
        ((3, 64, 64), (720, 1280)),
        ((1, 8, 8), (8, 8)),  # same size
    ],
)
@pytest.mark.parametrize("threshold", [0.0, 1.5, -2.0])
def test_equals_interpolate_then_threshold(shape, size, threshold):
    g = torch.Generator().manual_seed(sum(shape) + int(threshold * 10))
    logits = torch.randn(*shape, generator=g) * 4 - 3  # sparse positives, like apples
    ours = upsample_masks(logits, size, threshold)
    assert ours.shape == (*shape[:-2], *size) and ours.dtype == bool
    np.testing.assert_array_equal(ours, reference(logits, size, threshold))


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    big_h=st.integers(1, 90),
    big_w=st.integers(1, 90),
    seed=st.integers(0, 10_000),
    shift=st.floats(-6, 2),
)
def test_property_any_sizes(h, w, big_h, big_w, seed, shift):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, h, w, generator=g) * 3 + shift
    ref = F.interpolate(logits[:, None], size=(big_h, big_w), mode="bilinear", align_corners=False)
    ours = upsample_masks(logits, (big_h, big_w))
    differ = ours != (ref[:, 0] > 0).numpy()
    # only pixels whose interpolated logit is float rounding away from the threshold may differ
    assert np.all(np.abs(ref[:, 0].numpy()[differ]) < 1e-5)


def test_all_negative_gives_empty_masks_without_work():
    out = upsample_masks(torch.full((4, 2, 16, 16), -5.0), (100, 80))
    assert out.shape == (4, 2, 100, 80) and not out.any()


def test_empty_stack_and_numpy_input():
    assert upsample_masks(np.zeros((0, 3, 8, 8), np.float32), (20, 30)).shape == (0, 3, 20, 30)
    m = upsample_masks(np.full((8, 8), 2.0, np.float32), (16, 16))
    assert m.shape == (16, 16) and m.all()


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(\.\.\., h, w\)"):
        upsample_masks(torch.zeros(5), (10, 10))


def test_bilinear_matrix_rows_are_convex():
    a = bilinear_matrix(64, 384)
    assert a.shape == (384, 64)
    assert torch.all(a >= 0)
    torch.testing.assert_close(a.sum(1), torch.ones(384))
    assert int((a > 0).sum(1).max()) <= 2
