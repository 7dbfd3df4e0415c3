"""The training benchmark's options, its recorded CUDA results, and the GPU check script on CPU."""

import json
from pathlib import Path

import pytest
import transformers as tf

from samgap_lib.studies.train_bench import (
    ARCHS,
    OPTIONS,
    bench_config,
    cuda_table,
    recorded_cuda,
    run_one,
    trainable_params,
    vit_layers,
)
from samgap_lib.training.init import build_model

REPO = Path(__file__).resolve().parents[1]


def test_vit_depths_match_the_architectures():
    assert vit_layers("sam3") == tf.Sam3Config().vision_config.backbone_config.num_hidden_layers
    cfg = bench_config("sam3", "orchard-s", "full", "cpu", 1)
    model, _ = build_model(cfg)
    assert vit_layers("orchard-s") == model.config.vision_config.backbone_config.num_hidden_layers


@pytest.mark.parametrize("arch", ["orchard-s", "sam3"])
def test_half_frozen_freezes_half_the_vit(arch):
    for option in ("vision half frozen", "all savers"):
        cfg = bench_config("sam3", arch, option, "cpu", 1)
        assert cfg["optim"]["freeze_vision_layers"] == vit_layers(arch) // 2
    savers = bench_config("sam3", arch, "all savers", "cpu", 1)
    assert savers["train"]["grad_checkpointing"] is True
    assert savers["loss"]["max_matched_queries"] == 4
    assert savers["loss"]["segmentation"] is True
    assert "text" in savers["optim"]["freeze"]


def test_all_savers_trains_fewer_parameters_with_fewer_activations():
    full = run_one("sam3", "orchard-s", "full", steps=1, batch=1)
    savers = run_one("sam3", "orchard-s", "all savers", steps=1, batch=1)
    assert savers["trainable_params"] < full["trainable_params"]
    assert savers["activations_mb"] < full["activations_mb"]
    assert savers["precision"] == full["precision"] == "float32"  # cpu, precision auto


def test_recorded_cuda_rows_match_the_code():
    """Every recorded cell names an option and size the benchmark has, and the parameters it
    trained are what the benchmark's freezing trains now."""
    rec = recorded_cuda()
    rows = rec["bench_train"]["rows"]
    assert rows
    for r in rows:
        assert r["option"] in OPTIONS[r["model"]] and r["arch"] in ARCHS[r["model"]]
        assert r["device"] == "cuda" and r["peak_mem_mb"] > 0 and r["steps_per_s"] > 0
        assert trainable_params(r["model"], r["arch"], r["option"]) == r["trainable_params"], r
    assert {c for c, v in rec["gpu_check"]["checks"].items() if v["ok"]} == {
        "inference",
        "experiment",
        "train-resume",
        "ddp",
    }
    table = cuda_table(rec)
    current = [r for r in rows if "superseded" not in r]
    assert len(table) == len(current) and table[0]["peak GPU memory (GiB)"] > 0


def test_gpu_check_runs_on_cpu_with_tiny_models(tmp_path):
    from samgap_lib.benchmarks import gpu_check as mod

    out = tmp_path / "report.json"
    code = mod.main(
        ["--device", "cpu", "--models", "tiny", "--work", str(tmp_path / "w"), "--out", str(out),
         "--only", "inference", "experiment", "train-resume"]
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert code == 0, {k: v.get("error") for k, v in report["checks"].items()}
    inf = report["checks"]["inference"]
    assert inf["sam2_masks"] == [50, 720, 1280]
    assert all(sh[1:] == [720, 1280] for sh in inf["sam3_threshold0_masks"].values())
    resume = report["checks"]["train-resume"]
    assert resume["killed_after_checkpoint_step"] >= 2
    # on CPU the resumed run repeats the uninterrupted one exactly
    assert resume["losses_identical"] and resume["weights_identical"]
    assert report["environment"]["device"] == "cpu"


def test_boxes_only_training_skips_the_mask_decoder(monkeypatch):
    from transformers.models.sam3 import modeling_sam3

    calls = []
    original = modeling_sam3.Sam3MaskDecoder.forward

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(modeling_sam3.Sam3MaskDecoder, "forward", counted)
    boxes = run_one("sam3", "orchard-s", "boxes only (no masks)", steps=1, batch=1)
    assert calls == []
    full = run_one("sam3", "orchard-s", "full", steps=1, batch=1)
    assert calls, "the mask loss needs the mask decoder"
    assert boxes["activations_mb"] < full["activations_mb"]


def test_click_cost_times_both_predictions():
    from samgap_lib.studies.train_bench import click_cost_ms

    cost = click_cost_ms(size=128, radius=20, repeats=1)  # a timing: its ratio is for the book
    assert set(cost) == {"near", "random"} and all(v > 0 for v in cost.values())


def test_recipe_step_seconds_refuses_settings_it_cannot_run():
    from samgap_lib.studies.parallel import recipe_step_seconds

    with pytest.raises(ValueError, match="does not split over 3 processes"):
        recipe_step_seconds("sam2", processes=3)  # the recipe's batch is 2 images
    with pytest.raises(ValueError, match="several processes of one thread each"):
        recipe_step_seconds("sam2", processes=2, threads=2)
    with pytest.raises(ValueError, match="steps a multiple of skip"):
        recipe_step_seconds("sam2", steps=10, skip=4)


@pytest.mark.slow
def test_recipe_step_seconds_times_one_process_and_two_ddp_processes(tmp_path):
    """The recipe trained for a few steps through the CLI, alone and as two gloo processes
    that split its batch; the time comes from each run's log."""
    from samgap_lib.studies.parallel import recipe_step_seconds

    one = recipe_step_seconds("sam2", 1, 1, steps=4, skip=2, n_train=6, work_dir=tmp_path)
    two = recipe_step_seconds("sam2", 2, 1, steps=4, skip=2, n_train=6, work_dir=tmp_path)
    for r, procs in ((one, 1), (two, 2)):
        assert r["processes"] == procs and r["threads"] == 1 and r["batch_images"] == 2
        assert r["steps_timed"] == 2 and 0 < r["s_per_step"] < 60
    assert list(tmp_path.iterdir()) == []  # the runs' folders are removed


def test_bench_parallel_script_reports_each_setting(tmp_path, monkeypatch):
    """``samgap bench parallel``: a row per (processes, threads) with the median of its
    repeats and its speed-up against one thread (the runs replaced by a fake here)."""
    import samgap_lib.studies.parallel as bench
    from samgap_lib.benchmarks import parallel as mod

    fake = {(1, 1): [0.4, 0.5, 0.45], (1, 2): [0.3, 0.35, 0.2], (2, 1): [0.25, 0.3, 0.2]}
    calls = []

    def step_seconds(model, processes, threads, steps, skip):
        calls.append((processes, threads))
        return {
            "s_per_step": fake[(processes, threads)][
                sum(c == (processes, threads) for c in calls) - 1
            ]
        }

    monkeypatch.setattr(bench, "recipe_step_seconds", step_seconds)
    out = tmp_path / "p.json"
    assert mod.main(["--models", "sam2", "--cores", "2", "--repeats", "3", "--out", str(out)]) == 0
    assert calls[:3] == [(1, 1), (1, 2), (2, 1)]  # alternated, so a neighbour's load falls on each
    rows = {(r["processes"], r["threads"]): r for r in json.loads(out.read_text())["rows"]}
    assert rows[(1, 1)]["s_per_step"] == pytest.approx(0.45)
    assert rows[(2, 1)]["s_per_step"] == pytest.approx(0.25)
    assert rows[(2, 1)]["speedup_vs_one_thread"] == pytest.approx(0.45 / 0.25)
