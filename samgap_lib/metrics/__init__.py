"""Metrics: pure functions over arrays, each checked against its reference implementation.

masks (IoU, Dice, boundary F, IoU matrices), interactive (NoC/NoF, mIoU@k, candidate selection),
temporal (J&F, decay, stability), tracking (HOTA and IDF1 of many objects, by TrackEval), concept
(cgF1 family, recall, open-vocabulary F1, attributes, localization, where the errors go),
panoptic quality, COCO AP through pycocotools, and bootstrap
intervals over images (uncertainty). numpy in, floats out. `reference` holds slow reference
implementations used only to check these."""

from .coco import COCO_STAT_NAMES, coco_ap
from .concept import (
    CGF1_IOU_THRESHOLDS,
    DETECTION_OUTCOMES,
    INSTANCE_OUTCOMES,
    attribute_accuracy,
    cgf1,
    concept_counts,
    concept_errors,
    concept_recall,
    detection_error_labels,
    localization_error,
    match_detections,
    open_vocab_f1,
    pool_concept_errors,
)
from .interactive import MIOU_CLICKS, candidate_selection, noc
from .masks import (
    as_mask_stack,
    boundary_f1,
    boundary_tolerance,
    dice,
    disk,
    iou,
    mask_iou_matrix,
    seg2bmap,
)
from .panoptic import panoptic_quality
from .temporal import (
    consecutive_iou,
    davis_statistics,
    decay,
    per_frame_jf,
    temporal_stability,
    track_scores,
)
from .tracking import combine_mot_scores, mot_data, mot_scores
from .uncertainty import (
    Interval,
    bootstrap_ratio,
    bootstrap_ratio_difference,
    paired_differences,
    unit_sums,
)

__all__ = [
    "CGF1_IOU_THRESHOLDS",
    "COCO_STAT_NAMES",
    "DETECTION_OUTCOMES",
    "INSTANCE_OUTCOMES",
    "Interval",
    "as_mask_stack",
    "MIOU_CLICKS",
    "attribute_accuracy",
    "boundary_f1",
    "bootstrap_ratio",
    "bootstrap_ratio_difference",
    "boundary_tolerance",
    "candidate_selection",
    "cgf1",
    "concept_counts",
    "coco_ap",
    "concept_errors",
    "concept_recall",
    "consecutive_iou",
    "davis_statistics",
    "decay",
    "detection_error_labels",
    "dice",
    "disk",
    "iou",
    "localization_error",
    "mask_iou_matrix",
    "match_detections",
    "combine_mot_scores",
    "mot_data",
    "mot_scores",
    "noc",
    "open_vocab_f1",
    "paired_differences",
    "panoptic_quality",
    "per_frame_jf",
    "pool_concept_errors",
    "seg2bmap",
    "temporal_stability",
    "track_scores",
    "unit_sums",
]
