"""Experiments: configs, the resumable result store, the runners end to end on tiny models."""

import json
from pathlib import Path

import numpy as np
import pytest
from _fake_segmenters import DiscSegmenter

from samgap_lib.data import Instance, Sample
from samgap_lib.evaluation import (
    click_all_instances,
    effort_equivalence,
    first_click_candidates,
    sam2_quality_curves,
)
from samgap_lib.experiments import (
    ConfigError,
    ConfigMismatchError,
    ResultStore,
    load_config,
    read_records,
    read_results,
    run_experiment,
)
from samgap_lib.metrics import candidate_selection
from samgap_lib.metrics.panoptic import panoptic_quality
from samgap_lib.models.base import PromptResult

TINY = [
    "models.sam2.source=tiny-random",
    "models.sam3.source=tiny-random",
    "data.n_images=2",
    "data.size=[96, 96]",
    "clicks.max_clicks=3",
]


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMGAP_CACHE", str(tmp_path.parent / "samgap-cache"))
    return load_config(profile="smoke", overrides=[*TINY, f"output={tmp_path / 'results'}"])


# --- configuration --------------------------------------------------------------------------


def test_config_layers_and_errors(tmp_path):
    base = load_config()
    assert base["profile"] == "smoke" and base["clicks"]["max_clicks"] == 20
    f = tmp_path / "c.yml"
    f.write_text("clicks: {max_clicks: 7}\nseed: 3\n")
    cfg = load_config(f, overrides=["data.n_images=4"])
    assert (cfg["clicks"]["max_clicks"], cfg["seed"], cfg["data"]["n_images"]) == (7, 3, 4)
    with pytest.raises(ConfigError, match="unknown key 'clicks.max_click'"):
        load_config(overrides=["clicks.max_click=3"])
    with pytest.raises(ConfigError, match="must be int"):
        load_config(overrides=["seed=abc"])
    with pytest.raises(ConfigError, match="data_root"):
        load_config(profile="paper")
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.yml")
    paper = load_config(profile="paper", overrides=["data.data_root=/x"])
    assert paper["models"]["sam3"]["source"] == "facebook/sam3"


# --- store ----------------------------------------------------------------------------------


def test_store_resumes_and_survives_a_torn_line(tmp_path):
    st = ResultStore(tmp_path / "r", {"a": 1})
    st.add("x", {"v": 1})
    st.add("y", {"v": 2})
    with open(st.records_path, "a") as f:
        f.write('{"key": "z", "v"')  # a crash mid-write
    again = ResultStore(tmp_path / "r", {"a": 1})
    assert [r["key"] for r in again.records()] == ["x", "y"]
    assert again.todo(["x", "y", "z"]) == ["z"]
    again.add("z", {"v": 3})
    lines = (tmp_path / "r" / "records.jsonl").read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["x", "y", "z"]
    with pytest.raises(ConfigMismatchError, match="--restart"):
        ResultStore(tmp_path / "r", {"a": 2})
    fresh = ResultStore(tmp_path / "r", {"a": 2}, restart=True)
    assert fresh.records() == []


# --- clicking on a fake segmenter -------------------------------------------------------------


def test_click_all_instances_is_batched_and_improves():
    gt = np.zeros((2, 40, 40), bool)
    gt[0, 5:20, 5:20] = True
    gt[1, 25:35, 22:38] = True
    seg = DiscSegmenter((40, 40))
    ious, masks = click_all_instances(seg, gt, max_clicks=6)
    assert ious.shape == (2, 6) and masks.shape == (2, 40, 40)
    assert seg.calls == 6  # one call per round, all instances together
    assert (ious[:, -1] > ious[:, 0]).all()


class RingSegmenter(DiscSegmenter):
    """Answers one click with three discs (radius 2, 6 and 12 px) scored 0.2, 0.9, 0.5, and
    asked for one mask, with the radius-6 disc."""

    def predict(self, points=None, point_labels=None, boxes=None, mask_input=None, multimask=True):
        self.calls += 1
        yy, xx = np.mgrid[: self.shape[0], : self.shape[1]]
        n = len(points)
        discs = np.zeros((n, 3, *self.shape), bool)
        for i, (x, y) in enumerate(points[:, 0]):
            d2 = (xx - x) ** 2 + (yy - y) ** 2  # clicks are pixel indices
            for k, r in enumerate((2, 6, 12)):
                discs[i, k] = d2 <= r**2
        logits = np.zeros((n, 3, 8, 8), np.float32)
        if multimask:
            return PromptResult(discs, np.tile([0.2, 0.9, 0.5], (n, 1)), logits, np.zeros(n))
        return PromptResult(discs[:, 1], np.ones(n), logits[:, 1], np.zeros(n))


def test_first_click_candidates_scores_every_candidate():
    gt = np.zeros((2, 60, 60), bool)
    yy, xx = np.mgrid[:60, :60]
    gt[0] = (xx - 15) ** 2 + (yy - 15) ** 2 <= 36  # radius 6: candidate 2 fits it
    gt[1] = (xx - 40) ** 2 + (yy - 40) ** 2 <= 144  # radius 12: candidate 3 fits it
    seg = RingSegmenter((60, 60))
    out = first_click_candidates(seg, gt)
    assert out["ious"].shape == out["scores"].shape == (2, 3) and seg.calls == 2
    np.testing.assert_allclose(out["ious"][0, 1], 1.0)
    np.testing.assert_allclose(out["ious"][1, 2], 1.0)
    np.testing.assert_allclose(out["single_ious"], out["ious"][:, 1])
    assert out["ious"][0, 0] < 0.2 and out["ious"][1, 1] < 0.3
    sel = candidate_selection(out["ious"], out["scores"])
    assert sel["oracle_mIoU"] == pytest.approx(1.0)
    assert sel["confident_mIoU"] == pytest.approx(np.mean(out["ious"][:, 1]))
    np.testing.assert_allclose(sel["picked_share"], [0, 1, 0])
    np.testing.assert_allclose(sel["best_share"], [0, 0.5, 0.5])
    # the first click is click_all_instances' first click
    ious, _ = click_all_instances(RingSegmenter((60, 60)), gt, max_clicks=1)
    np.testing.assert_allclose(ious[:, 0], out["ious"][:, 1])

    # a segmenter that answers with one mask whatever it is asked gives one candidate
    class OneAnswer(DiscSegmenter):
        def predict(
            self, points=None, point_labels=None, boxes=None, mask_input=None, multimask=True
        ):
            return super().predict(points, point_labels, boxes, mask_input, multimask=False)

    plain = first_click_candidates(OneAnswer((60, 60), r=6), gt)
    assert plain["ious"].shape == plain["scores"].shape == (2, 1)
    np.testing.assert_allclose(plain["ious"][:, 0], plain["single_ious"])
    # no instance: empty arrays
    assert first_click_candidates(seg, gt[:0])["ious"].shape == (0, 1)


def test_panoptic_quality_cases():
    g = np.zeros((2, 10, 10), bool)
    g[0, :5, :5] = True
    g[1, 5:, 5:] = True
    assert panoptic_quality(g, g)["PQ"] == pytest.approx(1.0)
    assert panoptic_quality(np.zeros((0, 10, 10), bool), g)["PQ"] == 0.0
    assert panoptic_quality(np.zeros((0, 10, 10), bool), np.zeros((0, 10, 10), bool))["PQ"] == 1.0
    extra = np.concatenate([g, g[:1]])  # a duplicate detection is a false positive
    assert panoptic_quality(extra, g)["PQ"] == pytest.approx(2 / 2.5)
    low = panoptic_quality(g, g, scores=[0.9, 0.1])  # the low-score one does not count
    assert (low["TP"], low["FN"]) == (1.0, 1.0)


def test_effort_equivalence_rows():
    masks = np.zeros((2, 8, 8), bool)
    masks[0, :4] = True
    masks[1, 4:] = True
    s = Sample(
        np.zeros((8, 8, 3), np.uint8),
        [Instance(m, instance_id=i + 1) for i, m in enumerate(masks)],
        image_id=0,
    )
    clicks = [{"image_id": 0, "instances": [{"ious": [0.3, 0.7, 0.9]}, {"ious": [0.6, 0.8, 0.95]}]}]
    curve = sam2_quality_curves(clicks)["0"]
    assert curve == pytest.approx([0.3, 0.75, 0.925])
    from samgap_lib.data import Concept, mask_to_rle

    concept_recs = [
        {
            "image_id": 0,
            "text": {
                "apple": {
                    "rles": [mask_to_rle(masks[0])],
                    "scores": [0.9],
                    "boxes": [[0, 0, 8, 4]],
                    "presence": 0.9,
                }
            },
        }
    ]
    rows = effort_equivalence([s], clicks, concept_recs, Concept("apple"))
    # SAM3 found one of two apples perfectly: PQ = 1 / (1 + 0.5) = 2/3; SAM2 passes it at k = 2
    assert rows[0]["sam3_pq"] == pytest.approx(2 / 3)
    assert rows[0]["k_star"] == 2 and rows[0]["clicks_to_match"] == 4


# --- end to end on tiny random checkpoints ----------------------------------------------------


@pytest.mark.slow
def test_every_experiment_runs_and_resumes(cfg):
    s2 = run_experiment("sam2-baseline", cfg)
    assert s2["instances"] > 0 and 0 <= s2["mIoU@1"] <= 1 and "NoC@0.85" in s2
    root = cfg["output"] + "/smoke/sam2-baseline"
    res = read_results(root)
    prov = res["provenance"]
    assert (
        prov["checkpoints"]["sam2"]["sha256"]
        and prov["versions"]["torch"]
        and prov["device"] == "cpu"
    )
    assert res["config"]["experiment"] == "sam2-baseline"
    # resume: a rerun finds every image recorded and returns the same summary without recomputing
    assert run_experiment("sam2-baseline", cfg) == json.loads(json.dumps(s2))
    s3 = run_experiment("sam3-concept", cfg)
    assert s3["pairs"] == 2 * 10 and set(s3["text"]) >= {"segm", "bbox", "recall"}
    assert "exemplar" in s3
    cmp = run_experiment("compare", cfg)
    assert cmp["phrase"] == "apple" and cmp["effort"]["images"] >= 1
    hyb = run_experiment("hybrid", cfg)
    assert set(hyb) >= {"text", "hybrid"}
    tr = run_experiment("sam3-tracker", cfg)
    assert tr["instances"] == s2["instances"]


@pytest.mark.slow
def test_interrupted_run_continues(cfg, monkeypatch):
    import samgap_lib.evaluation.prompted as runs  # where each image's clicks run

    calls = {"n": 0}
    orig = runs.click_all_instances

    def dies_on_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return orig(*a, **k)

    monkeypatch.setattr(runs, "click_all_instances", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_experiment("sam2-baseline", cfg)
    assert len(read_records(cfg["output"] + "/smoke/sam2-baseline")) == 1
    monkeypatch.setattr(runs, "click_all_instances", orig)
    summary = run_experiment("sam2-baseline", cfg)
    assert summary["images"] == 2


def test_cli_run_reports_bad_config(capsys):
    from samgap_lib.cli import main

    assert main(["run", "sam2-baseline", "--set", "nope=1"]) == 2
    assert "unknown key 'nope'" in capsys.readouterr().err


def test_new_weights_at_the_same_source_never_reuse_old_records(cfg, tmp_path):
    """The checkpoints' fingerprint is part of a run's identity: the same source with other
    weights (orchard-tiny retrained after a code change, an overwritten folder) is another run."""
    import shutil

    from samgap_lib.experiments.config import resolve_checkpoint

    folder = tmp_path / "my-sam2"
    shutil.copytree(resolve_checkpoint("tiny-random", "sam2"), folder)
    cfg = {
        **cfg,
        "models": {**cfg["models"], "sam2": {**cfg["models"]["sam2"], "source": str(folder)}},
    }
    first = run_experiment("sam2-baseline", cfg)
    root = Path(cfg["output"]) / "smoke" / "sam2-baseline"
    old = read_results(root)["config"]["checkpoints"]["sam2"]["sha256"]
    weights = folder / "config.json"  # part of the fingerprint; a trailing space stays valid JSON
    weights.write_bytes(weights.read_bytes() + b" ")  # other bytes, same path
    with pytest.raises(ConfigMismatchError, match="checkpoints"):
        run_experiment("sam2-baseline", cfg)
    weights.write_bytes(weights.read_bytes()[:-1])
    assert run_experiment("sam2-baseline", cfg) == json.loads(json.dumps(first))  # same again
    weights.write_bytes(weights.read_bytes() + b" ")
    run_experiment("sam2-baseline", cfg, restart="if-changed")
    assert read_results(root)["config"]["checkpoints"]["sam2"]["sha256"] != old


def test_cli_refuses_an_uncached_hub_checkpoint_in_one_line(tmp_path, monkeypatch, capsys):
    """`samgap run compare --profile paper` with no cached checkpoint and no network: one line
    naming what to do and exit status 2, after the data were read (not a traceback)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    from samgap_lib.cli import main
    from samgap_lib.data import synthetic_orchard, write_minneapple
    from samgap_lib.models import loading

    root = tmp_path / "minneapple"
    write_minneapple(synthetic_orchard(4, seed=1, size=(64, 64)), root, "train")

    def fail(*args, **kwargs):
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache.")

    monkeypatch.setattr(loading, "snapshot_download", fail)
    monkeypatch.setattr(loading, "hf_hub_download", fail)
    monkeypatch.delenv("SAMGAP_TRACEBACK", raising=False)
    args = ["run", "compare", "--profile", "paper", "--set", f"data.data_root={root}"]
    args += ["--set", "data.n_images=2", "--set", f"output={tmp_path / 'results'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("samgap run: cannot download facebook/")
    assert "hf download" in err


def test_results_root_is_where_a_user_expects(tmp_path, monkeypatch):
    """A chapter's ``results_root = None``: the checkout's results/ when it runs inside one
    (from chapters/ or book/), ./results elsewhere (Colab's /content), $SAMGAP_RESULTS first."""
    from samgap_lib.experiments import (
        chapter_config,
        checkout_root,
        resolve_results_root,
        results_root_note,
    )

    repo = Path(__file__).resolve().parent.parent
    monkeypatch.delenv("SAMGAP_RESULTS", raising=False)
    monkeypatch.chdir(repo / "chapters")
    assert checkout_root() == repo
    assert resolve_results_root() == repo / "results"
    assert results_root_note() == "Runs are recorded in the checkout's `results/`."
    alone = tmp_path / "content"
    alone.mkdir()
    monkeypatch.chdir(alone)
    assert checkout_root() is None
    assert resolve_results_root() == alone / "results"
    assert resolve_results_root("mine") == alone / "mine"  # as given, from the working folder
    assert results_root_note() == f"Runs are recorded in `{alone / 'results'}/`."
    monkeypatch.setenv("SAMGAP_RESULTS", str(tmp_path / "env"))
    assert resolve_results_root() == tmp_path / "env"
    cfg = chapter_config("smoke", 0, None, "cpu", 2, None)
    assert cfg["output"] == str(tmp_path / "env")


def test_moved_results_are_reused(cfg, tmp_path):
    """Where results live is not part of a run's identity: a moved results folder (another
    clone, another machine) is reused by ``restart="if-changed"`` as it is."""
    import shutil

    first = run_experiment("sam2-baseline", cfg)
    moved = tmp_path / "elsewhere"
    shutil.copytree(cfg["output"], moved)
    cfg2 = {**cfg, "output": str(moved)}
    before = read_records(moved / "smoke" / "sam2-baseline")
    assert run_experiment("sam2-baseline", cfg2, restart="if-changed") == json.loads(
        json.dumps(first)
    )
    assert read_records(moved / "smoke" / "sam2-baseline") == before
