"""The seed-spread study: merging runs, the summary table, and the recorded results."""

from __future__ import annotations

import json
import math

import pytest

from samgap_lib.training.recipes import ORCHARD_TINY
from samgap_lib.training.seed_spread import METRICS, RESULTS, merge_runs, run_seed, spread_table


def _part(model: str, seeds: list[int], threads: int = 1, recipe=None) -> dict:
    runs = [
        {"seed": s, "steps": 1, "train_s": 1.0, **dict.fromkeys(METRICS[model], s / 10)}
        for s in seeds
    ]
    return {
        "models": {model: {"recipe": recipe or {"a": 1}, "torch_threads": threads, "runs": runs}}
    }


def test_merge_runs_joins_models_and_sorts_seeds():
    out = merge_runs([_part("sam3", [2, 0]), _part("sam2", [1]), _part("sam3", [1])])
    assert [r["seed"] for r in out["models"]["sam3"]["runs"]] == [0, 1, 2]
    assert [r["seed"] for r in out["models"]["sam2"]["runs"]] == [1]


@pytest.mark.parametrize(
    "other, match",
    [
        (_part("sam2", [1], threads=2), "thread counts"),
        (_part("sam2", [1], recipe={"a": 2}), "different recipes"),
        (_part("sam2", [0]), "appears twice"),
    ],
)
def test_merge_runs_refuses_mixed_runs(other, match):
    with pytest.raises(ValueError, match=match):
        merge_runs([_part("sam2", [0]), other])


def test_spread_table_summarises_each_metric():
    res = merge_runs([_part("sam2", [0, 1, 3])])
    res["models"]["sam2"]["runs"][1]["box_mIoU"] = float("nan")  # a metric a seed could not score
    rows = {r["metric"]: r for r in spread_table(res, "sam2")}
    assert list(rows) == METRICS["sam2"]
    r = rows["click_mIoU@1"]
    assert (r["seed 0"], r["seed 3"]) == (0.0, 0.3)
    assert (r["min"], r["max"]) == (0.0, 0.3) and math.isclose(r["mean"], 0.4 / 3, abs_tol=1e-3)
    assert (rows["box_mIoU"]["min"], rows["box_mIoU"]["max"]) == (0.0, 0.3)  # NaN left out


def test_recorded_results_match_the_current_recipes():
    """The recorded seed runs were measured on today's orchard-tiny recipes; after a recipe
    change, rerun ``python -m samgap_lib.training.seed_spread`` and record them again."""
    assert set(RESULTS["models"]) == set(ORCHARD_TINY)
    for model, block in RESULTS["models"].items():
        assert block["recipe"] == json.loads(json.dumps(ORCHARD_TINY[model]))
        assert len(block["runs"]) >= 3
        assert {r["steps"] for r in block["runs"]} == {ORCHARD_TINY[model]["train"]["steps"]}
        assert all(set(METRICS[model]) <= set(r) for r in block["runs"])


@pytest.mark.slow
def test_run_seed_trains_and_scores_a_short_schedule():
    a = run_seed("sam2", 3, n_images=2, num_threads=1, steps=2)
    assert a["seed"] == 3 and a["steps"] == 2 and a["train_s"] > 0
    assert set(METRICS["sam2"]) <= set(a)
    assert all(math.isfinite(a[k]) for k in METRICS["sam2"])
