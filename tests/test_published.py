"""Published figures: each names a source the bibliography holds, and the helpers read them."""

import re
from pathlib import Path

import pytest

from samgap_lib import published

ROOT = Path(__file__).resolve().parent.parent


def test_every_source_is_in_the_bibliography():
    keys = set(re.findall(r"@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text()))
    for name, src in published.sources().items():
        assert src["bib"] in keys, f"source {name}: {src['bib']} is not in book/references.bib"
        assert src["label"] and src["version"]


def test_every_figure_names_its_source_and_place():
    figs = published.figures()
    assert len(figs) > 50
    for f in figs:
        assert f.source in published.sources() and f.where and f.unit and f.what
        assert f.value == f.value  # not NaN


def test_helpers():
    f = published.figure("sam3.saco_gold.cgf1")
    assert (f.value, f.bib, f.where) == (54.1, "carion2025sam3", "Table 1")
    assert published.value("human.saco_gold.cgf1") == 72.8
    assert published.cite("sam3.saco_gold.cgf1").endswith("{cite}`carion2025sam3`")
    rows = published.table(["sam2.1-large.params", "sam3.params"])
    assert [r["value"] for r in rows] == [224.4, 848.0]
    assert all(f.id.startswith("sam2.1") for f in published.figures("sam2.1"))
    with pytest.raises(KeyError, match="figures of that model"):
        published.figure("sam3.no_such_figure")
