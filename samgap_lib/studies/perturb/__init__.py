"""Controlled errors: predictions made from the ground truth, perturbed one way at a time.

No model is needed to see what a metric measures: start from a perfect prediction (every
instance a phrase denotes, with its exact mask and a confident score), apply one kind of error at
a known strength, and score the result with every metric. This module holds

* the prediction container `Detections` and the perfect starting point
  `ground_truth_predictions` (``predictions[phrase][i]`` for ``samples[i]``, the form the
  concept metrics of `samgap_lib.metrics.concept` read; `detections`);
* the perturbations, each pure and seeded: `erode_predictions` / `dilate_predictions`
  (boundary error of ``r`` pixels), `drop_instances` (missed instances), `drop_images` (every
  instance of some images missed), `add_false_positives` (detections on phrases that denote
  nothing), `duplicate_detections`,
  `calibrate_scores` (a monotone score transform: ranking kept, threshold crossings change) and
  `confuse_attributes` (an attribute phrase answered with the wrong apples; `perturbations`);
* the same predictions as a COCO results list over SA-Co (image, phrase) pairs
  (`samgap_lib.evaluation.coco_results`), for `samgap_lib.metrics.cgf1` and
  `samgap_lib.metrics.coco_ap`;
* `evaluate` (every geometric and concept metric on one prediction set) and `metric_response`
  (a tidy table of all metrics while one perturbation's strength is swept; `response`);
* `erosion_boundary_response` (Boundary F of eroded masks at several tolerances) and, for
  videos, `tracks_from_frames`, `shift_mask` and `degrade_track`, and the identity errors of
  many tracked objects `frames_of_tracks`, `swap_identities` and `restart_identities` (`video`).

Randomness: every random choice is drawn from ``numpy.random.SeedSequence([seed, tag, i, ...])``
for image ``i``, with draws that do not depend on the strength, so the errors made at a small
strength are a subset of those made at a larger one (dropping 20 % of the instances drops the
same instances as 10 % and more). Metric curves over strength are therefore monotone wherever
the metric itself is.
"""

from .detections import Detections, PredictionSet, ground_truth_predictions
from .perturbations import (
    PERTURBATIONS,
    add_false_positives,
    calibrate_scores,
    confuse_attributes,
    dilate,
    dilate_predictions,
    drop_images,
    drop_instances,
    duplicate_detections,
    erode,
    erode_predictions,
    with_background,
)
from .response import METRICS, erosion_boundary_response, evaluate, metric_response
from .video import (
    degrade_track,
    frames_of_tracks,
    invisible_erosion,
    restart_identities,
    shift_mask,
    swap_identities,
    tracks_from_frames,
)

__all__ = [
    "METRICS",
    "PERTURBATIONS",
    "Detections",
    "PredictionSet",
    "add_false_positives",
    "calibrate_scores",
    "confuse_attributes",
    "degrade_track",
    "frames_of_tracks",
    "restart_identities",
    "swap_identities",
    "dilate",
    "dilate_predictions",
    "drop_images",
    "drop_instances",
    "duplicate_detections",
    "erode",
    "erode_predictions",
    "erosion_boundary_response",
    "evaluate",
    "ground_truth_predictions",
    "invisible_erosion",
    "metric_response",
    "shift_mask",
    "tracks_from_frames",
    "with_background",
]
