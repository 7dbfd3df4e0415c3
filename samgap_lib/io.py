"""Atomic file writing: a reader never sees a half-written result, checkpoint or figure."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "cache_root",
    "read_json",
    "recorded_result",
    "recorded_result_path",
    "write_json",
]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    If ``write`` raises, ``path`` is left as it was and the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(obj: Any, path: str | os.PathLike, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON atomically (see `atomic_write`)."""
    data = json.dumps(obj, indent=indent, default=_json_default).encode()
    return atomic_write(path, lambda f: f.write(data))


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, naming the file in the error when it is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not valid JSON ({e}). The file may be truncated; regenerate it."
        ) from e


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where samgap caches what it builds (trained orchard-tiny models, tiny checkpoints), as
    Hugging Face keeps its downloads: ``cache_dir``, else ``$SAMGAP_CACHE``, else
    ``$XDG_CACHE_HOME/samgap``, else ``~/.cache/samgap``. Every checkout and install shares it;
    what is in it is keyed by a hash of the code that made it."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("SAMGAP_CACHE"):
        return Path(os.environ["SAMGAP_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "samgap"


def recorded_result_path(name: str) -> Path:
    """The file of a recorded result packaged with samgap (``samgap_lib/results/<name>.json``):
    runs too long to repeat while the book builds, each with its provenance."""
    return Path(__file__).resolve().parent / "results" / f"{name}.json"


def recorded_result(name: str) -> Any:
    """A recorded result packaged with samgap (see `recorded_result_path`), e.g.
    ``recorded_result("seed_spread")``: a dict whose ``provenance`` says what produced it
    (command, machine, commit, date)."""
    path = recorded_result_path(name)
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.json"))
        raise FileNotFoundError(f"no recorded result {name!r}; the recorded results are {known}.")
    return read_json(path)
