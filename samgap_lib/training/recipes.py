"""The released fine-tuning recipes of SAM2 and SAM3, as data (``configs/official_recipes.yml``).

`OFFICIAL_RECIPES` maps each recipe's name to its aspects (what is trained, the losses and their
weights, matching, learning rates, optimiser, resolution, batch, prompts, text), each a sentence
with its source; `recipe_table` lays them side by side for chapter 4.
"""

from __future__ import annotations

from ..config import packaged_yaml

__all__ = ["OFFICIAL_RECIPES", "recipe_table"]

OFFICIAL_RECIPES: dict[str, dict[str, str]] = packaged_yaml("official_recipes.yml")


def recipe_table() -> list[dict[str, str]]:
    """The official recipes as rows (one per aspect, a column per model) for a table."""
    names = list(OFFICIAL_RECIPES)
    aspects = list(OFFICIAL_RECIPES[names[0]])
    return [{"aspect": a, **{n: OFFICIAL_RECIPES[n][a] for n in names}} for a in aspects]
