"""The seed-spread study: merging runs, the summary table, and the recorded results."""

from __future__ import annotations

import copy
import json
import math

import pytest

from samgap_lib.provenance import device_name
from samgap_lib.studies.seed_spread import (
    METRICS,
    describe_change,
    first_losses,
    main,
    merge_runs,
    numerics_unlike_recorded,
    recipe_block,
    recipe_difference,
    recorded_runs,
    spread_table,
    variant_config,
    variants_table,
)
from samgap_lib.training.config import ConfigError, load_config, merge
from samgap_lib.training.orchard_tiny import ORCHARD_TINY

RESULTS = recorded_runs()


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


def test_merge_runs_keeps_the_codes_first_losses_and_refuses_other_code():
    a, b = _part("sam3", [0]), _part("sam3", [1])
    for part in (a, b):
        part["models"]["sam3"]["first_losses"] = [3.0, 2.0]
    a["models"]["sam3"]["machine"] = "CPU X (AVX512 kernels), 2 cores"
    b["models"]["sam3"]["machine"] = "CPU Y (AVX512 kernels), 4 cores"  # same numerics: fine
    merged = merge_runs([a, b])["models"]["sam3"]
    assert merged["first_losses"] == [3.0, 2.0] and merged["machine"].startswith("CPU X")
    b["models"]["sam3"]["first_losses"] = [3.0, 2.5]
    b["models"]["sam3"]["machine"] = "CPU Z (AVX2 kernels), 2 cores"
    with pytest.raises(ValueError, match=r"other numbers .*on CPU X.*AVX2.*retrain them on one"):
        merge_runs([a, b])


def test_runs_of_another_machine_are_named_unlike_the_recorded_ones():
    recorded = RESULTS["models"]["sam3"]["first_losses"]
    assert numerics_unlike_recorded("sam3", list(recorded), "CPU X") is None
    other = [*recorded[:-1], recorded[-1] + 4e-6]  # the last kept decimal, as another CPU gave
    msg = numerics_unlike_recorded("sam3", other, "CPU X (AVX2 kernels), 2 cores")
    assert "CPU X (AVX2 kernels)" in msg and "cannot be compared" in msg and "--seeds" in msg


def test_spread_table_summarises_each_metric():
    res = merge_runs([_part("sam2", [0, 1, 3])])
    res["models"]["sam2"]["runs"][1]["box_mIoU"] = float("nan")  # a metric a seed could not score
    rows = {r["metric"]: r for r in spread_table(res, "sam2")}
    assert list(rows) == METRICS["sam2"]
    r = rows["click_mIoU@1"]
    assert (r["seed 0"], r["seed 3"]) == (0.0, 0.3)
    assert (r["min"], r["max"]) == (0.0, 0.3) and math.isclose(r["mean"], 0.4 / 3, abs_tol=1e-3)
    assert (rows["box_mIoU"]["min"], rows["box_mIoU"]["max"]) == (0.0, 0.3)  # NaN left out


def _variants(change: dict, seeds: list[int], value: float) -> dict:
    runs = [
        {
            "change": change,
            "seed": s,
            "steps": 1,
            "train_s": 1.0,
            **dict.fromkeys(METRICS["sam3"], value + s),
        }
        for s in seeds
    ]
    return {"models": {"sam3": {"recipe": {"a": 1}, "torch_threads": 1, "variants": runs}}}


def test_variants_are_compared_seed_by_seed_with_the_recipe():
    lr, betas = {"optim": {"lr": 0.002}}, {"optim": {"betas": [0.9, 0.95]}}
    res = merge_runs(
        [_part("sam3", [0, 1, 2]), _variants(lr, [1, 0], 1.0), _variants(betas, [2], 0.0)]
    )
    assert [(r["change"], r["seed"]) for r in res["models"]["sam3"]["variants"]] == [
        (betas, 2),
        (lr, 0),
        (lr, 1),
    ]
    rows = {r["change"]: r for r in variants_table(res, "sam3", ["cgF1"])}
    assert set(rows) == {"optim.lr = 0.002", "optim.betas = [0.9, 0.95]"}
    r = rows["optim.lr = 0.002"]  # seeds 0, 1: variant 1.0 and 2.0, recipe 0.0 and 0.1
    assert (r["seeds"], r["steps"], r["set"]) == ("0, 1", "1", lr)
    assert (r["cgF1"], r["cgF1 (recipe)"], r["cgF1 change"]) == (1.5, 0.05, 1.45)
    assert rows["optim.betas = [0.9, 0.95]"]["cgF1 (recipe)"] == 0.2  # seed 2's recipe run
    with pytest.raises(ValueError, match=r"seeds \[7\] have no recipe run"):
        variants_table(merge_runs([_part("sam3", [0]), _variants(lr, [7], 0.0)]), "sam3")
    with pytest.raises(ValueError, match="appears twice"):
        merge_runs([_variants(lr, [0], 0.0), _variants(lr, [0], 1.0)])


def adopted_runs(results, model, replaced=None):
    """The runs of the change, among those tried on a recipe, that became the current recipe
    (without their ``change`` key); None when none did."""
    block = recipe_block(results, model, replaced)
    current = json.loads(json.dumps(results["models"][model]["recipe"]))
    adopted = [
        {k: v for k, v in r.items() if k != "change"}
        for r in block.get("variants", [])
        if json.loads(json.dumps(merge(block["recipe"], r["change"]))) == current
    ]
    return adopted or None


def test_replaced_recipes_keep_their_own_studies():
    old, new = {"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 5, "d": 3}}
    assert recipe_difference(old, new) == {"b": {"c": 2}}
    assert recipe_difference(new, new) == {}
    grown = {"a": 1, "b": {"c": 2, "d": 3, "e": 64}}  # a key the earlier recipe left at its default
    assert recipe_difference(old, grown) == {"b": {"e": None}}
    assert describe_change(recipe_difference(old, grown)) == "b.e = null"
    before = _part("sam2", [0, 1], recipe=old)["models"]["sam2"]
    before["variants"] = [
        {
            "change": {"b": {"c": 5}},
            "seed": s,
            "steps": 1,
            "train_s": 1.0,
            **dict.fromkeys(METRICS["sam2"], 0.5),
        }
        for s in (0, 1)
    ] + [
        {
            "change": {"a": 7},
            "seed": 0,
            "steps": 1,
            "train_s": 1.0,
            **dict.fromkeys(METRICS["sam2"], 0.0),
        }
    ]
    res = _part("sam2", [0, 1], recipe=new)
    res["models"]["sam2"]["replaced_recipes"] = [before]
    assert recipe_block(res, "sam2") is res["models"]["sam2"]
    assert recipe_block(res, "sam2", 0) is before
    with pytest.raises(ValueError, match="no replaced recipe 1; 1 are recorded"):
        recipe_block(res, "sam2", 1)
    assert variants_table(res, "sam2") == []  # nothing tried on the current recipe yet
    rows = {r["change"]: r for r in variants_table(res, "sam2", replaced=0)}
    assert rows["b.c = 5"]["became_recipe"] and not rows["a = 7"]["became_recipe"]
    # compared with the earlier recipe's seeds (0.0 and 0.1), not with the current recipe's
    assert rows["b.c = 5"]["box_mIoU (recipe)"] == 0.05
    assert rows["a = 7"]["box_mIoU change"] == 0.0
    assert spread_table(res, "sam2", 0)[0]["mean"] == 0.05
    # the adopted change's runs, as recorded (these are not the current recipe's runs)
    assert [r["seed"] for r in adopted_runs(res, "sam2", 0)] == [0, 1]
    assert all("change" not in r and r["box_mIoU"] == 0.5 for r in adopted_runs(res, "sam2", 0))
    assert adopted_runs(res, "sam2") is None
    before["variants"] = before["variants"][2:]
    assert adopted_runs(res, "sam2", 0) is None


def test_describe_change_names_every_leaf():
    assert describe_change({"optim": {"lr": 0.002}, "train": {"steps": 9, "batch_images": 2}}) == (
        "optim.lr = 0.002, train.steps = 9, train.batch_images = 2"
    )


def test_variant_config_refuses_a_bad_change_before_training(tmp_path):
    cfg = variant_config("sam3", 4, tmp_path, change={"optim": {"lr": 0.002}})
    assert cfg["optim"]["lr"] == 0.002 and cfg["init"]["seed"] == cfg["train"]["seed"] == 4
    with pytest.raises(ConfigError, match="unknown key 'optim.lrr'"):
        variant_config("sam3", 0, tmp_path, change={"optim": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"sets init.seed; pass seeds with --seeds"):
        variant_config("sam3", 0, tmp_path, change={"init": {"seed": 3}})
    with pytest.raises(SystemExit):  # argparse: not a JSON object
        main(["--model", "sam3", "--seeds", "0", "--set", "[1]"])


def test_recorded_results_match_the_current_recipes():
    """The recorded seed runs were measured on today's orchard-tiny recipes; after a recipe
    change, rerun ``python -m samgap_lib.studies.seed_spread`` and record them again."""
    # the recipes trained from scratch (sam2_video starts from sam2: samgap study video-seeds)
    assert set(RESULTS["models"]) == set(METRICS) == set(ORCHARD_TINY) - {"sam2_video"}
    for model, block in RESULTS["models"].items():
        assert block["recipe"] == json.loads(json.dumps(ORCHARD_TINY[model]))
        assert len(block["runs"]) >= 3
        assert {r["steps"] for r in block["runs"]} == {ORCHARD_TINY[model]["train"]["steps"]}
        assert all(set(METRICS[model]) <= set(r) for r in block["runs"] + block["longer"])
        assert all(r["steps"] > ORCHARD_TINY[model]["train"]["steps"] for r in block["longer"])
        for study in [block, *block.get("replaced_recipes", [])]:
            recipe = study["recipe"]
            for r in study.get("variants", []):  # valid changes, paired with a recipe seed
                cfg = load_config(merge(recipe, r["change"]), model=model)
                assert cfg != load_config(recipe, model=model), r["change"]
                assert r["seed"] in {x["seed"] for x in study["runs"]}
                assert r["steps"] == cfg["train"]["steps"]
        for i, before in enumerate(block.get("replaced_recipes", [])):  # a recipe it replaced
            assert before["recipe"] != block["recipe"]
            assert {r["steps"] for r in before["runs"]} == {before["recipe"]["train"]["steps"]}
            became = [r for r in variants_table(RESULTS, model, replaced=i) if r["became_recipe"]]
            adopted = adopted_runs(RESULTS, model, replaced=i)
            assert len(became) == (adopted is not None)
            if became:  # the change adopted: its runs are the recipe's seeds
                assert adopted == block["runs"]
    # the studies the appendix shows: changes to each model's recipe, current or replaced
    for m in METRICS:
        earlier = range(len(RESULTS["models"][m].get("replaced_recipes", [])))
        assert variants_table(RESULTS, m) or any(
            variants_table(RESULTS, m, replaced=i) for i in earlier
        )


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(METRICS))
def test_recorded_runs_come_from_todays_training_numerics(model):
    """The recipe's first steps on today's code give the losses recorded with its runs: a
    change that trains the recipe to other numbers (the SAM3 loss batched at b06226a did, from
    the first step) must come with the runs retrained, or the book compares today's checkpoint
    with runs of other code."""
    recorded = RESULTS["models"][model]["first_losses"]
    assert len(recorded) == 5
    now = first_losses(model, len(recorded))
    assert now == pytest.approx(recorded, rel=1e-5), (
        f"orchard-tiny {model} trains to other numbers than its recorded runs ({now} against "
        f"{recorded}): retrain them with python -m samgap_lib.studies.seed_spread "
        f"--model {model} (seeds 0 1 2 and the --steps run), then record --first-losses."
    )


@pytest.mark.slow
def test_cli_trains_and_scores_a_short_schedule(tmp_path):
    out = tmp_path / "s.json"
    args = ["--model", "sam2", "--seeds", "3", "--steps", "2", "--images", "2", "--out", str(out)]
    assert main(args) == 0
    block = json.loads(out.read_text())["models"]["sam2"]
    assert "runs" not in block and len(block["longer"]) == 1  # --steps runs are "longer" runs
    recorded = RESULTS["models"]["sam2"]["first_losses"]  # today's code's fingerprint
    assert block["first_losses"] == pytest.approx(recorded, rel=1e-5)
    assert block["machine"] == device_name("cpu")  # the kernels its numbers are exact on
    r = block["longer"][0]
    assert r["seed"] == 3 and r["steps"] == 2 and r["train_s"] > 0
    assert all(math.isfinite(r[k]) for k in METRICS["sam2"])
    merged = merge_runs([json.loads(out.read_text())])
    assert merged["models"]["sam2"]["longer"] == [r]


@pytest.mark.slow
def test_cli_trains_a_recipe_change_as_a_variant(tmp_path, monkeypatch, capsys):
    out = tmp_path / "v.json"
    change = '{"optim": {"lr": 0.001}}'
    args = ["--model", "sam2", "--seeds", "3", "--steps", "2", "--images", "2", "--set", change]
    from samgap_lib.studies import seed_spread

    other = copy.deepcopy(RESULTS)
    other["models"]["sam2"]["first_losses"] = [1.0] * 5  # other numerics
    monkeypatch.setattr(seed_spread, "recorded_runs", lambda: other)
    assert main([*args, "--out", str(out)]) == 0
    assert "warning: sam2: CPU " in capsys.readouterr().err  # named before the compute is spent
    block = json.loads(out.read_text())["models"]["sam2"]
    assert "runs" not in block and "longer" not in block
    (r,) = block["variants"]
    assert r["change"] == {"optim": {"lr": 0.001}, "train": {"steps": 2}}  # --steps joins it
    assert r["seed"] == 3 and r["steps"] == 2
    assert all(math.isfinite(r[k]) for k in METRICS["sam2"])
