"""Speed of samgap's model wrappers against the official call patterns, on CPU.

Run ``samgap bench models [--out results.json] [--repeats N]``. Prints one table;
every ratio is measured within this one run. Peak memory is the peak process RSS above the
level before each measured section (psutil, sampled every 2 ms in a thread), not tracemalloc,
which does not see PyTorch's allocations.

1. ``sam2_50_prompts``: 50 box prompts on one image (384x512, the synthetic orchard's size, and
   720x1280, MinneApple's), Meta SAM2 hiera_t (random init) at 128, 256 and 512 px, three
   candidate masks per box and one: 50 sequential
   ``SAM2ImagePredictor.predict`` calls vs one samgap ``predict`` call (the mask decoder runs on
   groups of 8 objects on CPU; masks resized crop by crop with `samgap_lib.models.upsample`).
2. ``sam3_8_phrases``: 8 phrases on one image, Meta SAM3 (tiny and reduced variants, random
   init, CPU through the compat layer): 8 sequential ``Sam3Processor.set_text_prompt`` calls vs
   one batched samgap ``segment``.
3. ``mask_resize_150``: 150 low-resolution masks to a 384x512 image, ``F.interpolate`` vs
   `samgap_lib.models.upsample.upsample_masks` (identical masks).
4. ``overhead_*``: samgap's wrapper (preprocessing, prompt scaling, mask upsampling,
   numpy conversion included) against the bare transformers forward on the same tensors.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import parse_hw
from ..data import synthetic_orchard
from ..io import write_json

SMALL_SAM3_DIMS = {
    "resolution": 336,
    "d_model": 256,
    "vit_dim": 256,
    "vit_depth": 4,
    "vit_heads": 4,
    "text_width": 256,
    "text_layers": 4,
    "text_heads": 4,
    "ffn": 1024,
    "heads": 8,
    "num_queries": 100,
}


THREADS: int | None = None


class PeakRSS:
    """Peak RSS above the starting level while the block runs (bytes)."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self.proc = psutil.Process(os.getpid())
        self.interval = interval
        self.peak = 0

    def __enter__(self) -> PeakRSS:
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def paired(
    base: Callable[[], Any], ours: Callable[[], Any], repeats: int
) -> tuple[float, float, float, float]:
    """Best seconds of ``base`` and ``ours`` timed alternately (so load changes on a shared
    machine hit both alike), after one warm-up each; then the peak RSS delta (MB) of one run
    of each. Returns ``(t_base, mem_base, t_ours, mem_ours)``."""
    if THREADS:
        torch.set_num_threads(THREADS)  # importing sam2/sam3/transformers may have reset it
    base()
    ours()
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, fn in enumerate((base, ours)):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    mems = []
    for fn in (base, ours):
        with PeakRSS() as mem:
            fn()
        mems.append(mem.delta_mb)
    return best[0], mems[0], best[1], mems[1]


def _boxes(sample: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    boxes = sample.boxes
    h, w = sample.image.shape[:2]
    extra = n - len(boxes)
    if extra > 0:
        xy = rng.uniform(0, [w - 20, h - 20], (extra, 2))
        wh = rng.uniform(10, 40, (extra, 2))
        boxes = np.concatenate([boxes, np.concatenate([xy, np.minimum(xy + wh, [w, h])], 1)])
    return boxes[:n].astype(np.float32)


def bench_sam2_50(
    repeats: int,
    sizes: tuple[int, ...] = (128, 256, 512),
    images: tuple[tuple[int, int], ...] = ((384, 512), (720, 1280)),
) -> list[dict[str, Any]]:
    """50 box prompts on one image: official predict x50 vs one batched samgap call, at several
    model input sizes (hiera_t, random init), image sizes ``(H, W)`` and with 3 or 1 candidate
    masks. The official predictor resizes every candidate to the full image; samgap resizes
    only the crop each mask can reach, so the image size matters to the ratio."""
    rows: list[dict[str, Any]] = []
    for hw in images:
        rows += _bench_sam2_50_on(repeats, sizes, hw)
    return rows


def _bench_sam2_50_on(
    repeats: int, sizes: tuple[int, ...], hw: tuple[int, int]
) -> list[dict[str, Any]]:
    from ..models.meta.sam2 import (
        MetaSam2PromptSegmenter,
        build_meta_sam2,
        reduced_resolution_overrides,
    )

    rows: list[dict[str, Any]] = []
    sample = synthetic_orchard(1, seed=0, size=hw)[0]
    boxes = _boxes(sample, 50, np.random.default_rng(0))
    for size in sizes:
        torch.manual_seed(0)
        model = build_meta_sam2(
            "configs/sam2.1/sam2.1_hiera_t.yaml", None, "cpu", reduced_resolution_overrides(size)
        )
        seg = MetaSam2PromptSegmenter(model)
        seg.set_image(sample.image)  # official predictor and wrapper share this encoding
        official = seg.predictor
        for multimask in (True, False):

            def sequential(mm: bool = multimask, pred: Any = official) -> None:
                for b in boxes:
                    pred.predict(box=b, multimask_output=mm)

            def batched(mm: bool = multimask, seg: Any = seg) -> None:
                seg.predict(boxes=boxes, multimask=mm)

            t_seq, m_seq, t_bat, m_bat = paired(sequential, batched, repeats)
            res = seg.predict(boxes=boxes, multimask=multimask)
            for i in (0, 17, 49):  # same masks as the official calls
                masks, _, _ = official.predict(box=boxes[i], multimask_output=multimask)
                ours = res.masks[i] if multimask else res.masks[i][None]
                assert (ours != masks.astype(bool)).mean() < 1e-4
            what = f"{hw[0]}x{hw[1]} image, hiera_t {size} px, {3 if multimask else 1} mask(s)/box"
            rows.append(
                {
                    "bench": "sam2_50_prompts",
                    "variant": f"{what}: Meta SAM2ImagePredictor.predict x50",
                    "seconds": t_seq,
                    "peak_rss_mb": m_seq,
                }
            )
            rows.append(
                {
                    "bench": "sam2_50_prompts",
                    "variant": f"{what}: samgap predict (one batched call)",
                    "seconds": t_bat,
                    "peak_rss_mb": m_bat,
                    "speedup": t_seq / t_bat,
                }
            )
    return rows


def bench_upsample(repeats: int) -> list[dict[str, Any]]:
    """Resizing 50 objects x 3 candidate masks (64x64 logits, apple-sized blobs) to a 384x512
    image: ``F.interpolate`` then threshold (what the predictors do) vs `upsample_masks`."""
    import torch.nn.functional as F

    from ..models.upsample import upsample_masks

    rng = np.random.default_rng(0)
    logits = torch.full((50, 3, 64, 64), -8.0)
    for i in range(50):
        y, x = rng.integers(4, 58, 2)
        r = int(rng.integers(2, 5))
        logits[i, :, y - r : y + r, x - r : x + r] = 8.0

    def interpolate() -> None:
        up = F.interpolate(logits, size=(384, 512), mode="bilinear", align_corners=False)
        (up > 0).numpy()

    def ours() -> None:
        upsample_masks(logits, (384, 512))

    t_i, m_i, t_o, m_o = paired(interpolate, ours, repeats)
    ref = F.interpolate(logits, size=(384, 512), mode="bilinear", align_corners=False) > 0
    assert (upsample_masks(logits, (384, 512)) == ref.numpy()).all()
    return [
        {
            "bench": "mask_resize_150",
            "variant": "F.interpolate + threshold, 150 masks 64x64 -> 384x512",
            "seconds": t_i,
            "peak_rss_mb": m_i,
        },
        {
            "bench": "mask_resize_150",
            "variant": "samgap upsample_masks (crops around positive cells, same masks)",
            "seconds": t_o,
            "peak_rss_mb": m_o,
            "speedup": t_i / t_o,
        },
    ]


def bench_sam3_8(repeats: int) -> list[dict[str, Any]]:
    from ..models.archs import reset_parameters
    from ..models.meta.sam3 import MetaSam3ConceptSegmenter, build_meta_sam3
    from ..models.meta.sam3_cpu import init_uninitialised_text_params
    from ..models.testing import META_SAM3_TEST_DIMS

    phrases = [
        "apple",
        "ripe apple",
        "unripe apple",
        "red apple",
        "green apple",
        "leaf",
        "branch",
        "pear",
    ]
    rows = []
    for label, dims in (("tiny", META_SAM3_TEST_DIMS), ("reduced", SMALL_SAM3_DIMS)):
        torch.manual_seed(0)
        model = build_meta_sam3("cpu", dims=dims)
        reset_parameters(model, embeddings=False)
        init_uninitialised_text_params(model, 0)
        seg = MetaSam3ConceptSegmenter(
            model, threshold=0.5, info={"resolution": dims["resolution"]}
        )
        img = synthetic_orchard(1, seed=1, size=(384, 512))[0].image
        seg.set_image(img)

        def sequential(seg: MetaSam3ConceptSegmenter = seg) -> None:
            for p in phrases:
                seg.segment_sequential(p)  # Sam3Processor.set_text_prompt under the compat layer

        def batched(seg: MetaSam3ConceptSegmenter = seg) -> None:
            seg.segment(phrases=phrases)

        t_seq, m_seq, t_bat, m_bat = paired(sequential, batched, repeats)
        n_params = sum(p.numel() for p in model.parameters())
        name = f"Meta SAM3 {label} ({n_params / 1e6:.1f}M, {dims['resolution']} px)"
        rows.append(
            {
                "bench": "sam3_8_phrases",
                "variant": f"{name}: set_text_prompt x8",
                "seconds": t_seq,
                "peak_rss_mb": m_seq,
            }
        )
        rows.append(
            {
                "bench": "sam3_8_phrases",
                "variant": f"{name}: samgap segment (batched, {seg.phrases_per_pass(8)} per pass)",
                "seconds": t_bat,
                "peak_rss_mb": m_bat,
                "speedup": t_seq / t_bat,
            }
        )
    return rows


def bench_overhead(repeats: int) -> list[dict[str, Any]]:
    from transformers import Sam2ImageProcessor, Sam2Model, Sam2Processor

    from ..models.archs import released_sam2_config
    from ..models.base import check_prompts
    from ..models.hf.sam2 import HFPromptSegmenter

    torch.manual_seed(0)
    size = 256
    model = Sam2Model(released_sam2_config("tiny", size, video=False)).eval()
    ip = Sam2ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": size // 4, "width": size // 4}
    )
    seg = HFPromptSegmenter(model, Sam2Processor(image_processor=ip), device="cpu")
    sample = synthetic_orchard(1, seed=2, size=(384, 512))[0]
    boxes = _boxes(sample, 50, np.random.default_rng(1))
    pixel_values = seg.preprocess([sample.image])
    inputs = seg.model_inputs(check_prompts(boxes=boxes), sample.image.shape[:2])

    @torch.inference_mode()
    def bare() -> None:
        emb = model.get_image_embeddings(pixel_values)
        model(image_embeddings=emb, multimask_output=True, **inputs)

    def wrapped() -> None:
        seg.set_image(sample.image)
        seg.predict(boxes=boxes, multimask=True)

    t_bare, m_bare, t_wrap, m_wrap = paired(bare, wrapped, repeats)
    rows = [
        {
            "bench": "overhead_sam2",
            "variant": "transformers Sam2Model (hiera_t, 256 px) bare encode+decode 50 boxes",
            "seconds": t_bare,
            "peak_rss_mb": m_bare,
        },
        {
            "bench": "overhead_sam2",
            "variant": "samgap set_image + predict (pre/post incl.)",
            "seconds": t_wrap,
            "peak_rss_mb": m_wrap,
            "overhead": t_wrap / t_bare - 1,
        },
    ]
    seg.set_image(sample.image)
    emb, _ = seg.image_embeddings

    @torch.inference_mode()
    def bare_decode() -> None:
        model(image_embeddings=emb, multimask_output=True, **inputs)

    t_bd, m_bd, t_wd, m_wd = paired(
        bare_decode, lambda: seg.predict(boxes=boxes, multimask=True), repeats
    )
    rows.append(
        {
            "bench": "overhead_sam2_decode",
            "variant": "bare decode only (cached embeddings)",
            "seconds": t_bd,
            "peak_rss_mb": m_bd,
        }
    )
    rows.append(
        {
            "bench": "overhead_sam2_decode",
            "variant": "samgap predict only (scaling + 150 masks upsampled to 384x512)",
            "seconds": t_wd,
            "peak_rss_mb": m_wd,
            "overhead": t_wd / t_bd - 1,
        }
    )
    # the realistic operating point: full 1024 px input, 10 boxes on a MinneApple-sized image
    model = Sam2Model(released_sam2_config("tiny", 1024, video=False)).eval()
    ip = Sam2ImageProcessor(
        size={"height": 1024, "width": 1024}, mask_size={"height": 256, "width": 256}
    )
    seg = HFPromptSegmenter(model, Sam2Processor(image_processor=ip), device="cpu")
    big = synthetic_orchard(1, seed=3, size=(1280, 720))[0]
    boxes = _boxes(big, 10, np.random.default_rng(2))
    pixel_values = seg.preprocess([big.image])
    inputs = seg.model_inputs(check_prompts(boxes=boxes), big.image.shape[:2])

    @torch.inference_mode()
    def bare_1024() -> None:
        emb = model.get_image_embeddings(pixel_values)
        model(image_embeddings=emb, multimask_output=True, **inputs)

    def wrapped_1024() -> None:
        seg.set_image(big.image)
        seg.predict(boxes=boxes, multimask=True)

    t_b, m_b, t_w, m_w = paired(bare_1024, wrapped_1024, max(1, repeats // 2))
    rows.append(
        {
            "bench": "overhead_sam2_1024",
            "variant": "bare Sam2Model hiera_t 1024 px encode+decode 10 boxes",
            "seconds": t_b,
            "peak_rss_mb": m_b,
        }
    )
    rows.append(
        {
            "bench": "overhead_sam2_1024",
            "variant": "samgap set_image + predict on 1280x720 image",
            "seconds": t_w,
            "peak_rss_mb": m_w,
            "overhead": t_w / t_b - 1,
        }
    )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'bench':<22} {'variant':<78} {'seconds':>9} {'peak MB':>8} {'ratio':>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = ""
        if "speedup" in r:
            ratio = f"{r['speedup']:.1f}x faster"
        elif "overhead" in r:
            ratio = f"{100 * r['overhead']:+.1f}% ovh"
        lines.append(
            f"{r['bench']:<22} {r['variant'][:78]:<78} {r['seconds']:>9.4f} {r['peak_rss_mb']:>8.1f} {ratio:>12}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, optionally write JSON; returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--only", choices=["resize", "sam2", "sam3", "overhead"], action="append")
    parser.add_argument(
        "--images",
        nargs="+",
        type=parse_hw,
        default=[(384, 512), (720, 1280)],
        metavar="HxW",
        help="image sizes of the 50-prompt SAM2 bench (default: 384x512 720x1280)",
    )
    args = parser.parse_args(argv)
    global THREADS
    THREADS = args.threads
    todo = args.only or ["resize", "sam2", "sam3", "overhead"]
    benches = {
        "resize": bench_upsample,
        "sam2": lambda r: bench_sam2_50(r, images=tuple(args.images)),
        "sam3": bench_sam3_8,
        "overhead": bench_overhead,
    }
    rows: list[dict[str, Any]] = []
    for name in ("resize", "sam2", "sam3", "overhead"):
        if name in todo:
            if args.threads:
                torch.set_num_threads(args.threads)  # imports of sam2/sam3 may reset it
            rows += benches[name](args.repeats)
    env = {
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "memory": "peak process RSS above the pre-section level (psutil, sampled every 2 ms)",
    }
    print(
        f"samgap model benchmarks on CPU ({env['torch_threads']} torch threads); ratios from this run"
    )
    print(format_table(rows))
    if args.out:
        write_json({"env": env, "results": rows}, args.out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
