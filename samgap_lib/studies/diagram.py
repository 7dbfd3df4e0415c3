"""Chapter 2: which modules exist, which prompt reaches which module, and the presence head.

* `module_inventory` builds the full-size SAM 2.1 and SAM3 video models on torch's ``meta``
  device (shapes only) and lists, component by component, which model has it, its class and
  whether SAM3's copy has exactly SAM2's parameter shapes (the same architecture).
* `trace_modules` / `prompt_routes` run real prompts through loaded role objects with forward
  hooks and report which components actually ran for each prompt type.
* `presence_decomposition` splits SAM3's instance scores into their two factors,
  ``sigmoid(query logit)`` and ``sigmoid(presence logit)``.
* `draw_architecture` draws the two models as boxes and arrows; the arrows leaving the prompt
  inputs are those `prompt_routes` observed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..models.archs import released_sam2_config, released_sam3_config

__all__ = [
    "COMPONENTS",
    "PROMPTS",
    "component_of",
    "draw_architecture",
    "memory_route",
    "module_inventory",
    "presence_decomposition",
    "prompt_routes",
    "same_architecture",
    "trace_modules",
]

# (component, path in Sam2VideoModel or None, path in Sam3VideoModel or None)
COMPONENTS: tuple[tuple[str, str | None, str | None], ...] = (
    (
        "image encoder (backbone)",
        "vision_encoder.backbone",
        "detector_model.vision_encoder.backbone",
    ),
    ("image neck (prompt/tracker path)", "vision_encoder.neck", "tracker_neck"),
    ("image neck (detector path)", None, "detector_model.vision_encoder.neck"),
    ("prompt encoder", "prompt_encoder", "tracker_model.prompt_encoder"),
    ("mask decoder", "mask_decoder", "tracker_model.mask_decoder"),
    ("memory attention", "memory_attention", "tracker_model.memory_attention"),
    ("memory encoder", "memory_encoder", "tracker_model.memory_encoder"),
    ("object pointers", "object_pointer_proj", "tracker_model.object_pointer_proj"),
    ("text encoder", None, "detector_model.text_encoder"),
    ("geometry / exemplar encoder", None, "detector_model.geometry_encoder"),
    ("DETR encoder", None, "detector_model.detr_encoder"),
    ("DETR decoder", None, "detector_model.detr_decoder"),
    ("presence head", None, "detector_model.detr_decoder.presence_head"),
    ("instance mask head", None, "detector_model.mask_decoder"),
    ("query-text scoring", None, "detector_model.dot_product_scoring"),
)

# prompt label -> (role key, description); the role keys are those of `prompt_routes`
PROMPTS: dict[str, tuple[str, str]] = {
    "SAM2: point": ("sam2", "one foreground click"),
    "SAM2: box": ("sam2", "one box"),
    "SAM2: mask": ("sam2", "low-res mask logits of an earlier prediction"),
    "SAM3 tracker: point": ("sam3_tracker", "one foreground click"),
    "SAM3 tracker: box": ("sam3_tracker", "one box"),
    "SAM3 tracker: mask": ("sam3_tracker", "low-res mask logits of an earlier prediction"),
    "SAM3: noun phrase": ("sam3", 'the phrase "apple"'),
    "SAM3: exemplar box": ("sam3", "one positive exemplar box, no phrase"),
    "SAM3: phrase + exemplar": ("sam3", '"apple" and one positive exemplar box'),
}

# module name in a transformers model (depth <= 2) -> component; the detector's own mask head
# is told apart by the model having a DETR decoder
_PROMPTABLE = {
    "vision_encoder": "image encoder",
    "prompt_encoder": "prompt encoder",
    "mask_decoder": "mask decoder",
}
_DETECTOR = {
    "vision_encoder": "image encoder",
    "text_encoder": "text encoder",
    "text_projection": "text encoder",
    "geometry_encoder": "geometry / exemplar encoder",
    "detr_encoder": "DETR encoder",
    "detr_decoder": "DETR decoder",
    "detr_decoder.presence_head": "presence head",
    "dot_product_scoring": "query-text scoring",
    "mask_decoder": "instance mask head",
}


def _get(model: torch.nn.Module, path: str) -> torch.nn.Module | None:
    obj: Any = model
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def same_architecture(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two modules have the same parameter names and shapes (weights aside)."""
    sa = [(n, tuple(p.shape)) for n, p in a.named_parameters()]
    sb = [(n, tuple(p.shape)) for n, p in b.named_parameters()]
    return sa == sb


def module_inventory(sam2_name: str = "sam2.1-hiera-large") -> list[dict[str, Any]]:
    """Which components the full-size SAM 2.1 and SAM3 video models have, built without weights.

    Parameters
    ----------
    sam2_name
        SAM 2.1 size (see `samgap_lib.models.archs.released_sam2_config`).

    Returns
    -------
    list of dict
        One row per entry of `COMPONENTS`: ``component``, ``sam2_class`` / ``sam3_class``
        (None where the model lacks it), ``sam2_params`` / ``sam3_params`` and
        ``same_architecture`` (True/False where both have it, else None). A final row
        ``"tracker's own image encoder"`` says whether SAM3's tracker has a backbone of its own
        (it does not: it reads the detector's).
    """
    from transformers import Sam2VideoModel, Sam3VideoModel

    with torch.device("meta"):
        m2 = Sam2VideoModel(released_sam2_config(sam2_name, video=True))
        m3 = Sam3VideoModel(released_sam3_config(video=True))
    rows = []
    for name, p2, p3 in COMPONENTS:
        a = _get(m2, p2) if p2 else None
        b = _get(m3, p3) if p3 else None
        rows.append(
            {
                "component": name,
                "sam2_class": type(a).__name__ if a is not None else None,
                "sam3_class": type(b).__name__ if b is not None else None,
                "sam2_params": sum(p.numel() for p in a.parameters()) if a is not None else 0,
                "sam3_params": sum(p.numel() for p in b.parameters()) if b is not None else 0,
                "same_architecture": same_architecture(a, b)
                if a is not None and b is not None
                else None,
            }
        )
    own = _get(m3, "tracker_model.vision_encoder")
    rows.append(
        {
            "component": "tracker's own image encoder",
            "sam2_class": None,
            "sam3_class": type(own).__name__ if own is not None else None,
            "sam2_params": 0,
            "sam3_params": sum(p.numel() for p in own.parameters()) if own is not None else 0,
            "same_architecture": None,
        }
    )
    return rows


# ----------------------------------------------------------------------------- routes


def trace_modules(model: torch.nn.Module, fn: Callable[[], Any], depth: int = 2) -> list[str]:
    """Names of ``model``'s submodules (up to ``depth`` levels) whose forward ran in ``fn()``.

    In the order their forwards finished (a child before its parent), each name once.
    """
    ran: list[str] = []
    handles = []
    for name, mod in model.named_modules():
        if name and name.count(".") < depth:
            handles.append(mod.register_forward_hook(lambda m, i, o, n=name: ran.append(n)))
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return list(dict.fromkeys(ran))


def component_of(model: torch.nn.Module, module_name: str) -> str | None:
    """The `COMPONENTS` name of a transformers submodule, or None for internals."""
    table = _DETECTOR if hasattr(model, "detr_decoder") else _PROMPTABLE
    return table.get(module_name)


def _components(model: torch.nn.Module, names: Sequence[str]) -> list[str]:
    out = [component_of(model, n) for n in names]
    return list(dict.fromkeys(c for c in out if c is not None))


def prompt_routes(
    roles: Mapping[str, Any],
    image: np.ndarray,
    point: Sequence[float],
    box: Sequence[float],
    phrase: str = "apple",
) -> dict[str, dict[str, Any]]:
    """Run each prompt type through loaded transformers role objects and trace what ran.

    Parameters
    ----------
    roles
        ``{"sam2": PromptSegmenter, "sam3_tracker": PromptSegmenter, "sam3": ConceptSegmenter}``
        (transformers backend); missing keys are skipped.
    image
        ``(H, W, 3)`` uint8 RGB.
    point, box
        One click ``(x, y)`` and one box ``(x0, y0, x1, y1)`` in pixels (the exemplar box too).
    phrase
        The noun phrase.

    Returns
    -------
    dict
        `PROMPTS` label -> ``{"role", "prompt", "components"}``, plus ``"<role>: image"`` for
        the image encoding (``set_image``). ``components`` are `COMPONENTS` names in the order
        their forwards finished.
    """
    from ..models import Exemplars

    pt = np.asarray(point, np.float32).reshape(1, 2)
    bx = np.asarray(box, np.float32).reshape(1, 4)
    out: dict[str, dict[str, Any]] = {}

    def record(label: str, role_key: str, what: str, fn: Callable[[], Any]) -> None:
        model = roles[role_key].model
        out[label] = {
            "role": role_key,
            "prompt": what,
            "components": _components(model, trace_modules(model, fn)),
        }

    names = {"sam2": "SAM2", "sam3_tracker": "SAM3 tracker", "sam3": "SAM3"}
    for key in ("sam2", "sam3_tracker"):
        if key not in roles:
            continue
        role = roles[key]
        record(f"{names[key]}: image", key, "the image", lambda r=role: r.set_image(image))
        record(
            f"{names[key]}: point",
            key,
            PROMPTS[f"{names[key]}: point"][1],
            lambda r=role: r.predict(points=pt),
        )
        record(
            f"{names[key]}: box",
            key,
            PROMPTS[f"{names[key]}: box"][1],
            lambda r=role: r.predict(boxes=bx),
        )
        low = role.predict(points=pt, multimask=False).low_res_logits
        record(
            f"{names[key]}: mask",
            key,
            PROMPTS[f"{names[key]}: mask"][1],
            lambda r=role, m=low: r.predict(mask_input=m),
        )
    if "sam3" in roles:
        role = roles["sam3"]
        ex = Exemplars(bx)
        record("SAM3: image", "sam3", "the image", lambda: role.set_image(image))
        record(
            "SAM3: noun phrase",
            "sam3",
            PROMPTS["SAM3: noun phrase"][1],
            lambda: role.segment(phrases=[phrase]),
        )
        record(
            "SAM3: exemplar box",
            "sam3",
            PROMPTS["SAM3: exemplar box"][1],
            lambda: role.segment(exemplars=ex),
        )
        record(
            "SAM3: phrase + exemplar",
            "sam3",
            PROMPTS["SAM3: phrase + exemplar"][1],
            lambda: role.segment(phrases=[phrase], exemplars={phrase: ex}),
        )
    return out


# ----------------------------------------------------------------------------- presence


# what each memory-path module does, for the trace table
_MEMORY_STEPS = (
    ("vision_encoder", "image encoder"),
    ("memory_attention", "memory attention"),
    ("prompt_encoder", "prompt encoder"),
    ("mask_decoder", "mask decoder"),
    ("memory_encoder", "memory encoder"),
    ("object_pointer_proj", "object pointers"),
)


def memory_route(
    tracker: Any, frames: np.ndarray, points: np.ndarray, labels: np.ndarray
) -> list[dict[str, Any]]:
    """Trace SAM2's memory path: run ``tracker.propagate`` (a `MemoryTracker`, or transformers'
    video propagator) on ``frames`` and split what ran into frames.

    One row per frame: the components that ran for it, the spatial memory tokens and object
    pointer tokens memory attention read (0 on the prompted frame, which is decoded without
    memory). The image encoder runs once per frame (batched over the clip by `MemoryTracker`,
    so it heads the first row)."""
    model = tracker.model
    events: list[tuple[str, int, int]] = []
    handles = []

    def on_memory(module: Any, args: Any, kwargs: dict, out: Any) -> None:
        mem = kwargs.get("memory")
        ptr = int(kwargs.get("num_object_pointer_tokens", 0))
        events.append(("memory_attention", int(mem.shape[0]) - ptr if mem is not None else 0, ptr))

    for name, _ in _MEMORY_STEPS:
        mod = getattr(model, name)
        if name == "memory_attention":
            handles.append(mod.register_forward_hook(on_memory, with_kwargs=True))
        else:
            handles.append(
                mod.register_forward_hook(lambda m, i, o, n=name: events.append((n, 0, 0)))
            )
    try:
        tracker.propagate(frames, points, labels)
    finally:
        for h in handles:
            h.remove()
    labels_of = dict(_MEMORY_STEPS)
    rows: list[dict[str, Any]] = []
    cur: dict[str, Any] = {"ran": [], "memory tokens": 0, "pointer tokens": 0}
    for name, mem, ptr in events:
        if labels_of[name] not in cur["ran"]:
            cur["ran"].append(labels_of[name])
        if name == "memory_attention":
            cur["memory tokens"], cur["pointer tokens"] = mem, ptr
        # a frame ends once its memory is written and its pointer made (either order)
        if {"memory encoder", "object pointers"} <= set(cur["ran"]):
            rows.append({"frame": len(rows), **cur})
            cur = {"ran": [], "memory tokens": 0, "pointer tokens": 0}
    return rows


@torch.inference_mode()
def presence_decomposition(
    concept_role: Any, image: np.ndarray, phrases: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """SAM3's instance scores split into their factors, per phrase.

    Parameters
    ----------
    concept_role
        A transformers `ConceptSegmenter` (``load_sam3(..., role="concept")``).
    image
        ``(H, W, 3)`` uint8 RGB.
    phrases
        Noun phrases.

    Returns
    -------
    dict
        phrase -> ``{"query_prob": (Q,) sigmoid of the query logits, "presence": sigmoid of the
        presence logit (1.0 if the model has no presence head), "score": their product}``.
    """
    if getattr(concept_role, "backend", None) != "transformers" or not hasattr(
        concept_role, "tokenize"
    ):
        raise ValueError(
            "presence_decomposition needs the transformers concept role: "
            "load_sam3(source, role='concept')."
        )
    concept_role.set_image(image)
    model = concept_role.model
    tokens = concept_role.tokenize(list(phrases))
    res = model(vision_embeds=concept_role._expanded_vision(len(phrases)), **tokens)
    out = {}
    for i, p in enumerate(phrases):
        q = torch.sigmoid(res.pred_logits[i].float()).cpu().numpy()
        pres = (
            float(torch.sigmoid(res.presence_logits[i].float()).reshape(()))
            if res.presence_logits is not None
            else 1.0
        )
        out[p] = {"query_prob": q, "presence": pres, "score": q * pres}
    return out


# ----------------------------------------------------------------------------- drawing

_COLORS = {
    "geometric": "#0072B2",
    "phrase": "#D55E00",
    "exemplar": "#009E73",
    "image": "#555555",
}
# box name -> (x, y, panel); panel 0 = SAM2 (top), 1 = SAM3 (bottom)
_LAYOUT: dict[str, tuple[float, float]] = {
    "sam2:image": (0.9, 8.6),
    "sam2:geometric": (0.9, 7.3),
    "sam2:image encoder": (3.6, 8.6),
    "sam2:prompt encoder": (3.6, 7.3),
    "sam2:mask decoder": (6.3, 7.95),
    "sam2:memory": (9.0, 7.95),
    "sam2:out": (11.6, 7.95),
    "sam3:geometric": (0.9, 5.3),
    "sam3:image": (0.9, 3.6),
    "sam3:phrase": (0.9, 2.2),
    "sam3:exemplar": (0.9, 0.7),
    "sam3:prompt encoder": (3.6, 5.3),
    "sam3:image encoder": (3.6, 3.6),
    "sam3:text encoder": (3.6, 2.2),
    "sam3:geometry / exemplar encoder": (3.6, 0.7),
    "sam3:mask decoder": (6.3, 5.0),
    "sam3:DETR encoder": (6.3, 2.2),
    "sam3:DETR decoder": (8.9, 2.2),
    "sam3:presence head": (8.9, 3.5),
    "sam3:instance mask head": (8.9, 0.7),
    "sam3:memory": (9.0, 5.0),
    "sam3:tracker out": (11.6, 5.0),
    "sam3:detector out": (11.6, 2.2),
}


def _fmt(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def draw_architecture(
    sam2_counts: Mapping[str, int],
    sam3_counts: Mapping[str, int],
    routes: Mapping[str, Mapping[str, Any]] | None = None,
    sam2_label: str = "SAM 2.1",
    ax: Any = None,
) -> Any:
    """Boxes and arrows: SAM2 on top, SAM3 (tracker and detector) below.

    Parameters
    ----------
    sam2_counts, sam3_counts
        `architecture.parameter_counts` of the two models (shown in the boxes).
    routes
        `prompt_routes` output: the arrows leaving each prompt input go to the encoders its
        trace reached (solid). Without routes no prompt arrows are drawn. Internal arrows
        (encoder -> decoder, memory) are the documented data flow (grey).
    sam2_label
        Name of the SAM2 size in the panel title.
    ax
        Axes to draw on (default: a new 13 x 7.5 figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if ax is None:
        fig, ax = plt.subplots(figsize=(13, 7.6))
    else:
        fig = ax.figure
    c2, c3 = sam2_counts, sam3_counts
    sam2_mem = (
        c2.get("memory_attention", 0) + c2.get("memory_encoder", 0) + c2.get("object_pointers", 0)
    )
    sam3_mem = sum(
        c3.get(f"tracker.{k}", 0) for k in ("memory_attention", "memory_encoder", "object_pointers")
    )
    labels = {
        "sam2:image": ("image / video frame", "input"),
        "sam2:geometric": ("points / boxes / masks", "geometric"),
        "sam2:image encoder": (
            f"Hiera image encoder\n{_fmt(c2['image_encoder.trunk'] + c2['image_encoder.neck'])}",
            "module",
        ),
        "sam2:prompt encoder": (f"prompt encoder\n{_fmt(c2['prompt_encoder'])}", "module"),
        "sam2:mask decoder": (f"mask decoder\n{_fmt(c2['mask_decoder'])}", "module"),
        "sam2:memory": (f"memory (video)\n{_fmt(sam2_mem)}", "module"),
        "sam2:out": ("one mask\nper prompt", "output"),
        "sam3:geometric": ("points / boxes / masks", "geometric"),
        "sam3:image": ("image / video frame", "input"),
        "sam3:phrase": ('noun phrase\n"ripe apple"', "phrase"),
        "sam3:exemplar": ("exemplar boxes", "exemplar"),
        "sam3:prompt encoder": (f"prompt encoder\n{_fmt(c3['tracker.prompt_encoder'])}", "module"),
        "sam3:image encoder": (
            "PE ViT image encoder\n(one, shared) "
            f"{_fmt(c3['vision_encoder.backbone'] + c3['vision_encoder.neck'] + c3['tracker.neck'])}",
            "module",
        ),
        "sam3:text encoder": (f"text encoder\n{_fmt(c3['text_encoder'])}", "new"),
        "sam3:geometry / exemplar encoder": (
            f"geometry / exemplar\nencoder {_fmt(c3['geometry_exemplar_encoder'])}",
            "new",
        ),
        "sam3:mask decoder": (f"mask decoder\n{_fmt(c3['tracker.mask_decoder'])}", "module"),
        "sam3:DETR encoder": (f"DETR encoder\n(fusion) {_fmt(c3['detr_encoder'])}", "new"),
        "sam3:DETR decoder": (
            f"DETR decoder + scoring\n{_fmt(c3['detr_decoder'] + c3['scoring'])}",
            "new",
        ),
        "sam3:presence head": (f"presence head\n{_fmt(c3['presence_head'])}", "new"),
        "sam3:instance mask head": (f"instance mask head\n{_fmt(c3['mask_decoder'])}", "new"),
        "sam3:memory": (f"memory (video)\n{_fmt(sam3_mem)}", "module"),
        "sam3:tracker out": ("one mask\nper prompt", "output"),
        "sam3:detector out": ("every instance:\nmasks, scores x presence", "output"),
    }
    face = {
        "input": "#eeeeee",
        "geometric": "#d6e6f4",
        "phrase": "#f8dccb",
        "exemplar": "#cdeee2",
        "module": "#ffffff",
        "new": "#fff3c4",
        "output": "#eeeeee",
    }
    w, h = 2.1, 0.95
    for key, (text, kind) in labels.items():
        x, y = _LAYOUT[key]
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle="round,pad=0.03,rounding_size=0.12",
                fc=face[kind],
                ec="#333333",
                lw=1.4 if kind == "new" else 0.9,
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    def arrow(a: str, b: str, color: str = "#888888", style: str = "-", rad: float = 0.0) -> None:
        (x0, y0), (x1, y1) = _LAYOUT[a], _LAYOUT[b]
        dx = w / 2 if x1 > x0 + 0.1 else (-w / 2 if x1 < x0 - 0.1 else 0)
        dy = 0 if dx else (h / 2 if y1 > y0 else -h / 2)
        ax.add_patch(
            FancyArrowPatch(
                (x0 + dx, y0 + dy),
                (x1 - dx, y1 - dy),
                arrowstyle="-|>",
                mutation_scale=12,
                color=color,
                ls=style,
                lw=1.4,
                connectionstyle=f"arc3,rad={rad}",
                shrinkA=1,
                shrinkB=1,
            )
        )

    # documented data flow inside the models (grey)
    for a, b in [
        ("sam2:image", "sam2:image encoder"),
        ("sam2:image encoder", "sam2:mask decoder"),
        ("sam2:prompt encoder", "sam2:mask decoder"),
        ("sam2:mask decoder", "sam2:memory"),
        ("sam2:memory", "sam2:out"),
        ("sam3:image", "sam3:image encoder"),
        ("sam3:image encoder", "sam3:mask decoder"),
        ("sam3:prompt encoder", "sam3:mask decoder"),
        ("sam3:mask decoder", "sam3:memory"),
        ("sam3:memory", "sam3:tracker out"),
        ("sam3:image encoder", "sam3:DETR encoder"),
        ("sam3:text encoder", "sam3:DETR encoder"),
        ("sam3:geometry / exemplar encoder", "sam3:DETR encoder"),
        ("sam3:DETR encoder", "sam3:DETR decoder"),
        ("sam3:DETR decoder", "sam3:presence head"),
        ("sam3:DETR decoder", "sam3:instance mask head"),
        ("sam3:DETR encoder", "sam3:instance mask head"),
        ("sam3:DETR decoder", "sam3:detector out"),
        ("sam3:presence head", "sam3:detector out"),
        ("sam3:instance mask head", "sam3:detector out"),
    ]:
        arrow(a, b)
    # prompt arrows: where each traced prompt entered the model
    entry = {"prompt encoder", "text encoder", "geometry / exemplar encoder"}
    source = {
        "SAM2: point": ("sam2:geometric", "sam2", "geometric"),
        "SAM2: box": ("sam2:geometric", "sam2", "geometric"),
        "SAM2: mask": ("sam2:geometric", "sam2", "geometric"),
        "SAM3 tracker: point": ("sam3:geometric", "sam3", "geometric"),
        "SAM3 tracker: box": ("sam3:geometric", "sam3", "geometric"),
        "SAM3 tracker: mask": ("sam3:geometric", "sam3", "geometric"),
        "SAM3: noun phrase": ("sam3:phrase", "sam3", "phrase"),
        "SAM3: exemplar box": ("sam3:exemplar", "sam3", "exemplar"),
    }
    drawn = set()
    for label, (src, panel, kind) in source.items():
        if not routes or label not in routes:
            continue
        for comp in routes[label]["components"]:
            if comp in entry and (src, comp) not in drawn:
                drawn.add((src, comp))
                bend = 0.25 if _LAYOUT[f"{panel}:{comp}"][1] > _LAYOUT[src][1] + 0.5 else 0.0
                arrow(src, f"{panel}:{comp}", _COLORS[kind], rad=bend)
    ax.text(
        0.0, 9.55, f"{sam2_label}: total {_fmt(c2['total'])} parameters", fontsize=11, weight="bold"
    )
    ax.text(
        0.0,
        6.25,
        f"SAM3 (detector + tracker): total {_fmt(c3['total'])} parameters",
        fontsize=11,
        weight="bold",
    )
    ax.axhline(6.05, color="#bbbbbb", lw=0.8)
    ax.text(
        12.7,
        -0.55,
        "yellow: SAM3 only; coloured arrows: traced prompt routes; grey: data flow",
        ha="right",
        fontsize=8,
        color="#555555",
    )
    ax.set(xlim=(-0.3, 12.8), ylim=(-0.8, 9.9))
    ax.axis("off")
    return fig
