"""One configuration system for experiments and training: YAML defaults, overrides, strict checks.

A configuration is a nested dict. Its *schema* is the packaged default configuration (a YAML file
under ``samgap_lib/configs/``): every key a user may set is there, and its default value says its
type. `check` refuses, before anything is computed, a key the schema lacks (naming the closest
one), a value of the wrong type, a value outside its choices and a non-positive value where one
must be positive. Keys whose default is null say in `Schema.nullable` what they may hold
otherwise; keys that take more than one type say so in `Schema.union`.

`merge` joins nested dicts (the later wins), `parse_overrides` turns ``["a.b=1"]`` into
``{"a": {"b": 1}}`` (values read as YAML) and `read_yaml` reads a mapping from a file, each
raising `ConfigError` with a message that names the key or file and what to do.
"""

from __future__ import annotations

import argparse
import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "Schema",
    "check",
    "get",
    "merge",
    "packaged_yaml",
    "parse_hw",
    "parse_overrides",
    "read_yaml",
]


class ConfigError(ValueError):
    """A configuration that cannot run: the message names the key or file and what to do."""


@dataclass(frozen=True)
class Schema:
    """What a configuration may hold.

    Attributes
    ----------
    defaults
        The default configuration: its keys are the allowed keys, its values their types.
    nullable
        Dotted key -> the types a key whose default is null may hold otherwise (absent: any).
    choices
        Dotted key -> the values it may take.
    union
        Dotted key -> the types a key may hold, whatever its default.
    positive
        Dotted keys whose value must be > 0.
    """

    defaults: Mapping[str, Any]
    nullable: Mapping[str, tuple[type, ...]] = field(default_factory=dict)
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    union: Mapping[str, tuple[type, ...]] = field(default_factory=dict)
    positive: tuple[str, ...] = ()


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: ``override`` wins; nested dicts merge key by key."""
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def get(cfg: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key (``get(cfg, "train.steps")``)."""
    cur: Any = cfg
    for part in dotted.split("."):
        cur = cur[part]
    return cur


def _has(d: Mapping[str, Any], dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(d, Mapping) or part not in d:
            return False
        d = d[part]
    return True


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["clicks.max_clicks=5", "seed=1"]`` -> ``{"clicks": {"max_clicks": 5}, "seed": 1}``;
    each value is read as YAML (``5`` an int, ``null`` None, ``[1, 2]`` a list)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value.")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({e}).") from e
        nested: dict[str, Any] = {}
        cur = nested
        parts = key.split(".")
        for k in parts[:-1]:
            cur = cur.setdefault(k, {})
        cur[parts[-1]] = value
        out = merge(out, nested)
    return out


def read_yaml(path: str | Path, hint: str = "") -> dict[str, Any]:
    """The mapping in a YAML file (empty file: ``{}``). ``hint`` is added to the message when
    the file does not exist (how to make one)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such configuration file{f' ({hint})' if hint else ''}.")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e}).") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"{p}: the top level must be a mapping, got {type(data).__name__}.")
    return dict(data)


def packaged_yaml(name: str) -> dict[str, Any]:
    """A YAML file packaged in ``samgap_lib/configs/`` (``packaged_yaml("train_sam2.yml")``)."""
    return yaml.safe_load((resources.files("samgap_lib") / "configs" / name).read_text())


def _type_ok(value: Any, default: Any, key: str, schema: Schema) -> bool:
    if key in schema.union:
        return isinstance(value, schema.union[key]) and not (
            isinstance(value, bool) and bool not in schema.union[key]
        )
    if default is None:
        return value is None or isinstance(value, schema.nullable.get(key, (object,)))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        if not isinstance(value, list):
            return False
        kinds = {type(x) for x in default}
        if not kinds:
            return True
        if kinds <= {int, float}:
            return all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        return all(isinstance(x, tuple(kinds)) for x in value)
    return isinstance(value, type(default))


def _type_name(default: Any, key: str, schema: Schema) -> str:
    if key in schema.union:
        return " or ".join(t.__name__ for t in schema.union[key])
    if default is None:
        return " or ".join(t.__name__ for t in schema.nullable.get(key, (object,))) + " or null"
    if isinstance(default, list):
        kinds = sorted({type(x).__name__ for x in default})
        return f"list of {'/'.join(kinds)}" if kinds else "list"
    return "number" if isinstance(default, float) else type(default).__name__


def _check(value: Any, default: Any, key: str, where: str, schema: Schema) -> None:
    if isinstance(default, Mapping) and key not in schema.union:
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where}: '{key}' must be a mapping with keys {sorted(default)}, got {value!r}."
            )
        for k, v in value.items():
            sub = f"{key}.{k}" if key else str(k)
            if k not in default:
                close = difflib.get_close_matches(str(k), [str(s) for s in default], n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(
                    f"{where}: unknown key '{sub}'.{hint} Allowed here: {sorted(default)}."
                )
            _check(v, default[k], sub, where, schema)
        return
    if not _type_ok(value, default, key, schema):
        raise ConfigError(
            f"{where}: '{key}' must be {_type_name(default, key, schema)}, got {value!r} "
            f"({type(value).__name__})."
        )


def check(cfg: Mapping[str, Any], schema: Schema, where: str = "config") -> dict[str, Any]:
    """Check ``cfg`` against ``schema`` (keys, types, choices, positive values); return it as a
    dict. Raises `ConfigError` naming the first bad key, prefixed by ``where`` (a file name)."""
    _check(cfg, schema.defaults, "", where, schema)
    for key, choices in schema.choices.items():
        if _has(cfg, key) and get(cfg, key) not in choices:
            raise ConfigError(
                f"{where}: '{key}' must be one of {list(choices)}, got {get(cfg, key)!r}."
            )
    for key in schema.positive:
        v = get(cfg, key) if _has(cfg, key) else None
        if v is None or v <= 0:
            raise ConfigError(f"{where}: '{key}' must be > 0, got {v!r}.")
    return dict(cfg)


def parse_hw(text: str) -> tuple[int, int]:
    """``"HxW"`` as ``(H, W)`` positive pixels, for argparse (`samgap data synthetic --size`,
    the benchmarks' image sizes)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected HxW in pixels, e.g. 256x256")
    return int(parts[0]), int(parts[1])
