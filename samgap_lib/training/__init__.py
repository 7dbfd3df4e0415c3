"""Training: SAM2 (geometric prompts) and SAM3 (concept prompts) fine-tuning, from scratch or
from released checkpoints; losses, configs, checkpoints, logs, DDP and orchard-tiny.

- `load_config` / `default_config`: YAML configs (``samgap_lib/configs/train_sam{2,3}.yml``),
  checked by `samgap_lib.config`.
- `train(cfg, resume=...)`: one loop for both families (a `Task` each: `tasks.Sam2Task`,
  `tasks.Sam3Task`) with accumulation, clipping, bf16 autocast on CUDA, gradient checkpointing,
  DistributedDataParallel under torchrun and exact resume. `start_validation(cfg)`: the
  validation of the model a run starts from, as metrics and per validation image (for intervals
  over images).
- `ensure_orchard_tiny()`: the smoke profile's SAM2 and SAM3 trained from scratch, and SAM2's
  memory path fine-tuned on clips (cached);
  `read_card` reads what a checkpoint's card records.
- `OFFICIAL_RECIPES`, `recipe_table()`: the released fine-tuning recipes as data.
"""

from ..config import ConfigError
from .checkpoint import ResumeError
from .config import default_config, init_configs, load_config
from .init import build_model, sam3_queries
from .logs import read_jsonl
from .losses import (
    detr_losses,
    dice_loss,
    generalized_box_iou,
    hungarian_match,
    sam2_mask_loss,
    sigmoid_focal_loss,
)
from .orchard_tiny import ORCHARD_TINY, WORKAROUNDS, ensure_orchard_tiny, read_card
from .recipes import OFFICIAL_RECIPES, recipe_table
from .task import Task
from .trainer import TrainResult, start_validation, train

__all__ = [
    "OFFICIAL_RECIPES",
    "ORCHARD_TINY",
    "WORKAROUNDS",
    "ConfigError",
    "ResumeError",
    "Task",
    "TrainResult",
    "build_model",
    "default_config",
    "detr_losses",
    "dice_loss",
    "ensure_orchard_tiny",
    "generalized_box_iou",
    "hungarian_match",
    "init_configs",
    "load_config",
    "read_card",
    "read_jsonl",
    "recipe_table",
    "sam2_mask_loss",
    "sam3_queries",
    "sigmoid_focal_loss",
    "start_validation",
    "train",
]
