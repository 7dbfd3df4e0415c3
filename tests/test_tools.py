"""The tools around the library: the page executor, the metric benchmark and the zero-shot study."""

from __future__ import annotations

import json
import math
import os
import time

import nbformat
import numpy as np
import pytest

from samgap_lib import execute
from samgap_lib.data import synthetic_orchard
from samgap_lib.models.base import ConceptPrediction
from samgap_lib.prompts import boxes_from_masks
from samgap_lib.studies.zero_shot import UNSEEN, zero_shot_table


def _page_root(tmp_path):
    """A book with one chapter notebook (declaring parameters), one code page, one prose page."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "paper"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(profile)")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    (tmp_path / "chapters").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "chapters" / "01_page.ipynb")
    (tmp_path / "book").mkdir()
    front = (
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "    format_version: 0.13\nkernelspec:\n  display_name: Python 3\n  language: python\n"
        "  name: python3\n---\n"
    )
    (tmp_path / "book" / "appendix.md").write_text(
        front + "# A\n\n```{code-cell} ipython3\nx = 6 * 7\nx\n```\n"
    )
    (tmp_path / "book" / "prose.md").write_text("# Prose only\n")
    return tmp_path


def _outputs(path):
    nb = nbformat.read(path, as_version=4)
    return [
        o.get("text") or o.get("data", {}).get("text/plain")
        for c in nb.cells
        for o in c.get("outputs", [])
    ]


def test_execute_runs_each_page_once_with_parameters_and_skips_fresh_ones(tmp_path, capsys):
    root = _page_root(tmp_path / "repo")
    pages = execute.book_pages(root)
    assert [p.name for p in pages] == ["01_page.ipynb", "appendix.md"]  # prose.md has no code

    out = tmp_path / "out"
    done = execute.execute_pages(out, root=root)  # smoke parameters injected where declared
    assert [p.name for p in done] == ["01_page.ipynb", "appendix.ipynb"]
    assert "smoke\n" in _outputs(out / "01_page.ipynb")
    assert "42" in _outputs(out / "appendix.ipynb")

    stamp = {p: p.stat().st_mtime for p in done}
    execute.execute_pages(out, root=root, if_stale=True)
    assert capsys.readouterr().err.count("up to date") == 2
    assert {p: p.stat().st_mtime for p in done} == stamp

    later = time.time() + 5  # the page edited after its run: executed again, the other kept
    os.utime(root / "book" / "appendix.md", (later, later))
    execute.execute_pages(out, root=root, if_stale=True)
    err = capsys.readouterr().err
    assert "01_page: up to date" in err and "appendix: executed" in err


def test_execute_refuses_pages_that_match_nothing(tmp_path, capsys):
    assert execute.main(["--out", str(tmp_path), "--pages", "99"]) == 2
    assert "no page of the book" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        execute.execute_pages(tmp_path, pages=["99"], root=_page_root(tmp_path / "repo"))


def test_bench_metrics_quick_agrees_with_the_references(tmp_path, monkeypatch):
    """``samgap bench metrics --quick`` asserts every fast value against its reference and
    writes one row per comparison; timings are reported, not judged (no ``--check``)."""
    from samgap_lib.benchmarks import metrics

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert metrics.main(["--quick", "--out", str(tmp_path / "bench.json")]) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert [r["what"].split(",")[0] for r in rows] == [
        "boundary_f1",
        "cgf1 (segm)",
        "20-click NoC run",
    ]
    assert all(r["fast_s"] > 0 and r["reference_s"] > 0 for r in rows)
    noc_row = rows[2]["extra"]
    assert noc_row["NoC@0.85"] == noc_row["NoC@0.85_cv2_ritm"]


class _AllApples:
    """Answers every phrase it knows (all, by default) with every apple of the image at score 1."""

    backend, threshold = "fake", 0.5

    def __init__(self, samples, known=None):
        self.truth = {id(s.image): s.masks for s in samples}
        self.known = known

    def set_image(self, image):
        pass

    def segment(self, image=None, phrases=None, exemplars=None, threshold=None):
        out = {}
        for p in phrases:
            masks = self.truth[id(image)]
            if self.known is not None and p not in self.known:
                masks = masks[:0]
            out[p] = ConceptPrediction(p, masks, boxes_from_masks(masks), np.ones(len(masks)), 1.0)
        return out


def test_zero_shot_scores_each_phrasing_against_the_apples_it_names():
    samples = synthetic_orchard(3, seed=1, size=(96, 96))
    rows = {r["unseen"]: r for r in zero_shot_table(_AllApples(samples), samples)}
    assert set(rows) == {c.text for c, _ in UNSEEN}
    ripe = sum(i.attributes.get("ripeness") == "ripe" for s in samples for i in s.instances)
    apples = sum(len(s.instances) for s in samples)
    for unseen, trained in (("red apple", "ripe apple"), ("apples", "apple")):
        r = rows[unseen]
        assert r["trained"] == trained
        assert r["apples"] == (ripe if trained == "ripe apple" else apples)
        assert r["recall"] == r["recall (trained)"] == 1.0  # every apple answered
        assert r["precision"] == pytest.approx(r["apples"] / apples)  # the others are wrong answers
        assert r["kept"] == r["kept (trained)"] == apples

    seen_only = _AllApples(samples, known={"apple", "ripe apple", "unripe apple"})
    r = {r["unseen"]: r for r in zero_shot_table(seen_only, samples)}["green apple"]
    assert r["recall"] == 0.0 and r["kept"] == 0 and math.isnan(r["precision"])
    assert r["recall (trained)"] == 1.0


def test_bench_train_writes_every_row_as_it_goes_and_fails_on_an_error(
    tmp_path, monkeypatch, capsys
):
    """``samgap bench train``: one row per (model, size, option), the JSON rewritten after each
    (a run cut short keeps what it measured), exit status 1 when a configuration failed."""
    from samgap_lib.benchmarks import train
    from samgap_lib.studies import train_bench

    seen = []

    def fake_run(kind, arch, option, device, steps, batch, threads):
        seen.append((kind, arch, option))
        if option == "frozen text":
            return {"error": "out of memory"}
        return {
            "steps_per_s": 2.0,
            "peak_mem_mb": 100.0,
            "activations_mb": 10.0,
            "trainable_params": 7,
        }

    monkeypatch.setattr(train_bench, "run_isolated", fake_run)
    out = tmp_path / "rows.json"
    args = [
        "--sam2-arch",
        "orchard-m",
        "--sam3-arch",
        "orchard-xs",
        "--options",
        "full",
        "frozen text",
    ]
    assert train.main([*args, "--out", str(out)]) == 1
    assert seen == [
        ("sam2", "orchard-m", "full"),
        ("sam3", "orchard-xs", "full"),
        ("sam3", "orchard-xs", "frozen text"),
    ]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["option"]) for r in rows] == [(k, o) for k, _, o in seen]
    assert "ERROR out of memory" in capsys.readouterr().out
    assert train.main(["--sam2-arch", "orchard-m", "--sam3-arch", "--options", "full"]) == 0
