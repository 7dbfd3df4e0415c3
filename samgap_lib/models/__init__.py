"""Model roles and backends: SAM2 / SAM3 behind two small interfaces.

- `PromptSegmenter` (geometric prompts; SAM2 and SAM3's tracker): ``set_image`` once, then
  ``predict(points=, point_labels=, boxes=, mask_input=, multimask=)`` for many objects at once.
- `ConceptSegmenter` (concept prompts; SAM3's detector): ``segment(image, phrases=, exemplars=)``
  returns every instance of every phrase, all phrases in one batched pass.
- Video propagators: ``propagate(frames, prompts, frame_idx)`` with stable object ids.

Backends: Hugging Face transformers (default, `hf`) and Meta's ``sam2`` / ``sam3`` packages
(`meta`; SAM3 on CPU through the scoped compatibility layer `meta.sam3_cpu`). Load with
`load_sam2` / `load_sam3`. `archs` is the one registry of architectures (released, orchard and
test sizes); `testing.write_tiny_checkpoints` writes small random checkpoints for tests;
`postprocess` turns SAM3's raw outputs into instances for both backends; `dense` prompts the
orchard-tiny SAM2, which was trained with its prompts drawn into the mask input.
"""

from .archs import released_sam2_config, released_sam3_config
from .base import (
    ConceptPrediction,
    ConceptSegmenter,
    Exemplars,
    PromptResult,
    PromptSegmenter,
    VideoResult,
)
from .dense import DensePromptSegmenter
from .factory import load_sam2, load_sam3
from .loading import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    GatedCheckpointError,
    OfflineCheckpointError,
    resolve_device,
)

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "ConceptPrediction",
    "ConceptSegmenter",
    "DensePromptSegmenter",
    "Exemplars",
    "GatedCheckpointError",
    "OfflineCheckpointError",
    "PromptResult",
    "PromptSegmenter",
    "VideoResult",
    "load_sam2",
    "load_sam3",
    "released_sam2_config",
    "released_sam3_config",
    "resolve_device",
]
