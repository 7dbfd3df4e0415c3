"""The seed-spread study: merging runs, the summary table, and the recorded results."""

from __future__ import annotations

import json
import math

import pytest

from samgap_lib.training.recipes import ORCHARD_TINY
from samgap_lib.training.seed_spread import METRICS, RESULTS, main, merge_runs, spread_table


def _part(model: str, seeds: list[int], threads: int = 1, recipe=None) -> dict:
    runs = [
        {"seed": s, "steps": 1, "train_s": 1.0, **dict.fromkeys(METRICS[model], s / 10)}
        for s in seeds
    ]
    return {
        "models": {model: {"recipe": recipe or {"a": 1}, "torch_threads": threads, "runs": runs}}
    }


def test_merge_runs_joins_models_and_sorts_seeds():
    longer = _part("sam3", [0])
    block = longer["models"]["sam3"]
    block["longer"] = [dict(r, steps=9) for r in block.pop("runs")]
    out = merge_runs([_part("sam3", [2, 0]), _part("sam2", [1]), _part("sam3", [1]), longer])
    assert [r["seed"] for r in out["models"]["sam3"]["runs"]] == [0, 1, 2]
    assert [(r["seed"], r["steps"]) for r in out["models"]["sam3"]["longer"]] == [(0, 9)]
    assert [r["seed"] for r in out["models"]["sam2"]["runs"]] == [1]
    assert out["models"]["sam2"]["longer"] == []


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
        assert all(set(METRICS[model]) <= set(r) for r in block["runs"] + block["longer"])
        assert all(r["steps"] > ORCHARD_TINY[model]["train"]["steps"] for r in block["longer"])


@pytest.mark.slow
def test_cli_trains_and_scores_a_short_schedule(tmp_path):
    out = tmp_path / "s.json"
    args = ["--model", "sam2", "--seeds", "3", "--steps", "2", "--images", "2", "--out", str(out)]
    assert main(args) == 0
    block = json.loads(out.read_text())["models"]["sam2"]
    assert "runs" not in block and len(block["longer"]) == 1  # --steps runs are "longer" runs
    r = block["longer"][0]
    assert r["seed"] == 3 and r["steps"] == 2 and r["train_s"] > 0
    assert all(math.isfinite(r[k]) for k in METRICS["sam2"])
    merged = merge_runs([json.loads(out.read_text())])
    assert merged["models"]["sam2"]["longer"] == [r]
