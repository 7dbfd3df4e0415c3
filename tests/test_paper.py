"""`make paper` end to end on a MinneApple-format fixture with tiny checkpoints saved to folders:
only the weights and the images differ from a real paper run."""

import nbformat
import pytest

from samgap_lib.data import synthetic_orchard, write_minneapple
from samgap_lib.experiments.chapters import paper_results, paper_results_note
from samgap_lib.models.testing import write_tiny_checkpoints
from samgap_lib.paper import main, run_paper


def test_make_paper_needs_minneapple(tmp_path, capsys):
    assert main(["--data-root", str(tmp_path)]) == 2
    assert "not a MinneApple root" in capsys.readouterr().err


@pytest.mark.notebooks
def test_paper_profile_end_to_end(tmp_path):
    root = tmp_path / "minneapple"
    write_minneapple(synthetic_orchard(8, seed=5, size=(96, 128)), root)
    ckpt = tmp_path / "ckpt"
    write_tiny_checkpoints(ckpt, seed=0)
    results = tmp_path / "results"
    assert "no recorded results" in paper_results_note(results, "compare", "01_conceptual_break")
    out = run_paper(
        root,
        device="cpu",
        results_root=results,
        chapters=["01", "02", "03", "05"],
        sam2_checkpoint=str(ckpt / "hf-sam2"),
        sam3_checkpoint=str(ckpt / "hf-sam3"),
        extra={
            "n_images": 2,
            "max_clicks": 2,
            "sam3_tracker_checkpoint": str(ckpt / "hf-sam3-tracker"),
            "sam2_video_checkpoint": str(ckpt / "hf-sam2-video"),
            "sam3_video_checkpoint": str(ckpt / "hf-sam3-video"),
        },
    )
    assert [p.name for p in out] == [
        "01_conceptual_break.ipynb",
        "02_architecture.ipynb",
        "03_data.ipynb",
        "05_evaluation.ipynb",
    ]
    for p in out:
        nb = nbformat.read(p, as_version=4)
        injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        assert 'profile = "paper"' in injected.source
    rec = paper_results(results, "compare")
    assert rec is not None and rec["config"]["profile"] == "paper"
    assert rec["provenance"]["checkpoints"]["sam2"]["requested"].endswith("hf-sam2")
    assert "MinneApple" in rec["provenance"]["data"]
    assert "recorded run" in paper_results_note(results, "compare", "01_conceptual_break")
