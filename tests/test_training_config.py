"""Configs, CLI plumbing and bad input: each refused with a clear message before compute."""

import numpy as np
import pytest
import yaml
from _training_helpers import tiny_config

from samgap_lib.cli import main as cli_main
from samgap_lib.data import Sample
from samgap_lib.training import (
    OFFICIAL_RECIPES,
    ConfigError,
    ResumeError,
    load_config,
    recipe_table,
    train,
)
from samgap_lib.training.checkpoint import check_resume, fingerprint
from samgap_lib.training.config import default_config
from samgap_lib.training.data import batch_indices, make_pool
from samgap_lib.training.orchard_tiny import orchard_tiny_config


@pytest.mark.parametrize("model", ["sam2", "sam3"])
def test_packaged_defaults_validate(model):
    cfg = load_config(model=model)
    assert cfg["model"] == model
    assert orchard_tiny_config(model, "/tmp/x")["train"]["out_dir"] == "/tmp/x"


def test_unknown_key_names_it_and_suggests(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text(yaml.safe_dump({"model": "sam2", "optim": {"lerning_rate": 1e-4}}))
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lerning_rate'"):
        load_config(p)
    with pytest.raises(ConfigError, match="Did you mean 'steps'"):
        load_config({"model": "sam2", "train": {"step": 3}})


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"train": {"steps": "ten"}}, r"'train.steps' must be int"),
        ({"optim": {"lr": True}}, r"'optim.lr' must be number"),
        ({"optim": {"freeze": "vision"}}, r"'optim.freeze' must be list"),
        ({"train": {"steps": 0}}, r"'train.steps' must be > 0"),
        ({"init": {"backend": "meta"}}, r"'meta' is not supported for training"),
        ({"train": {"precision": "fp16"}}, r"'train.precision' must be one of"),
        ({"data": {"source": "minneapple"}}, r"needs data.root"),
        ({"loss": {"class_loss": "ce"}}, r"'loss.class_loss' must be one of \['iabce', 'focal'\]"),
        ({"eval": {"nms_iou": 1.5}}, r"eval.nms_iou must be in \(0, 1\] or null, got 1.5"),
        ({"eval": {"nms_iou": "half"}}, r"'eval.nms_iou' must be"),
        ({"loss": {"mask_loss_size": 0}}, r"loss.mask_loss_size must be > 0 or null, got 0"),
        ({"data": {"render_size": 8}}, r"data.render_size must be >= 16 px or null .*got 8"),
        ({"data": {"render_size": 128.0}}, r"'data.render_size' must be int or null"),
        (
            {"data": {"render_size": 128, "source": "minneapple", "root": "/data"}},
            r"data.render_size sets the side synthetic images are rendered at; minneapple",
        ),
        ({"loss": {"mask_loss_size": 56.5}}, r"'loss.mask_loss_size' must be int or null"),
        ({"loss": {"o2m_weight": -2.0}}, r"loss.o2m_weight must be >= 0 \(0 = off\), got -2.0"),
        ({"loss": {"o2m_alpha": 1.3}}, r"loss.o2m_alpha must be in \[0, 1\], got 1.3"),
        ({"loss": {"o2m_topk": 0}}, r"loss.o2m_topk must be >= 1, got 0"),
        ({"loss": {"o2m_topk": 4.0}}, r"'loss.o2m_topk' must be int"),
        ({"init": {"num_queries": 0}}, r"init.num_queries must be > 0 or null, got 0"),
        ({"init": {"num_queries": 64.0}}, r"'init.num_queries' must be int or null"),
        (
            {"init": {"num_queries": 64, "checkpoint": "facebook/sam3"}},
            r"init.num_queries sizes a model built from scratch, but init.checkpoint",
        ),
    ],
)
def test_wrong_values_refused(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config({"model": "sam3", **override})


@pytest.mark.parametrize(
    ("video", "match"),
    [
        ({"frames": 1}, r"video.frames must be 0 \(train on images\) or at least 2"),
        ({"frames": 4, "pan": [20, 6]}, r"video.pan must be \[low, high\]"),
        ({"frames": 4, "p_correct_frame": 1.5}, r"video.p_correct_frame must be in \[0, 1\]"),
        ({"frames": 4, "num_maskmem": 0}, r"video.num_maskmem must be >= 1, got 0"),
    ],
)
def test_wrong_video_values_refused(video, match):
    with pytest.raises(ConfigError, match=match):
        load_config({"model": "sam2", "video": video})
    assert load_config({"model": "sam2", "video": {"frames": 4}})["video"]["frames"] == 4


def test_video_training_needs_synthetic_clips():
    with pytest.raises(ConfigError, match="video training reads synthetic orchard clips"):
        load_config(
            {
                "model": "sam2",
                "video": {"frames": 4},
                "data": {"source": "minneapple", "root": "/d"},
            }
        )


def test_num_queries_is_a_sam3_key():
    assert load_config(model="sam3")["init"]["num_queries"] is None  # the arch's 36
    assert load_config({"model": "sam3", "init": {"num_queries": 64}})["init"]["num_queries"] == 64
    with pytest.raises(ConfigError, match=r"unknown key 'init.num_queries'"):
        load_config({"model": "sam2", "init": {"num_queries": 64}})


def test_wrong_sam2_mask_loss_size_refused():
    with pytest.raises(ConfigError, match=r"loss.mask_loss_size must be > 0 or null, got -4"):
        load_config({"model": "sam2", "loss": {"mask_loss_size": -4}})
    assert (
        load_config({"model": "sam2", "loss": {"mask_loss_size": 96}})["loss"]["mask_loss_size"]
        == 96
    )


def test_wrong_sam2_dense_first_radius_refused():
    with pytest.raises(ConfigError, match=r"dense_first_radius must be > 0 or null, got -1"):
        load_config({"model": "sam2", "prompts": {"dense_first_radius": -1}})
    cfg = load_config({"model": "sam2", "prompts": {"dense_first_radius": 3}})
    assert cfg["prompts"]["dense_first_radius"] == 3


def test_model_mismatch_and_missing_file(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("model: sam3\n")
    with pytest.raises(ConfigError, match="trains model 'sam3'"):
        load_config(p, model="sam2")
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yml")


def test_init_copies_configs(tmp_path, capsys):
    assert cli_main(["train", "--init", str(tmp_path)]) == 0
    for m in ("sam2", "sam3"):
        assert yaml.safe_load((tmp_path / f"train_{m}.yml").read_text()) == default_config(m)
    assert cli_main(["train", "--init", str(tmp_path)]) == 2  # refuses to overwrite
    assert "exists" in capsys.readouterr().err


def test_cli_reports_config_error(tmp_path, capsys):
    p = tmp_path / "c.yml"
    p.write_text("model: sam2\ntrain: {batch: 3}\n")
    assert cli_main(["train", "sam2", "--config", str(p)]) == 2
    assert "unknown key 'train.batch'" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["sam2", "sam3"])
def test_render_size_renders_small_then_resizes_to_the_model_input(tmp_path, model):
    """data.render_size: the synthetic scenes of that side, resized to the model's input as the
    held-out images are; null renders at data.image_size."""
    from samgap_lib.data import synthetic_orchard
    from samgap_lib.data.profiles import SPLIT_START
    from samgap_lib.training.data import load_samples

    cfg = load_config(tiny_config(model, tmp_path, data={"render_size": 48, "n_train": 3}))
    samples = load_samples(cfg, "train", 3)
    assert {s.image.shape[:2] for s in samples} == {(48, 48)}
    if model == "sam2":  # no ripeness mix: the same scenes as the generator's train split
        ref = synthetic_orchard(
            3, seed=cfg["data"]["seed"], size=(48, 48), start=SPLIT_START["train"]
        )
        assert all(np.array_equal(a.image, b.image) for a, b in zip(samples, ref, strict=True))
    size = cfg["data"]["image_size"]
    assert size != 48
    pool = make_pool(samples, size)
    assert pool.images.shape[1:3] == (size, size)
    assert pool.n_instances == sum(len(s.instances) for s in samples)
    plain = load_config(tiny_config(model, tmp_path, data={"n_train": 3}))
    assert plain["data"]["render_size"] is None
    assert {s.image.shape[:2] for s in load_samples(plain, "train", 3)} == {(size, size)}


def test_dataset_without_instances_refused():
    import numpy as np

    empty = [Sample(np.zeros((32, 32, 3), np.uint8), [], image_id=i) for i in range(3)]
    with pytest.raises(ValueError, match="no instances at all"):
        make_pool(empty, 32)


def test_resume_from_other_model_or_config(tmp_path):
    cfg2 = load_config(tiny_config("sam2", tmp_path))
    cfg3 = load_config(tiny_config("sam3", tmp_path))
    state = {"fingerprint": fingerprint(cfg3), "config": cfg3}
    with pytest.raises(ResumeError, match="comes from a 'sam3' run"):
        check_resume(state, cfg2, "last.pt")
    changed = load_config(tiny_config("sam2", tmp_path, optim={"lr": 0.5}))
    state = {"fingerprint": fingerprint(cfg2), "config": cfg2}
    with pytest.raises(ResumeError, match=r"optim.lr: 0.001 -> 0.5"):
        check_resume(state, changed, "last.pt")
    check_resume(
        state, load_config(tiny_config("sam2", tmp_path / "other")), "last.pt"
    )  # out_dir may move


def test_resume_file_that_is_not_a_state(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    cfg = load_config(tiny_config("sam2", tmp_path / "run"))
    with pytest.raises(ResumeError, match="not a readable samgap training state"):
        train(cfg, resume=bad)


def test_sampler_shards_and_epochs():
    a = [batch_indices(10, s, 0, 2, 1, seed=0, rank=0, world=2) for s in range(5)]
    b = [batch_indices(10, s, 0, 2, 1, seed=0, rank=1, world=2) for s in range(5)]

    epoch = np.concatenate([np.concatenate([x, y]) for x, y in zip(a, b, strict=True)])
    assert sorted(epoch[:10].tolist()) == list(range(10))  # every image once per epoch
    assert not set(a[0].tolist()) & set(b[0].tolist())  # ranks see different images


def test_recipe_table_rows():
    rows = recipe_table()
    assert {r["aspect"] for r in rows} >= {
        "losses (weight)",
        "learning rates",
        "resolution",
        "batch",
    }
    assert all(len(r) == 1 + len(OFFICIAL_RECIPES) for r in rows)


def test_token_only_results_match_the_current_recipe():
    """The recorded token-only results were measured on today's orchard-tiny SAM2 recipe; after
    a recipe change, rerun ``python -m samgap_lib.studies.token_only`` and record them again."""
    from samgap_lib.studies.token_only import VARIANTS, recipe_summary, recorded_runs

    RESULTS = recorded_runs()

    assert RESULTS["recipe"] == recipe_summary()
    assert set(RESULTS["variants"]) == set(VARIANTS)
    assert RESULTS["variants"]["tokens only"]["steps"] == recipe_summary()["steps"]


def test_orchard_tiny_trains_on_the_cpu_in_float32_on_a_gpu_machine(tmp_path, monkeypatch):
    """On a CUDA machine (Colab, a workstation) the trainer's defaults would move orchard-tiny to
    the GPU under bf16 autocast; the recipes pin the CPU and float32, where they were tuned."""
    import torch

    from samgap_lib.training import trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    default = default_config("sam2")["train"]
    dev = trainer._device(default["device"], 0)
    assert (
        dev.type == "cuda" and trainer.precision_dtype(default["precision"], dev) is torch.bfloat16
    )
    for model in ("sam2", "sam3"):
        t = orchard_tiny_config(model, tmp_path / model)["train"]
        dev = trainer._device(t["device"], 0)
        assert dev.type == "cpu" and trainer.precision_dtype(t["precision"], dev) is None


def test_wrong_sam2_all_candidates_refused():
    with pytest.raises(
        ConfigError, match=r"loss.all_candidates must be >= 0 \(0 = off\), got -0.5"
    ):
        load_config({"model": "sam2", "loss": {"all_candidates": -0.5}})
    with pytest.raises(ConfigError, match=r"'loss.all_candidates' must be number"):
        load_config({"model": "sam2", "loss": {"all_candidates": "all"}})
    assert load_config({"model": "sam2"})["loss"]["all_candidates"] == 0.0
