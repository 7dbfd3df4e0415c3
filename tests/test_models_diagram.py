"""Chapter 2 helpers: module inventory, traced prompt routes, presence decomposition, diagram."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from samgap_lib.data import synthetic_orchard
from samgap_lib.models import load_sam2, load_sam3
from samgap_lib.models.testing import write_tiny_checkpoints
from samgap_lib.studies.architecture import parameter_counts
from samgap_lib.studies.diagram import (
    COMPONENTS,
    draw_architecture,
    module_inventory,
    presence_decomposition,
    prompt_routes,
    same_architecture,
    trace_modules,
)


@pytest.fixture(scope="module")
def roles(tmp_path_factory):
    paths = write_tiny_checkpoints(
        tmp_path_factory.mktemp("tiny"), include=("hf-sam2", "hf-sam3", "hf-sam3-tracker")
    )
    return {
        "sam2": load_sam2(paths["hf-sam2"], device="cpu"),
        "sam3": load_sam3(paths["hf-sam3"], device="cpu"),
        "sam3_tracker": load_sam3(paths["hf-sam3-tracker"], device="cpu", role="tracker"),
    }


@pytest.fixture(scope="module")
def image():
    return synthetic_orchard(1, seed=0, size=(96, 128))[0].image


def test_same_architecture():
    a, b = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    assert same_architecture(a, b)
    assert not same_architecture(a, torch.nn.Linear(4, 3))
    assert not same_architecture(a, torch.nn.Linear(3, 4, bias=False))


def test_inventory_full_size():
    rows = {r["component"]: r for r in module_inventory("large")}
    assert len(rows) == len(COMPONENTS) + 1
    # SAM3's tracker reuses SAM2's prompt encoder, mask decoder and memory, shape for shape
    for name in ("prompt encoder", "mask decoder", "memory attention", "memory encoder"):
        assert rows[name]["same_architecture"] is True, name
        assert rows[name]["sam2_params"] == rows[name]["sam3_params"] > 0
    assert rows["image encoder (backbone)"]["same_architecture"] is False
    for name in ("text encoder", "DETR encoder", "DETR decoder", "presence head"):
        assert rows[name]["sam2_class"] is None and rows[name]["sam3_params"] > 0
    # one backbone: the tracker has no image encoder of its own
    assert rows["tracker's own image encoder"]["sam3_class"] is None


def test_trace_modules_order_and_depth():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.ReLU()))
    ran = trace_modules(model, lambda: model(torch.zeros(1, 2)), depth=1)
    assert ran == ["0", "1"]
    assert "1.0" in trace_modules(model, lambda: model(torch.zeros(1, 2)), depth=2)
    assert not model._forward_hooks and not model[0]._forward_hooks  # hooks removed


def test_prompt_routes(roles, image):
    routes = prompt_routes(roles, image, point=(60, 40), box=(30, 20, 90, 70))
    for who in ("SAM2", "SAM3 tracker"):
        assert routes[f"{who}: image"]["components"] == ["image encoder"]
        for kind in ("point", "box", "mask"):
            assert routes[f"{who}: {kind}"]["components"] == ["prompt encoder", "mask decoder"]
    phrase = set(routes["SAM3: noun phrase"]["components"])
    assert {"text encoder", "DETR encoder", "DETR decoder", "presence head"} <= phrase
    assert "geometry / exemplar encoder" not in phrase and "image encoder" not in phrase
    assert "geometry / exemplar encoder" in routes["SAM3: exemplar box"]["components"]
    assert "geometry / exemplar encoder" in routes["SAM3: phrase + exemplar"]["components"]


def test_presence_decomposition(roles, image):
    dec = presence_decomposition(roles["sam3"], image, ["apple", "pear"])
    assert set(dec) == {"apple", "pear"}
    for d in dec.values():
        assert 0 <= d["presence"] <= 1
        np.testing.assert_allclose(d["score"], d["query_prob"] * d["presence"], rtol=1e-6)
    # the concept role keeps exactly the queries whose product passes its threshold
    pred = roles["sam3"].segment(image, phrases=["apple"], threshold=0.2)["apple"]
    assert len(pred) == int((dec["apple"]["score"] > 0.2).sum())
    with pytest.raises(ValueError):
        presence_decomposition(roles["sam2"], image, ["apple"])


def test_draw_architecture(roles, image):
    import matplotlib.pyplot as plt

    routes = prompt_routes(roles, image, point=(60, 40), box=(30, 20, 90, 70))
    fig = draw_architecture(parameter_counts("tiny"), parameter_counts("sam3"), routes)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("text encoder") for t in texts)
    assert any(t.startswith("presence head") for t in texts)
    n_routed = len(fig.axes[0].patches)
    plt.close(fig)
    fig = draw_architecture(parameter_counts("tiny"), parameter_counts("sam3"))
    assert len(fig.axes[0].patches) < n_routed  # prompt arrows come from the routes
    plt.close(fig)
