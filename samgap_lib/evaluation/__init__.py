"""The evaluation protocols, written once: how a model is prompted and scored.

Training validation, the experiments, the studies and the chapters all run these.

- `clicks`: RITM's click loop for one object (`click_loop`) and for every instance of an image
  at once (`click_all_instances`), box prompts (`prompt_boxes`), one image both ways
  (`segment_both`).
- `prompted`: the prompted (SAM2-style) protocol over images: IoUs per instance
  (`instance_ious`), their summary (`prompted_summary`, `evaluate_prompted`), by box fill, and
  an experiment's per-image records (`click_record`, `click_summary`).
- `concepts`: the concept (SAM3-style) protocol: predictions (`predict_concepts`), COCO results
  over (image, phrase) pairs (`coco_results`), scores (`score_concepts`, `concept_summary`).
- `exemplars`: exemplar boxes against the phrase: "phrase only", "phrase + k exemplars",
  "k exemplars only" on the images where a concept is present, prompts counted, scored like the
  phrase path (`evaluate_exemplar_modes`, `EXEMPLAR_MODES`).
- `effort`: how many clicks buy the image-level quality of one phrase (`effort_equivalence`).
- `held_out`: the orchard-tiny cards' held-out images and metrics (`evaluate_checkpoint`).
- `video_protocols`: the two video protocols with oracle masks, SAM2's semi-supervised prompts
  (`sam2_oracle`, `sam2_effort_curve`) and SAM3's detect-then-track (`detect_then_track`,
  `sam3_oracle`): prompts spent, coverage, HOTA and IDF1.
- `video_tracking`: learned models under both video protocols (`sam2_protocol`,
  `sam3_protocol`), and a learned tracker on clips prompted on their first frame
  (`track_clips`, `tracking_summary`): J&F per frame, decay, identity switches, intervals.
"""

from .clicks import (
    click_all_instances,
    click_loop,
    first_click_candidates,
    prompt_boxes,
    segment_both,
)
from .concepts import (
    coco_results,
    concept_summary,
    evaluate_concepts,
    predict_concepts,
    prediction_record,
    record_predictions,
    score_concepts,
)
from .effort import effort_equivalence, sam2_quality_curves, sam3_quality
from .exemplars import (
    EXEMPLAR_MODES,
    evaluate_exemplar_modes,
    exemplar_modes_table,
    exemplar_order,
    exemplar_prompt,
)
from .held_out import (
    HELD_OUT,
    HELD_OUT_CLIPS,
    HELD_OUT_SIZE,
    SAM3_EVAL_PHRASES,
    evaluate_checkpoint,
    held_out_clips,
    held_out_samples,
    sam2_video_held_out,
    sam3_held_out,
)
from .prompted import (
    click_record,
    click_summary,
    evaluate_prompted,
    instance_ious,
    ious_by_box_fill,
    prompted_summary,
)
from .video_protocols import (
    KeepAlive,
    ProtocolOutcome,
    appearances,
    associate,
    detect_then_track,
    ground_truth_tracks,
    protocol_outcome,
    sam2_effort_curve,
    sam2_oracle,
    sam3_oracle,
    video_coverage,
)
from .video_tracking import (
    jf_per_frame,
    sam2_protocol,
    sam3_protocol,
    track_clips,
    tracking_summary,
)

__all__ = [
    "EXEMPLAR_MODES",
    "evaluate_exemplar_modes",
    "exemplar_modes_table",
    "exemplar_order",
    "exemplar_prompt",
    "KeepAlive",
    "ProtocolOutcome",
    "appearances",
    "associate",
    "detect_then_track",
    "ground_truth_tracks",
    "sam2_effort_curve",
    "sam2_oracle",
    "sam3_oracle",
    "video_coverage",
    "protocol_outcome",
    "jf_per_frame",
    "sam2_protocol",
    "sam3_protocol",
    "track_clips",
    "tracking_summary",
    "HELD_OUT",
    "HELD_OUT_CLIPS",
    "held_out_clips",
    "sam2_video_held_out",
    "HELD_OUT_SIZE",
    "SAM3_EVAL_PHRASES",
    "click_all_instances",
    "click_loop",
    "click_record",
    "click_summary",
    "coco_results",
    "concept_summary",
    "effort_equivalence",
    "evaluate_checkpoint",
    "evaluate_concepts",
    "evaluate_prompted",
    "first_click_candidates",
    "held_out_samples",
    "instance_ious",
    "ious_by_box_fill",
    "predict_concepts",
    "prediction_record",
    "prompt_boxes",
    "prompted_summary",
    "record_predictions",
    "sam2_quality_curves",
    "sam3_held_out",
    "sam3_quality",
    "score_concepts",
    "segment_both",
]
