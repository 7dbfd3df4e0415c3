"""Chapter 2 helpers: parameter counts of the full-size models (built without weights), latency."""

from __future__ import annotations

import numpy as np
import pytest

from samgap_lib.data import synthetic_orchard
from samgap_lib.models import load_sam2, load_sam3
from samgap_lib.models.testing import write_tiny_checkpoints
from samgap_lib.studies.architecture import parameter_counts, stage_latency

# SAM 2.1 README (facebookresearch/sam2): millions of parameters
README = {"tiny": 38.9, "small": 46.0, "base-plus": 80.8, "large": 224.4}


@pytest.mark.parametrize("name", sorted(README))
def test_sam2_counts_match_readme(name):
    counts = parameter_counts(f"facebook/sam2.1-hiera-{name}")
    total = counts["total"] / 1e6
    assert abs(total - README[name]) / README[name] < 0.02, total
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]
    assert counts["image_encoder.trunk"] > counts["mask_decoder"] > counts["prompt_encoder"] > 0
    assert counts["memory_attention"] > 0 and counts["memory_encoder"] > 0


def test_sam3_counts():
    counts = parameter_counts("sam3")
    assert abs(counts["total"] / 1e6 - 848) / 848 < 0.02  # 859.9M here vs 848M in Meta's README
    for part in (
        "text_encoder",
        "detr_encoder",
        "detr_decoder",
        "presence_head",
        "geometry_exemplar_encoder",
    ):
        assert counts[part] > 0
    assert counts["vision_encoder.backbone"] > counts["text_encoder"] > counts["detr_decoder"]
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]
    with pytest.raises(KeyError):
        parameter_counts("sam4")


def test_stage_latency(tmp_path):
    paths = write_tiny_checkpoints(tmp_path, include=("hf-sam2", "hf-sam3", "meta-sam3"))
    img = synthetic_orchard(1, seed=0, size=(96, 128))[0].image
    lat = stage_latency(load_sam2(paths["hf-sam2"], device="cpu"), img, repeats=2)
    assert lat["device"].startswith("cpu") and lat["backend"] == "transformers"
    assert lat["image_encoder"] > 0 and lat["prompt_decode"] > 0
    lat = stage_latency(
        load_sam3(paths["hf-sam3"], device="cpu"), img, phrases=["apple", "pear"], repeats=2
    )
    assert all(lat[k] > 0 for k in ("image_encoder", "text_encoder", "detector", "postprocess"))
    lat = stage_latency(load_sam3(paths["meta-sam3"], backend="meta", device="cpu"), img, repeats=2)
    assert np.isfinite(lat["prompts"]) and lat["backend"] == "meta"


@pytest.mark.slow
def test_benchmark_script_runs(tmp_path):
    import json

    from samgap_lib.benchmarks import models as bench

    out = tmp_path / "r.json"
    assert (
        bench.main(["--only", "sam2", "--repeats", "1", "--images", "96x128", "--out", str(out)])
        == 0
    )
    rows = json.loads(out.read_text())["results"]
    assert {r["bench"] for r in rows} == {"sam2_50_prompts"}
    assert all(r["variant"].startswith("96x128 image") for r in rows)
    assert (
        rows[1]["speedup"] > 0
    )  # ratios are reported, not asserted: timing on shared cores is noisy
