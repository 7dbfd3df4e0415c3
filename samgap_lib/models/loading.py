"""Checkpoint sources, devices and the errors that say what to do.

A *source* is a Hugging Face Hub id (``"facebook/sam2.1-hiera-large"``, ``"facebook/sam3"``),
a local folder (transformers ``save_pretrained`` output, or a samgap tiny folder) or a local
checkpoint file (Meta ``.pt``). Hub downloads go through `snapshot_download` /
`hf_hub_download` of this module (tests replace them to simulate the hub's failures), and every
failure ends in a `CheckpointError` whose message names the fix: log in, request access, go
online once, or set the path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ..devices import autocast, resolve_device

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "GatedCheckpointError",
    "OfflineCheckpointError",
    "autocast",
    "download",
    "hf_folder",
    "is_hub_id",
    "load_hf_pretrained",
    "load_hf_processor",
    "read_model_type",
    "resolve_device",
    "resolve_source",
]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# transformers weights and processor files; leaves Meta .pt files in the same repos alone
HF_ALLOW_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja")


class CheckpointError(OSError):
    """A checkpoint could not be found, downloaded or loaded; the message says what to do."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A local path or hub id that does not exist."""


class GatedCheckpointError(CheckpointError):
    """A gated hub repository (e.g. ``facebook/sam3``) without approved access or token."""


class OfflineCheckpointError(CheckpointError):
    """Offline (``HF_HUB_OFFLINE=1`` or no network) and the checkpoint is not cached."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint is of another model or does not fit the architecture."""


# ----------------------------------------------------------------------------- sources


def is_hub_id(source: str | os.PathLike) -> bool:
    """True for ``owner/name`` strings that are not an existing local path."""
    s = os.fspath(source)
    return bool(_HUB_ID.match(s)) and not Path(s).exists()


def _hub_error(repo_id: str, exc: BaseException) -> CheckpointError:
    page = f"https://huggingface.co/{repo_id}"
    local = "or pass a local folder / checkpoint file instead of the hub id"
    if isinstance(exc, GatedRepoError):
        return GatedCheckpointError(
            f"{repo_id} is a gated model and this account has no access to it. Request access at "
            f"{page} (accept the licence and wait for approval), then log in with `hf auth login` "
            f"(or set HF_TOKEN) and retry; {local}."
        )
    if isinstance(exc, RevisionNotFoundError):
        return CheckpointNotFoundError(
            f"{repo_id}: the requested revision does not exist ({exc}); check `revision=`."
        )
    if isinstance(exc, RepositoryNotFoundError):
        return CheckpointNotFoundError(
            f"{repo_id} was not found on the Hugging Face Hub (wrong id, or a private model: log in "
            f"with `hf auth login`); {local}."
        )
    if isinstance(exc, (OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError)):
        from huggingface_hub import constants

        flag = os.environ.get("HF_HUB_OFFLINE", "")
        offline = flag.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(exc, OfflineModeIsEnabled) or (
            offline and isinstance(exc, LocalEntryNotFoundError)
        ):
            why, fix = (
                f"offline mode is on (HF_HUB_OFFLINE={flag or 'unset'})",
                "unset HF_HUB_OFFLINE",
            )
        else:
            why, fix = (
                "no network: the Hugging Face Hub could not be reached",
                "connect to the internet",
            )
        return OfflineCheckpointError(
            f"cannot download {repo_id}: {why}, and it is not in the local cache "
            f"{constants.HF_HUB_CACHE}. Download it once with network access ({fix}; "
            f"`hf download {repo_id}`), {local} (e.g. load_sam2('/path/to/checkpoint'))."
        )
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return GatedCheckpointError(
                f"{repo_id}: access denied (HTTP {status}). Log in with `hf auth login` (or set "
                f"HF_TOKEN); for gated models request access at {page}; {local}."
            )
        return CheckpointError(f"downloading {repo_id} failed: {exc}; retry, {local}.")
    return CheckpointError(f"downloading {repo_id} failed: {exc!r}; {local}.")


def download(
    repo_id: str,
    filename: str | None = None,
    *,
    allow_patterns: Sequence[str] | None = HF_ALLOW_PATTERNS,
    revision: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Download (or find in the cache) a hub repository folder, or one file of it.

    Raises
    ------
    CheckpointError
        A subclass saying what to do (gated, not found, offline, other).
    """
    try:
        if filename is not None:
            return Path(hf_hub_download(repo_id, filename, revision=revision, token=token))
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                token=token,
                allow_patterns=list(allow_patterns) if allow_patterns else None,
            )
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError) as exc:
        raise _hub_error(repo_id, exc) from exc
    except OSError as exc:  # network failures surface as OSError subclasses too
        raise _hub_error(repo_id, exc) from exc


@dataclass(frozen=True)
class ResolvedSource:
    """Where a checkpoint lives on disk: a folder or a file; ``repo_id`` when from the hub."""

    path: Path
    repo_id: str | None = None

    @property
    def is_file(self) -> bool:
        return self.path.is_file()


def resolve_source(
    source: str | os.PathLike,
    *,
    filename: str | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    what: str = "checkpoint",
) -> ResolvedSource:
    """A local folder/file, or the download of a hub id (one ``filename`` or the folder).

    Raises
    ------
    CheckpointNotFoundError
        A local-looking path that does not exist.
    CheckpointError
        Hub failures (see `download`).
    """
    if source is None or (isinstance(source, str) and not source.strip()):
        raise CheckpointNotFoundError(
            f"no {what} source given: pass a hub id (e.g. 'facebook/sam2.1-hiera-large') or a path."
        )
    path = Path(os.path.expanduser(os.fspath(source)))
    if path.exists():
        return ResolvedSource(path=path)
    if is_hub_id(source):
        repo_id = os.fspath(source)
        return ResolvedSource(
            path=download(repo_id, filename, revision=revision, token=token), repo_id=repo_id
        )
    text = os.fspath(source)
    if text.startswith((os.sep, ".", "~")) or text.count("/") != 1:
        raise CheckpointNotFoundError(
            f"{what} not found: {text} does not exist. Set the path to a local folder (written by "
            "save_pretrained, or samgap_lib.models.testing.write_tiny_checkpoints) or checkpoint "
            "file, or give a hub id such as 'facebook/sam2.1-hiera-large'."
        )
    raise CheckpointNotFoundError(
        f"{what} not found: {text!r} is neither an existing file or folder nor a hub id "
        "('owner/name'). Set the path to a local folder (save_pretrained or "
        "samgap_lib.models.testing.write_tiny_checkpoints output) or checkpoint file."
    )


def read_model_type(folder: Path) -> str:
    """``model_type`` of a transformers folder's ``config.json``."""
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise CheckpointNotFoundError(
            f"{folder} has no config.json, so it is not a transformers checkpoint folder. For a Meta "
            ".pt checkpoint use backend='meta'; otherwise set the path to a folder written by "
            "save_pretrained."
        )
    try:
        return str(json.loads(cfg.read_text()).get("model_type", ""))
    except json.JSONDecodeError as exc:
        raise CheckpointMismatchError(f"{cfg} is not valid JSON: {exc}.") from exc


def load_hf_pretrained(
    model_cls: Any,
    folder: Path,
    accepted_types: Sequence[str],
    *,
    strict: bool = True,
    what: str,
) -> Any:
    """``model_cls.from_pretrained(folder)`` with the checks transformers leaves as warnings.

    transformers initialises missing weights randomly and only warns; with ``strict`` a
    checkpoint missing weights of the model is refused, so no result silently comes from a
    random layer.
    """
    model_type = read_model_type(folder)
    if model_type not in accepted_types:
        raise CheckpointMismatchError(
            f"{folder} holds a {model_type!r} checkpoint but {what} needs one of "
            f"{sorted(accepted_types)}. Check the source (SAM2 checkpoints go to load_sam2, SAM3 "
            "to load_sam3)."
        )
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise CheckpointNotFoundError(
            f"{folder} has a config.json but no weights (*.safetensors); the download may be "
            "incomplete: delete it and download again, or set the path to a complete folder."
        )
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report is replaced by the checks below
    try:
        model, info = model_cls.from_pretrained(folder, output_loading_info=True)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointMismatchError(
            f"{folder}: the weights do not fit {model_cls.__name__} ({exc}). The checkpoint is "
            "of another size or model; check the source."
        ) from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = list(info.get("missing_keys", []))
    if missing and strict:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise CheckpointMismatchError(
            f"{folder}: {len(missing)} weights of {model_cls.__name__} are missing from the "
            f"checkpoint ({shown}); they would be random. Check the source, or pass strict=False "
            "to accept random values for them."
        )
    mismatched = list(info.get("mismatched_keys", []))
    if mismatched and strict:
        raise CheckpointMismatchError(
            f"{folder}: {len(mismatched)} weights have other shapes than {model_cls.__name__} "
            f"expects ({mismatched[:3]}); check the source."
        )
    return model


def load_hf_processor(cls: Any, folder: Path) -> Any:
    """``cls.from_pretrained(folder)`` (a transformers processor class), refusing a folder
    without the processor files with what to do."""
    try:
        return cls.from_pretrained(folder)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointNotFoundError(
            f"{folder}: could not load the {cls.__name__} saved with the model ({exc}). A checkpoint "
            "folder needs its processor files (preprocessor_config.json, tokenizer files for "
            "SAM3); save them with processor.save_pretrained(folder) or download the full repo."
        ) from exc


def hf_folder(
    source: str | os.PathLike, revision: str | None = None, token: str | bool | None = None
) -> Path:
    """The transformers checkpoint folder of ``source`` (a folder, a weights file in one, or a
    hub id, downloaded)."""
    resolved = resolve_source(source, revision=revision, token=token)
    path = resolved.path
    if path.is_file():
        if (path.parent / "config.json").is_file() and path.suffix in (".safetensors", ".bin"):
            return path.parent
        raise CheckpointMismatchError(
            f"{path} is a single checkpoint file; the transformers backend loads a folder with "
            "config.json and *.safetensors. For Meta .pt checkpoints use backend='meta'."
        )
    return path
