"""Where a run's results live, written so that nothing is lost and an interrupted run resumes.

``results/<profile>/<run>/`` holds:

* ``config.json``      the run's full configuration (written first; a rerun with another
                       configuration refuses to mix results and says what to do);
* ``provenance.json``  versions, device, git commit, checkpoint sources and hashes, wall time;
* ``records.jsonl``    one JSON line per finished unit of work (an image), appended and fsynced
                       as each finishes; a rerun skips the units already recorded (a partial
                       last line left by a crash is ignored and rewritten);
* ``summary.json``     the metrics over all records, written atomically at the end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..io import dumps, loads, read_json, write_json
from ..provenance import environment

__all__ = ["ResultStore", "ConfigMismatchError", "read_records"]


def _parse_records(path: Path) -> tuple[list[dict], int]:
    """The complete records of a ``records.jsonl`` and the bytes they span: reading stops at a
    line cut by a crash (no newline, or not valid JSON)."""
    if not path.exists():
        return [], 0
    records, good_bytes = [], 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                records.append(loads(line))
            except json.JSONDecodeError:
                break
            good_bytes += len(line)
    return records, good_bytes


def read_records(root: str | os.PathLike) -> list[dict]:
    """The per-image records of a run folder (complete lines only), without opening a store."""
    return _parse_records(Path(root) / "records.jsonl")[0]


class ConfigMismatchError(RuntimeError):
    """Results on disk were produced by another configuration."""


def _canonical(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


class ResultStore:
    """Append-only, resumable result folder of one run.

    Parameters
    ----------
    root
        The run folder (e.g. ``results/smoke/sam2-baseline``).
    config
        The run's configuration (JSON-serialisable).
    restart
        ``True``: delete existing records of this run first; ``False``: resume, and refuse
        results of another configuration; ``"if-changed"``: resume when the configuration is
        the same, start afresh when it differs (what a notebook rerun with new parameters wants).
    """

    def __init__(self, root: str | os.PathLike, config: dict, restart: bool | str = False):
        if restart not in (True, False, "if-changed"):
            raise ValueError(f"restart must be True, False or 'if-changed', got {restart!r}.")
        self.root = Path(root)
        self.config = _canonical(config)
        self.root.mkdir(parents=True, exist_ok=True)
        cfg_path = self.root / "config.json"
        if restart == "if-changed":
            restart = cfg_path.exists() and read_json(cfg_path) != self.config
        if restart:
            for name in ("records.jsonl", "summary.json", "provenance.json", "config.json"):
                (self.root / name).unlink(missing_ok=True)
        if cfg_path.exists():
            old = read_json(cfg_path)
            if old != self.config:
                diff = sorted(
                    k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k)
                )
                raise ConfigMismatchError(
                    f"{self.root} holds results of another configuration (differs in {diff}). "
                    "Rerun with --restart to replace them, or choose another --name."
                )
        else:
            write_json(self.config, cfg_path, indent=2)
        self._start = time.time()
        self._done = {r["key"]: r for r in self._read_records()}

    @property
    def records_path(self) -> Path:
        return self.root / "records.jsonl"

    def _read_records(self) -> list[dict]:
        records, good_bytes = _parse_records(self.records_path)
        if self.records_path.exists() and good_bytes != self.records_path.stat().st_size:
            with open(self.records_path, "r+b") as f:
                f.truncate(good_bytes)  # drop a line cut by a crash, so appends start clean
        return records

    def done(self, key: str) -> bool:
        """Whether the unit ``key`` is already recorded."""
        return str(key) in self._done

    def add(self, key: str, record: dict) -> dict:
        """Append one finished unit (durably: flushed and fsynced)."""
        rec = {"key": str(key), **_canonical(record)}
        with open(self.records_path, "a") as f:
            f.write(dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._done[rec["key"]] = rec
        return rec

    def records(self) -> list[dict]:
        """All recorded units, in the order they were first recorded."""
        return list(self._done.values())

    def todo(self, keys: Iterable[str]) -> list[str]:
        return [str(k) for k in keys if not self.done(k)]

    def finish(self, summary: dict, provenance: dict | None = None, device: str = "cpu") -> dict:
        """Write ``summary.json`` and ``provenance.json`` atomically; returns the summary."""
        prov = {
            **environment(device),
            **(provenance or {}),
            "wall_time_s": round(time.time() - self._start, 3),
        }
        write_json(_canonical(prov), self.root / "provenance.json", indent=2)
        write_json(_canonical(summary), self.root / "summary.json", indent=2)
        return summary
