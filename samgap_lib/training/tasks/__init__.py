"""The model families' training tasks (`samgap_lib.training.task.Task`): SAM2 on geometric
prompts (`sam2`), SAM3's detector on concept prompts (`sam3`)."""

from .sam2 import Sam2Task
from .sam3 import Sam3Task

__all__ = ["Sam2Task", "Sam3Task"]
