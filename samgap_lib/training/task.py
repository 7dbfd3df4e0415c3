"""What the trainer needs from a model family: the `Task` protocol.

`samgap_lib.training.trainer.train` is one loop for every model; a task supplies what differs:
the training images it keeps, a batch from them, the loss (as a module, so that
DistributedDataParallel can wrap it) and the validation. `tasks.sam2.Sam2Task` (geometric prompts),
`tasks.sam2_video.Sam2VideoTask` (SAM2's memory path on clips) and `tasks.sam3.Sam3Task` (concept
prompts) implement it. A task with data of its own kind (clips) also has
``load_pool(split, n, size)``, which the trainer then asks for its training and validation data
instead of images.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from ..data import Sample
from .data import Pool

__all__ = ["Task"]


class Task(Protocol):
    """A model family's part of training.

    Attributes
    ----------
    kind
        ``"sam2"`` or ``"sam3"`` (the config's ``model``).
    metric
        The validation metric that picks the ``best`` checkpoint (higher is better).
    """

    kind: str
    metric: str

    def loss_module(self, model: Any) -> torch.nn.Module:
        """A module whose ``forward(*batch)`` returns ``(loss, {term: float})``."""
        ...

    def filter_pool(self, pool: Pool) -> Pool:
        """The training images this task can learn from."""
        ...

    def batch(
        self, pool: Pool, idx: np.ndarray, rng: np.random.Generator, device: torch.device
    ) -> tuple:
        """The loss module's inputs for pool images ``idx`` (random choices from ``rng``)."""
        ...

    def segmenter(self, model: Any, device: torch.device) -> Any:
        """``model`` as the role object (`samgap_lib.models`) validation prompts."""
        ...

    def evaluate(self, model: Any, samples: list[Sample], device: torch.device) -> dict[str, float]:
        """Validation metrics of ``model`` on ``samples``."""
        ...

    def validate(
        self, model: Any, samples: list[Sample], device: torch.device
    ) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
        """`evaluate` and, from the same pass, its ratio metrics per image ``{metric:
        (numerator, denominator)}`` for intervals over images."""
        ...
