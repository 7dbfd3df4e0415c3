"""Loading: hub failures simulated with huggingface_hub's own exceptions, local paths, devices."""

from __future__ import annotations

import json

import httpx
import pytest
import torch
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)

from samgap_lib import devices
from samgap_lib.models import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    GatedCheckpointError,
    OfflineCheckpointError,
    load_sam2,
    load_sam3,
    loading,
    resolve_device,
)
from samgap_lib.models.testing import write_tiny_checkpoints


def _response(status: int, url: str = "https://huggingface.co/facebook/sam3") -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", url))


HUB_FAILURES = {
    "gated": (
        lambda: GatedRepoError(
            "Access to model facebook/sam3 is restricted.", response=_response(403)
        ),
        GatedCheckpointError,
        ["request access at https://huggingface.co/facebook/sam3", "hf auth login"],
    ),
    "offline": (
        lambda: OfflineModeIsEnabled(
            "Cannot reach https://huggingface.co: offline mode is enabled."
        ),
        OfflineCheckpointError,
        ["offline", "not in the local cache", "local folder"],
    ),
    "not-cached": (
        lambda: LocalEntryNotFoundError("Cannot find the requested files in the disk cache."),
        OfflineCheckpointError,
        ["hf download facebook/sam3", "local folder"],
    ),
    "not-found": (
        lambda: RepositoryNotFoundError("404 Client Error.", response=_response(404)),
        CheckpointNotFoundError,
        ["not found on the Hugging Face Hub", "hf auth login"],
    ),
    "network": (
        lambda: ConnectionError("Max retries exceeded"),
        OfflineCheckpointError,
        ["no network"],
    ),
}


@pytest.fixture
def failing_hub(monkeypatch):
    def install(exc_factory):
        def fail(*args, **kwargs):
            raise exc_factory()

        monkeypatch.setattr(loading, "snapshot_download", fail)
        monkeypatch.setattr(loading, "hf_hub_download", fail)

    return install


@pytest.mark.parametrize("case", sorted(HUB_FAILURES))
@pytest.mark.parametrize(
    "load",
    [
        lambda: load_sam3("facebook/sam3", device="cpu"),
        lambda: load_sam3("facebook/sam3", role="tracker", device="cpu"),
        lambda: load_sam2("facebook/sam2.1-hiera-large", device="cpu"),
        lambda: load_sam2("facebook/sam2.1-hiera-large", backend="meta", device="cpu"),
        lambda: load_sam3("facebook/sam3", backend="meta", device="cpu"),
    ],
    ids=["sam3-concept", "sam3-tracker", "sam2-hf", "sam2-meta", "sam3-meta"],
)
def test_hub_failures_say_what_to_do(failing_hub, case, load):
    factory, err, phrases = HUB_FAILURES[case]
    failing_hub(factory)
    with pytest.raises(err) as info:
        load()
    msg = str(info.value)
    repo = "facebook/sam3" if "sam3" in msg else "facebook/sam2.1-hiera-large"
    for p in phrases:
        assert p.replace("facebook/sam3", repo).lower() in msg.lower(), msg
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, OSError)
    assert info.value.__cause__ is not None  # the hub's own exception stays attached


def test_download_passes_hf_patterns(monkeypatch, tmp_path):
    seen = {}

    def fake(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        return str(tmp_path)

    monkeypatch.setattr(loading, "snapshot_download", fake)
    assert loading.download("facebook/sam3") == tmp_path
    assert seen["repo_id"] == "facebook/sam3" and "*.safetensors" in seen["allow_patterns"]


def test_missing_local_path_says_set_the_path(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="Set the path"):
        load_sam2(tmp_path / "nope" / "model", device="cpu")
    with pytest.raises(CheckpointNotFoundError, match="no config.json"):
        load_sam2(tmp_path, device="cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-load")
    return write_tiny_checkpoints(
        root, seed=0, include=("hf-sam2", "hf-sam3", "meta-sam2", "meta-sam3")
    )


def test_mismatched_model_type(tiny):
    with pytest.raises(CheckpointMismatchError, match="'sam2' checkpoint but load_sam3"):
        load_sam3(tiny["hf-sam2"], device="cpu")
    with pytest.raises(CheckpointMismatchError, match="needs one of"):
        load_sam2(tiny["hf-sam3"], device="cpu")
    with pytest.raises(CheckpointMismatchError, match="single checkpoint file"):
        load_sam2(tiny["meta-sam2"], device="cpu")  # a Meta .pt to the transformers backend


def test_missing_and_mismatched_weights(tiny, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(tiny["hf-sam2"], bad)
    weights = next(bad.glob("*.safetensors"))
    sd = load_file(weights)
    dropped = {k: v for k, v in sd.items() if "mask_decoder.iou_token" not in k}
    save_file(dropped, weights, metadata={"format": "pt"})
    with pytest.raises(CheckpointMismatchError, match="missing from the checkpoint.*strict=False"):
        load_sam2(bad, device="cpu")
    assert load_sam2(bad, device="cpu", strict=False) is not None  # explicit opt-out
    weights.unlink()
    with pytest.raises(CheckpointNotFoundError, match="no weights"):
        load_sam2(bad, device="cpu")
    # config says one size, weights are another
    cfg = json.loads((tiny["hf-sam2"] / "config.json").read_text())
    cfg["mask_decoder_config"]["iou_head_hidden_dim"] = 48
    other = tmp_path / "other"
    shutil.copytree(tiny["hf-sam2"], other)
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointMismatchError):
        load_sam2(other, device="cpu")


def test_missing_processor(tiny, tmp_path):
    import shutil

    folder = tmp_path / "noproc"
    shutil.copytree(tiny["hf-sam2"], folder)
    (folder / "processor_config.json").unlink(missing_ok=True)
    (folder / "preprocessor_config.json").unlink(missing_ok=True)
    with pytest.raises(CheckpointNotFoundError, match="processor"):
        load_sam2(folder, device="cpu")


def test_meta_checkpoint_errors(tiny, tmp_path):
    pt = tmp_path / "weird.pt"
    torch.save({"model": {"foo": torch.zeros(1)}}, pt)
    with pytest.raises(CheckpointMismatchError, match="config="):
        load_sam2(pt, backend="meta", device="cpu")
    with pytest.raises(CheckpointMismatchError):
        load_sam2(pt, backend="meta", device="cpu", config="configs/sam2.1/sam2.1_hiera_t.yaml")
    with pytest.raises(CheckpointMismatchError, match="not a Meta SAM3 checkpoint"):
        load_sam3(pt, backend="meta", device="cpu")
    with pytest.raises(CheckpointNotFoundError, match="not a Meta SAM2 checkpoint"):
        load_sam2("facebook/not-a-sam2", backend="meta", device="cpu")
    with pytest.raises(CheckpointMismatchError, match="load_sam2"):  # a SAM2 .pt to load_sam3
        load_sam3(tiny["meta-sam2"], backend="meta", device="cpu")


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        load_sam2("x", backend="onnx")
    with pytest.raises(ValueError, match="role"):
        load_sam3("x", role="detector")


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"


def test_autocast_only_on_cuda():
    assert devices.autocast_dtype(torch.device("cpu")) is None
    assert devices.autocast_dtype(torch.device("cuda"), enabled=False) is None


def test_offline_message_says_what_is_the_case(failing_hub, monkeypatch):
    """Offline mode names the variable as set; without it the message says the Hub was not
    reached (not 'HF_HUB_OFFLINE=0 or no network')."""
    failing_hub(lambda: OfflineModeIsEnabled("offline mode is enabled."))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineCheckpointError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\)"):
        load_sam2("facebook/sam2.1-hiera-large", device="cpu")
    failing_hub(lambda: ConnectionError("Max retries exceeded"))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(OfflineCheckpointError) as info:
        load_sam2("facebook/sam2.1-hiera-large", device="cpu")
    assert "could not be reached" in str(info.value) and "HF_HUB_OFFLINE" not in str(info.value)


@pytest.mark.parametrize("source", ["/no/such/dir", "./no/such", "~/no/such/dir"])
def test_a_missing_local_path_is_said_not_to_exist(source):
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        load_sam3(source, device="cpu")
