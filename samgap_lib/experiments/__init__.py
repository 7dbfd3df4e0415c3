"""Experiments: runners that join data -> prompts -> models -> metrics and write results.

`run_experiment` is what `samgap run` calls; results land in ``results/<profile>/<name>/`` with
their configuration and provenance, and an interrupted run resumes where it stopped.
"""

from .api import (
    EXPERIMENTS,
    load_concepts,
    load_models,
    load_samples,
    read_records,
    read_results,
    results_dir,
    run_experiment,
)
from .config import ConfigError, load_config, resolve_checkpoint
from .effort import effort_equivalence, sam2_quality_curves, sam3_quality
from .runs import click_summary, concept_summary, run_clicks, run_concepts, run_hybrid
from .store import ConfigMismatchError, ResultStore

__all__ = [
    "EXPERIMENTS",
    "ConfigError",
    "ConfigMismatchError",
    "ResultStore",
    "click_summary",
    "concept_summary",
    "effort_equivalence",
    "load_concepts",
    "load_config",
    "load_models",
    "load_samples",
    "read_records",
    "read_results",
    "resolve_checkpoint",
    "results_dir",
    "run_clicks",
    "run_concepts",
    "run_experiment",
    "run_hybrid",
    "sam2_quality_curves",
    "sam3_quality",
]
