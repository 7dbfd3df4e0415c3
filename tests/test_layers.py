"""The library's shape holds: recorded results are data with provenance, the orchard-tiny cache
key covers what trains and scores it, chapters import public names, and the command line runs
benchmarks and studies from the installed package."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import samgap_lib
from samgap_lib.io import recorded_result, recorded_result_path
from samgap_lib.training import orchard_tiny

ROOT = Path(__file__).resolve().parent.parent
PKG = Path(samgap_lib.__file__).resolve().parent
CORE = ("data", "prompts", "metrics", "models", "evaluation", "training", "experiments")


def _results():
    return sorted((PKG / "results").glob("*.json"))


def test_there_are_recorded_results():
    assert {p.stem for p in _results()} >= {"seed_spread", "token_only", "cuda_training"}


@pytest.mark.parametrize("path", _results(), ids=lambda p: p.stem)
def test_every_recorded_result_carries_its_provenance(path):
    """What produced it (a command), on what machine, at which commit and when."""
    data = json.loads(path.read_text())
    prov = data["provenance"]
    assert prov["what"] and prov["machine"]
    assert prov.get("command") or prov.get("commands")
    assert re.fullmatch(r"[0-9a-f]{40}", prov["recorded_at"]["commit"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prov["recorded_at"]["date"])
    assert recorded_result(path.stem) == data
    assert recorded_result_path(path.stem) == path


def test_an_unknown_recorded_result_is_refused_with_the_known_ones():
    with pytest.raises(FileNotFoundError, match="seed_spread"):
        recorded_result("no_such_study")


def test_no_recorded_result_is_a_python_literal():
    """A module-level dict literal of more than a few hundred characters holding numbers is a
    recorded result in disguise: it belongs in samgap_lib/results/ as JSON."""
    offenders = []
    for f in PKG.rglob("*.py"):
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
                text = ast.get_source_segment(f.read_text(), node.value) or ""
                floats = re.findall(r"\b\d+\.\d{3,}\b", text)
                if len(floats) > 10:
                    offenders.append(f"{f.relative_to(PKG)}:{node.lineno}")
    assert not offenders, offenders


def test_the_orchard_tiny_key_covers_the_packages_that_make_its_checkpoints():
    files = {f.relative_to(PKG).as_posix() for f in orchard_tiny._hashed_files()}
    for needed in (
        "configs/orchard_tiny.yml",
        "configs/train_sam3.yml",
        "data/synthetic.py",
        "prompts/clicker.py",
        "metrics/concept/cgf1.py",
        "models/postprocess.py",
        "models/hf/sam3.py",
        "evaluation/held_out.py",
        "training/tasks/sam3.py",
        "config.py",
    ):
        assert needed in files, needed
    assert not any(f.startswith(("studies/", "experiments/", "benchmarks/")) for f in files)


def test_the_orchard_tiny_key_changes_with_any_hashed_file(monkeypatch):
    before = orchard_tiny.orchard_tiny_hash()
    target = PKG / "models" / "postprocess.py"
    original = Path.read_bytes

    def read_bytes(self):
        data = original(self)
        return data + b"\n# changed" if self == target else data

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert orchard_tiny.orchard_tiny_hash() != before


def test_the_cache_lives_in_the_users_cache_folder(monkeypatch, tmp_path):
    from samgap_lib.io import cache_root

    monkeypatch.delenv("SAMGAP_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "samgap"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "samgap"
    monkeypatch.setenv("SAMGAP_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    assert cache_root(tmp_path / "given") == tmp_path / "given"


def _pages():
    return sorted((ROOT / "chapters").glob("*.md")) + sorted((ROOT / "book").glob("*.md"))


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_pages_import_public_names_of_the_core_packages(page):
    """A page imports from a core package (``samgap_lib.training``), not from one of its modules
    (``samgap_lib.training.init``); studies and the top-level modules are imported as modules."""
    private = re.findall(rf"from samgap_lib\.({'|'.join(CORE)})\.[\w.]+ import", page.read_text())
    assert not private, f"{page.name} imports modules of {sorted(set(private))}"


def test_the_command_line_runs_benchmarks_and_studies_outside_the_repository(tmp_path):
    """Nothing is read from the checkout: a folder with no samgap source in it runs them."""
    runs = {
        ("bench", "metrics"): "usage: samgap bench metrics",
        ("study", "seed-spread"): "--first-losses",
    }
    for (*args,), expected in runs.items():
        proc = subprocess.run(
            [sys.executable, "-m", "samgap_lib.cli", *args, "--help"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert expected in proc.stdout
