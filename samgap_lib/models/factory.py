"""`load_sam2` and `load_sam3`: a source and a backend in, a role object out."""

from __future__ import annotations

import os
from typing import Any

import torch

from .loading import hf_folder, load_hf_pretrained, load_hf_processor

__all__ = ["BACKENDS", "load_sam2", "load_sam3"]

BACKENDS = ("transformers", "meta")
SAM2_ROLES = ("prompt", "video")
SAM3_ROLES = ("concept", "tracker", "video")


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise ValueError(f"{what}={value!r}; choose one of {choices}.")


def load_sam2(
    source: str | os.PathLike = "facebook/sam2.1-hiera-large",
    backend: str = "transformers",
    device: str | torch.device = "auto",
    role: str = "prompt",
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    strict: bool = True,
    use_autocast: bool = True,
    config: str | None = None,
) -> Any:
    """Load SAM2 for geometric prompts (``role="prompt"``) or video (``role="video"``).

    Parameters
    ----------
    source
        Hub id (``facebook/sam2.1-hiera-{tiny,small,base-plus,large}``), a local folder
        (transformers ``save_pretrained`` output; for Meta a folder with one ``.pt``) or a Meta
        ``.pt`` checkpoint file.
    backend
        ``"transformers"`` (default) or ``"meta"`` (the ``sam2`` package).
    device
        ``"auto"`` (cuda, then mps, then cpu) or a torch device.
    role
        ``"prompt"`` -> `PromptSegmenter`; ``"video"`` -> a video propagator.
    revision, token
        Passed to the hub download.
    strict
        Refuse checkpoints that leave model weights uninitialised.
    use_autocast
        bfloat16 autocast on CUDA.
    config
        Meta only: hydra config name (e.g. ``configs/sam2.1/sam2.1_hiera_l.yaml``) when it cannot
        be inferred from the hub id, file name or a samgap ``.json`` beside the checkpoint.

    Raises
    ------
    CheckpointError
        Missing, gated, offline or mismatched checkpoints, with what to do.
    """
    _check_choice(backend, BACKENDS, "backend")
    _check_choice(role, SAM2_ROLES, "role")
    if backend == "meta":
        from .meta import sam2 as meta_sam2

        if role == "video":
            from .meta.video import MetaSam2VideoPropagator

            model = meta_sam2.load_meta_sam2(
                source, device, config=config, revision=revision, token=token, video=True
            )
            return MetaSam2VideoPropagator(model)
        model = meta_sam2.load_meta_sam2(
            source, device, config=config, revision=revision, token=token
        )
        return meta_sam2.MetaSam2PromptSegmenter(model, use_autocast=use_autocast)

    import transformers as tf

    folder = hf_folder(source, revision, token)
    if role == "video":
        from .hf.video import HFSam2VideoPropagator

        model = load_hf_pretrained(
            tf.Sam2VideoModel,
            folder,
            ("sam2_video",),
            strict=strict,
            what="load_sam2(role='video')",
        )
        from .dense import dense_spec

        if dense_spec(model):  # trained with prompts drawn into the mask input (orchard-tiny)
            from .hf.sam2_memory import MemoryTracker

            return MemoryTracker(model, load_hf_processor(tf.Sam2Processor, folder), device)
        processor = load_hf_processor(tf.Sam2VideoProcessor, folder)
        return HFSam2VideoPropagator(model, processor, device=device, use_autocast=use_autocast)
    from .hf.sam2 import HFPromptSegmenter

    model = load_hf_pretrained(
        tf.Sam2Model, folder, ("sam2", "sam2_video"), strict=strict, what="load_sam2"
    )
    processor = load_hf_processor(tf.Sam2Processor, folder)
    seg = HFPromptSegmenter(model, processor, device=device, use_autocast=use_autocast, name="sam2")
    from .dense import DensePromptSegmenter, dense_spec

    # a checkpoint trained with prompts drawn into the mask input must be prompted that way
    return DensePromptSegmenter(seg) if dense_spec(model) else seg


def load_sam3(
    source: str | os.PathLike = "facebook/sam3",
    backend: str = "transformers",
    device: str | torch.device = "auto",
    role: str = "concept",
    *,
    threshold: float = 0.5,
    revision: str | None = None,
    token: str | bool | None = None,
    strict: bool = True,
    use_autocast: bool = True,
    bpe_path: str | os.PathLike | None = None,
) -> Any:
    """Load SAM3 as a `ConceptSegmenter` (``role="concept"``), a `PromptSegmenter` on its
    tracker (``role="tracker"``) or a phrase-driven video propagator (``role="video"``).

    Parameters
    ----------
    source
        ``"facebook/sam3"`` (gated: request access on its hub page, then ``hf auth login``),
        a local folder or (Meta) a ``.pt`` checkpoint.
    backend
        ``"transformers"`` (default) or ``"meta"`` (the ``sam3`` package, run on CPU through
        `samgap_lib.models.meta.sam3_cpu`).
    role
        ``"concept"``, ``"tracker"`` or ``"video"``. Meta's tracker is the model behind
        ``Sam3Image.predict_inst`` and loads from the checkpoint's ``tracker.*`` weights
        (``sam3.pt`` and tiny checkpoints carry them).
    threshold
        Concept role: keep instances with ``sigmoid(logit) x presence`` above it.
    bpe_path
        Meta only: CLIP BPE vocabulary (default: the copy shipped by ``open_clip``).

    Raises
    ------
    CheckpointError
        Missing, gated, offline or mismatched checkpoints.
    NotImplementedError
        Meta's video model (CUDA-bound).
    """
    _check_choice(backend, BACKENDS, "backend")
    _check_choice(role, SAM3_ROLES, "role")
    if backend == "meta":
        from .meta import sam3 as meta_sam3

        if role == "video":
            raise NotImplementedError(meta_sam3.META_SAM3_VIDEO_UNSUPPORTED)
        tracker = role == "tracker"
        model, info = meta_sam3.load_meta_sam3(
            source, device, bpe_path=bpe_path, revision=revision, token=token, tracker=tracker
        )
        if tracker:
            return meta_sam3.MetaSam3TrackerSegmenter(model, info, use_autocast=use_autocast)
        return meta_sam3.MetaSam3ConceptSegmenter(model, threshold=threshold, info=info)

    import transformers as tf

    folder = hf_folder(source, revision, token)
    if role == "concept":
        from .hf.sam3 import HFConceptSegmenter

        model = load_hf_pretrained(
            tf.Sam3Model,
            folder,
            ("sam3", "sam3_video"),
            strict=strict,
            what="load_sam3(role='concept')",
        )
        processor = load_hf_processor(tf.Sam3Processor, folder)
        return HFConceptSegmenter(
            model, processor, device=device, threshold=threshold, use_autocast=use_autocast
        )
    if role == "tracker":
        from .hf.sam2 import HFPromptSegmenter

        model = load_hf_pretrained(
            tf.Sam3TrackerModel,
            folder,
            ("sam3_tracker", "sam3_tracker_video", "sam3_video"),
            strict=strict,
            what="load_sam3(role='tracker')",
        )
        processor = load_hf_processor(tf.Sam3TrackerProcessor, folder)
        return HFPromptSegmenter(
            model, processor, device=device, use_autocast=use_autocast, name="sam3-tracker"
        )
    from .hf.video import HFSam3VideoPropagator

    model = load_hf_pretrained(
        tf.Sam3VideoModel, folder, ("sam3_video",), strict=strict, what="load_sam3(role='video')"
    )
    processor = load_hf_processor(tf.Sam3VideoProcessor, folder)
    return HFSam3VideoPropagator(
        model, processor, device=device, threshold=threshold, use_autocast=use_autocast
    )
