"""Provenance records the device a result was computed on, not the setting that chose it."""

import torch

from samgap_lib import provenance
from samgap_lib.provenance import device_name, environment, profile_banner, resolved_device


def test_auto_resolves_to_the_device_torch_picks(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolved_device("auto") == "cpu"
    assert environment("auto")["device"] == "cpu"
    assert device_name("auto").startswith("CPU ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA Test GPU")
    assert resolved_device("auto") == "cuda"
    env = environment("auto")
    assert env["device"] == "cuda"
    assert env["device_name"] == "NVIDIA Test GPU (cuda)"
    assert "NVIDIA Test GPU" in profile_banner("paper", "auto")


def test_explicit_devices_are_kept(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolved_device("cpu") == "cpu"
    assert resolved_device("cuda:1") == "cuda:1"
    assert provenance.environment("cpu")["device_name"].startswith("CPU ")


def test_git_dirty_sees_uncommitted_changes(tmp_path):
    import subprocess

    from samgap_lib.provenance import git_dirty

    assert git_dirty(tmp_path) is None  # not a checkout
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x")
    (tmp_path / "f.txt").write_text("1")
    assert git_dirty(tmp_path) is False  # untracked files do not count
    run("add", "f.txt")
    assert git_dirty(tmp_path) is True


def test_cpu_names_the_kernels_a_run_is_repeatable_on():
    """Another kind of CPU can round float sums in another order, so a CPU result names the
    vector instructions torch's kernels ran with beside the CPU model."""
    name = device_name("cpu")
    assert f"({torch.backends.cpu.get_cpu_capability()} kernels)" in name
    assert name.startswith("CPU ") and name.endswith(" cores")
