"""The model families' training tasks (`samgap_lib.training.task.Task`): SAM2 on geometric
prompts (`sam2`), SAM2 with its memory on clips (`sam2_video`), SAM3's detector on concept
prompts (`sam3`)."""

from .sam2 import Sam2Task
from .sam2_video import Sam2VideoTask
from .sam3 import Sam3Task

__all__ = ["Sam2Task", "Sam2VideoTask", "Sam3Task"]
