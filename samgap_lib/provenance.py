"""Provenance: which profile, data, checkpoint, device and software produced a number.

Every page of the book shows `profile_banner`, and every result file carries `environment`.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "PROFILES",
    "environment",
    "git_commit",
    "git_dirty",
    "profile_banner",
    "check_profile",
    "device_name",
    "resolved_device",
]

PROFILES = {
    "smoke": "CPU, the synthetic orchard generated from a seed, tiny models; what CI runs and this HTML book shows",
    "paper": "GPU, MinneApple from data_root, the released checkpoints (facebook/sam2.1-hiera-large, facebook/sam3)",
}
_PACKAGES = ("samgap", "numpy", "torch", "transformers", "sam2", "sam3", "pycocotools")


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is known, else raise naming the choices."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}.")
    return profile


def _git(args: list[str], path: str | Path | None) -> str | None:
    """Output of ``git ARGS`` in the source tree holding ``path`` (default: this package), or
    None outside a git checkout."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_commit(path: str | Path | None = None) -> str | None:
    """The git commit of the source tree holding ``path`` (default: this package), or None."""
    out = _git(["rev-parse", "HEAD"], path)
    return (out or "").strip() or None


def git_dirty(path: str | Path | None = None) -> bool | None:
    """Whether tracked files of the source tree holding ``path`` differ from its commit (None
    outside a git checkout): a result computed with uncommitted changes names its commit only
    approximately."""
    out = _git(["status", "--porcelain", "--untracked-files=no"], path)
    return None if out is None else bool(out.strip())


def _versions() -> dict[str, str | None]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def resolved_device(device: str = "cpu") -> str:
    """``device`` as run: ``"auto"`` becomes cuda, mps or cpu, whichever torch would pick."""
    if str(device) != "auto":
        return str(device)
    from .devices import resolve_device

    return resolve_device("auto").type


def device_name(device: str = "cpu") -> str:
    """Human-readable device: the GPU's name for cuda, else the CPU model and core count
    (``"auto"`` is first resolved to the device it picks)."""
    device = resolved_device(device)
    if device.startswith("mps"):
        return "Apple GPU (mps)"
    if device.startswith("cuda"):
        try:
            import torch

            return f"{torch.cuda.get_device_name(0)} (cuda)"
        except Exception:  # noqa: BLE001 - report what we can
            return "cuda"
    import os

    return f"CPU {_cpu_model()}{_cpu_kernels()}, {os.cpu_count()} cores"


def _cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_kernels() -> str:
    """The vector instruction set torch's CPU kernels run with (``" (AVX512 kernels)"``).
    Another CPU can round float sums in another order (another set, or other kernels for the
    same one), so a long CPU training run is bit-for-bit repeatable only on the same kind of
    CPU with the same number of threads; this and the model name say which kind."""
    try:
        import torch

        return f" ({torch.backends.cpu.get_cpu_capability()} kernels)"
    except Exception:  # noqa: BLE001 - report what we can
        return ""


def environment(device: str = "cpu") -> dict[str, Any]:
    """Versions, platform, device and time: what a result file records beside its config."""
    return {
        "time_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": resolved_device(device),
        "device_name": device_name(device),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "versions": _versions(),
    }


def profile_banner(
    profile: str, device: str = "cpu", data: str | None = None, checkpoints: str | None = None
) -> str:
    """One Markdown paragraph saying which profile, data, checkpoints and device made a page's numbers."""
    check_profile(profile)
    parts = [f"**Outputs on this page: profile `{profile}`** ({PROFILES[profile]})."]
    if data:
        parts.append(f"Data: {data}.")
    if checkpoints:
        parts.append(f"Checkpoints: {checkpoints}.")
    parts.append(
        f"Device: {device_name(device)}; samgap {_versions()['samgap']}, commit {(git_commit() or 'unknown')[:10]}."
    )
    return " ".join(parts)
