"""The project's set-up stays true: pins in step, CLI entry point, README's two commands."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

import samgap_lib
from samgap_lib.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _pins(path):
    out = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)$", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_lock_agrees_with_direct_pins():
    lock = _pins("requirements/lock.txt")
    for req in ("requirements/base.txt", "requirements/torch.txt"):
        for name, version in _pins(req).items():
            assert lock.get(name) == version, (
                f"{req} pins {name}=={version}, lock has {lock.get(name)}: run `make lock`"
            )


def test_installed_versions_match_the_lock():
    from importlib.metadata import version

    lock = _pins("requirements/lock.txt")
    for name in ("torch", "transformers", "sam3", "pycocotools", "jupyter-book", "numpy"):
        assert version(name) == lock[name], (
            f"{name} {version(name)} installed, lock says {lock[name]}"
        )


def test_environment_yml_installs_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-r requirements/torch.txt" in pip and "-r requirements/lock.txt" in pip


def test_readme_names_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make book" in text and "make test" in text
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in ci


def test_version_cli(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert samgap_lib.__version__ in capsys.readouterr().out
    out = subprocess.run(
        [Path(sys.executable).parent / "samgap", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("samgap ")


def test_cli_synthetic_writes_all_forms(tmp_path, capsys):
    from samgap_lib.data import load_minneapple
    from samgap_lib.io import read_json

    assert main(["data", "synthetic", "--out", str(tmp_path), "--n", "3", "--size", "64x80"]) == 0
    ds = load_minneapple(tmp_path)
    assert len(ds) == 3 and ds[0].image.shape == (64, 80, 3)
    assert len(read_json(tmp_path / "coco.json")["images"]) == 3
    saco = read_json(tmp_path / "saco.json")
    assert len(saco["images"]) % 3 == 0 and "text_input" in saco["images"][0]


def test_cli_minneapple_verify_reports_incomplete(tmp_path, capsys):
    assert main(["data", "minneapple", "--root", str(tmp_path), "--verify-only"]) == 2
    assert "incomplete" in capsys.readouterr().err


def test_cli_refusals_are_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "o")
    assert main(["data", "synthetic", "--out", out, "--n", "2", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samgap data: ") and "workers" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before anything was written
    monkeypatch.setenv("SAMGAP_TRACEBACK", "1")
    try:
        main(["data", "synthetic", "--out", out, "--n", "2", "--workers", "0"])
    except ValueError as e:
        assert "workers" in str(e)
    else:
        raise AssertionError("SAMGAP_TRACEBACK=1 should let the ValueError through")


def test_cli_bad_size_is_refused_by_the_parser(tmp_path, capsys):
    for bad in ("64", "64x", "0x64", "ax64"):
        try:
            main(["data", "synthetic", "--out", str(tmp_path), "--size", bad])
        except SystemExit as e:
            assert e.code == 2
        else:
            raise AssertionError(f"--size {bad} accepted")
        assert "expected HxW" in capsys.readouterr().err


def _declared() -> set[str]:
    """Distributions pyproject.toml declares: its dependencies and every extra's."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {_norm(re.match(r"[A-Za-z0-9_.\-]+", r).group(0)) for r in reqs}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _guarded(tree):
    """Import nodes inside a ``try`` that catches ImportError: optional, not required."""
    import ast

    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            names = {
                n.id
                for h in node.handlers
                for n in ast.walk(h.type or ast.Name("BaseException"))
                if isinstance(n, ast.Name)
            }
            if names & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}:
                out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def _imports(source: str) -> set[str]:
    """Top-level modules a piece of Python imports unconditionally (absolute imports only)."""
    import ast

    tree = ast.parse(source)
    optional = _guarded(tree)
    mods = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return mods


def _page_code(path: Path) -> str:
    """The code cells of a MyST page, without IPython magics and shell lines."""
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", path.read_text(), flags=re.S)
    lines = []
    for cell in cells:
        for line in cell.splitlines():
            stripped = line.lstrip()
            if stripped.startswith(("%", "!")):  # a magic: keep the block it sits in valid
                line = line[: len(line) - len(stripped)] + "pass"
            elif line.startswith(":tags:"):
                line = ""
            lines.append(line)
    return "\n".join(lines)


def test_every_import_of_the_library_and_the_pages_is_declared():
    """A user who installs ``samgap[meta,book]`` (as Colab does) has every package the library
    and the book's pages import: each is declared in pyproject.toml, not merely present."""
    from importlib.metadata import packages_distributions

    provided = packages_distributions()
    declared = _declared()
    sources = {p: p.read_text() for p in (ROOT / "samgap_lib").rglob("*.py")}
    pages = sorted((ROOT / "chapters").glob("*.md")) + sorted((ROOT / "book").glob("*.md"))
    sources |= {p: _page_code(p) for p in pages}
    stdlib = set(sys.stdlib_module_names) | {"__future__", "samgap_lib"}
    missing = {}
    for path, src in sources.items():
        for mod in sorted(_imports(src) - stdlib):
            dists = {_norm(d) for d in provided.get(mod, [])}
            if not dists & declared:
                missing.setdefault(mod, []).append(str(path.relative_to(ROOT)))
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(
        f"{m} ({', '.join(sorted(set(p))[:3])})" for m, p in sorted(missing.items())
    )
