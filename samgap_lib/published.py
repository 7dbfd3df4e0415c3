"""Published figures of the released SAM, SAM 2 and SAM 3 and their data, each with its source.

The book shows them beside the miniature's numbers, labelled *published* and cited, never mixed
into a computed table. The figures live in ``samgap_lib/published.yml`` (checked against their
sources; see the file's header): `figure` returns one with its source, `value` its number,
`cite` a MyST citation of where it comes from, and `table` rows of several for a page.

    >>> from samgap_lib import published
    >>> published.value("sam3.saco_gold.cgf1")
    54.1
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["Figure", "cite", "figure", "figures", "sources", "table", "value"]


@dataclass(frozen=True)
class Figure:
    """One published figure: its ``value`` and ``unit``, ``what`` it measures, and where it is
    published (``source`` key, the source's ``label`` and ``bib`` key, ``where`` in it)."""

    id: str
    value: float
    unit: str
    what: str
    source: str
    label: str
    bib: str
    where: str
    note: str | None = None


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    return yaml.safe_load((resources.files("samgap_lib") / "published.yml").read_text())


def sources() -> dict[str, dict[str, str]]:
    """The sources: key -> ``bib`` (book/references.bib), ``label`` and ``version``."""
    return dict(_data()["sources"])


def figure(fid: str) -> Figure:
    """The published figure ``fid`` (e.g. ``"sam3.saco_gold.cgf1"``)."""
    figs = _data()["figures"]
    if fid not in figs:
        close = sorted(k for k in figs if k.split(".")[0] == fid.split(".")[0])
        raise KeyError(f"no published figure {fid!r}; figures of that model: {close}.")
    f = figs[fid]
    src = _data()["sources"][f["source"]]
    return Figure(
        id=fid,
        value=float(f["value"]),
        unit=str(f["unit"]),
        what=str(f["what"]),
        source=f["source"],
        label=src["label"],
        bib=src["bib"],
        where=str(f["where"]),
        note=f.get("note"),
    )


def figures(prefix: str = "") -> list[Figure]:
    """Every published figure whose id starts with ``prefix``, in the file's order."""
    return [figure(k) for k in _data()["figures"] if k.startswith(prefix)]


def value(fid: str) -> float:
    """The number of figure ``fid``."""
    return figure(fid).value


def cite(fid: str) -> str:
    """Where figure ``fid`` is published, as MyST: ``SAM 3 (Carion et al., 2025), Table 1
    {cite}`carion2025sam3```."""
    f = figure(fid)
    return f"{f.label}, {f.where} {{cite}}`{f.bib}`"


def table(ids: list[str]) -> list[dict[str, Any]]:
    """Rows ``{"published figure", "value", "unit", "source"}`` for a page's table of figures."""
    rows = []
    for fid in ids:
        f = figure(fid)
        rows.append(
            {
                "published figure": f.what,
                "value": f.value,
                "unit": f.unit,
                "source": f"{f.label}, {f.where}",
            }
        )
    return rows
