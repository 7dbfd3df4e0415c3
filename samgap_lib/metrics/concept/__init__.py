"""Concept-prompt metrics: cgF1 (SAM3's, `cgf1`), the `samgap_lib.data.Sample`-based metrics on
one matching rule (`matching`: counts, recall, open-vocabulary F1, attributes, localization) and
where the misses and false detections go (`errors`)."""

from ..masks import mask_iou_matrix
from .cgf1 import CGF1_IOU_THRESHOLDS, cgf1
from .errors import (
    DETECTION_OUTCOMES,
    INSTANCE_OUTCOMES,
    concept_errors,
    detection_error_labels,
    pool_concept_errors,
)
from .matching import (
    attribute_accuracy,
    concept_counts,
    concept_recall,
    localization_error,
    match_detections,
    open_vocab_f1,
)

__all__ = [
    "CGF1_IOU_THRESHOLDS",
    "DETECTION_OUTCOMES",
    "INSTANCE_OUTCOMES",
    "attribute_accuracy",
    "cgf1",
    "concept_counts",
    "concept_errors",
    "concept_recall",
    "detection_error_labels",
    "localization_error",
    "mask_iou_matrix",
    "match_detections",
    "open_vocab_f1",
    "pool_concept_errors",
]
