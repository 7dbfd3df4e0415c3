"""Data layer: types, the synthetic orchard (images and video), MinneApple, COCO and SA-Co."""

from .coco import from_coco, from_saco, mask_to_rle, pair_id, rle_to_mask, to_coco, to_saco
from .minneapple import MinneApple, load_minneapple, split_indices, write_minneapple
from .profiles import describe_data, profile_samples, usable_concepts
from .stats import (
    dataset_statistics,
    image_records,
    instance_records,
    pair_records,
    prompt_effort,
)
from .synthetic import HEALTH, RIPENESS, OrchardConfig, synthetic_orchard
from .types import (
    Concept,
    Instance,
    Sample,
    as_concepts,
    check_image,
    check_mask,
    mask_to_box,
    masks_to_boxes,
)
from .video import clip_tracks, synthetic_orchard_clips, synthetic_orchard_video

__all__ = [
    "HEALTH",
    "RIPENESS",
    "Concept",
    "Instance",
    "MinneApple",
    "OrchardConfig",
    "Sample",
    "as_concepts",
    "check_image",
    "check_mask",
    "dataset_statistics",
    "describe_data",
    "from_coco",
    "from_saco",
    "image_records",
    "instance_records",
    "load_minneapple",
    "mask_to_box",
    "mask_to_rle",
    "pair_id",
    "pair_records",
    "masks_to_boxes",
    "profile_samples",
    "prompt_effort",
    "rle_to_mask",
    "split_indices",
    "synthetic_orchard",
    "clip_tracks",
    "synthetic_orchard_clips",
    "synthetic_orchard_video",
    "to_coco",
    "to_saco",
    "usable_concepts",
    "write_minneapple",
]
