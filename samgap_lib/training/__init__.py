"""Training: SAM2 (geometric prompts) and SAM3 (concept prompts) fine-tuning, from scratch
or from released checkpoints; losses, configs, checkpoints, logs, DDP and orchard-tiny.

- `load_config` / `default_config`: YAML configs (``samgap_lib/configs/train_sam{2,3}.yml``).
- `train(cfg, resume=...)`: the loop (accumulation, clipping, bf16 autocast on CUDA,
  gradient checkpointing, DistributedDataParallel under torchrun, exact resume);
  `evaluate_start(cfg)`: the same validation on the model a run starts from.
  `validation_per_image(cfg)`: its ratio metrics per validation image, for intervals over images.
  `start_validation(cfg)`: both from one pass over the validation images.
- `ensure_orchard_tiny()`: the smoke profile's SAM2 and SAM3 trained from scratch (cached).
- `DensePromptSegmenter`: how to prompt an orchard-tiny SAM2 (prompts drawn into the mask input).
- `OFFICIAL_RECIPES`, `recipe_table()`: the released fine-tuning recipes as data.
- Studies of the orchard-tiny recipes, run as modules, their results recorded for chapter 4:
  `token_only` (SAM2 without drawn prompts) and `seed_spread` (the recipes with other seeds).
"""

from ..models.dense import DensePromptSegmenter, dense_spec, draw_dense_prompts
from .checkpoint import ResumeError
from .config import ConfigError, default_config, init_configs, load_config
from .losses import (
    detr_losses,
    dice_loss,
    generalized_box_iou,
    hungarian_match,
    sam2_mask_loss,
    sigmoid_focal_loss,
)
from .recipes import (
    OFFICIAL_RECIPES,
    ORCHARD_TINY,
    ensure_orchard_tiny,
    evaluate_checkpoint,
    read_card,
    recipe_table,
)
from .trainer import TrainResult, evaluate_start, start_validation, train, validation_per_image

__all__ = [
    "OFFICIAL_RECIPES",
    "ORCHARD_TINY",
    "ConfigError",
    "DensePromptSegmenter",
    "ResumeError",
    "TrainResult",
    "default_config",
    "dense_spec",
    "detr_losses",
    "dice_loss",
    "draw_dense_prompts",
    "ensure_orchard_tiny",
    "evaluate_checkpoint",
    "evaluate_start",
    "generalized_box_iou",
    "hungarian_match",
    "init_configs",
    "load_config",
    "read_card",
    "recipe_table",
    "sam2_mask_loss",
    "sigmoid_focal_loss",
    "start_validation",
    "train",
    "validation_per_image",
]
