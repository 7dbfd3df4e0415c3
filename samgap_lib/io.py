"""Atomic file writing: a reader never sees a half-written result, checkpoint or figure."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "cache_root",
    "dumps",
    "file_lock",
    "loads",
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


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created) for the block: one process at a
    time builds what the lock guards, and the others wait, then find it built."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


NULLS_KEY = "nulls"
NULLS_NOTE = (
    "null where a number is undefined, not zero: NaN is a ratio with nothing to count (the recall "
    "of a phrase that names no instance in these images, the precision of a phrase with no "
    "detection kept) or a mean over no items; the path of each and what it was are listed here"
)


def dumps(obj: Any, indent: int | None = None) -> str:
    """``obj`` as strict JSON text: a browser's ``JSON.parse`` reads it.

    numpy values become Python ones; a NaN or infinite float becomes ``null``, and when ``obj``
    is a dict its key ``"nulls"`` then says why and lists each such value's path and what it
    was, so that `loads` puts the values back.
    """
    nulls: list[dict[str, Any]] = []
    clean = _strict(obj, [], nulls)
    if nulls and isinstance(clean, dict):
        if NULLS_KEY in clean:
            raise ValueError(f"the key {NULLS_KEY!r} is reserved for the list of nulls.")
        clean[NULLS_KEY] = {"note": NULLS_NOTE, "values": nulls}
    return json.dumps(clean, indent=indent, allow_nan=False)


def loads(text: str) -> Any:
    """Parse JSON written by `dumps`, with its NaN and infinite values back in place."""
    obj = json.loads(text)
    if isinstance(obj, dict) and isinstance(obj.get(NULLS_KEY), dict):
        for entry in obj.pop(NULLS_KEY).get("values", []):
            *parents, last = entry["path"]
            node = obj
            for key in parents:
                node = node[key if isinstance(node, dict) else int(key)]
            node[last if isinstance(node, dict) else int(last)] = float(entry["was"])
    return obj


def write_json(obj: Any, path: str | os.PathLike, indent: int | None = None) -> Path:
    """Write ``obj`` as strict JSON (`dumps`) atomically (`atomic_write`)."""
    data = dumps(obj, indent=indent).encode()
    return atomic_write(path, lambda f: f.write(data))


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON written by `write_json` (`loads`), naming the file in the error when it is
    missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    try:
        return loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not valid JSON ({e}). The file may be truncated; regenerate it."
        ) from e


def _strict(obj: Any, path: list[str], nulls: list[dict[str, Any]]) -> Any:
    """``obj`` with numpy values as Python ones and non-finite floats as None (listed)."""
    if isinstance(obj, dict):
        return {k: _strict(v, [*path, str(k)], nulls) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict(v, [*path, str(i)], nulls) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        nulls.append({"path": path, "was": "nan" if math.isnan(obj) else f"{obj:f}"})
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return _strict(_json_default(obj), path, nulls)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | np.bool_):
        return obj.item()
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
