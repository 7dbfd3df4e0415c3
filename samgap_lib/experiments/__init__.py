"""Experiments: runners that join data -> prompts -> models -> metrics and write results.

`run_experiment` is what `samgap run` calls; results land in ``results/<profile>/<name>/`` with
their configuration and provenance, and an interrupted run resumes where it stopped.
"""

from .api import (
    EXPERIMENTS,
    load_concepts,
    load_models,
    load_samples,
    read_results,
    results_dir,
    run_experiment,
)
from .chapters import (
    chapter_config,
    checkout_root,
    paper_results,
    paper_results_note,
    resolve_results_root,
    results_root_note,
)
from .config import ConfigError, load_config, resolve_checkpoint
from .runs import record_clicks, record_concepts, record_hybrid
from .store import ConfigMismatchError, ResultStore, read_records
from .video import detections_per_frame, video_protocols, video_tracker

__all__ = [
    "detections_per_frame",
    "video_protocols",
    "video_tracker",
    "EXPERIMENTS",
    "ConfigError",
    "ConfigMismatchError",
    "ResultStore",
    "chapter_config",
    "checkout_root",
    "load_concepts",
    "load_config",
    "load_models",
    "load_samples",
    "read_records",
    "read_results",
    "paper_results",
    "paper_results_note",
    "resolve_results_root",
    "results_root_note",
    "record_clicks",
    "record_concepts",
    "record_hybrid",
    "resolve_checkpoint",
    "results_dir",
    "run_experiment",
]
