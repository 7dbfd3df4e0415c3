"""Run Meta's ``sam3`` package on CPU: a scoped compatibility layer.

Meta's SAM3 (``sam3==0.1.4``) does not run without CUDA as released (REFERENCE.md lists six
reasons). Three of them are code paths that name CUDA; `sam3_cpu_compat` patches exactly those,
only while the ``with`` block runs, and restores the original attributes afterwards (also on
errors; nested use is fine):

1. ``PositionEmbeddingSine.__init__`` precomputes its cache with ``device="cuda"``: the patched
   ``__init__`` precomputes the same sizes on CPU.
2. ``TransformerDecoder._get_coords`` is called with ``device="cuda"`` in ``__init__``: the
   patched method maps a CUDA device to CPU when CUDA is not available.
3. ``SequenceGeometryEncoder`` (exemplar boxes) calls ``Tensor.pin_memory()``, which needs a
   CUDA driver: inside the block ``torch.Tensor.pin_memory`` returns the tensor unchanged when
   CUDA is not available.

The other three are not patches but handled by the callers in `meta_sam3`:

4. Without a checkpoint ``TextTransformer.positional_embedding`` / ``text_projection`` are left
   as ``torch.empty`` (NaN outputs): `init_uninitialised_text_params` fills them.
5. ``Sam3Processor.set_image`` misreads numpy ``HWC`` sizes: images are passed as PIL.
6. ``Sam3Processor`` defaults to ``device="cuda"``: the device is always passed.

On a CUDA machine the layer changes nothing (every patch checks ``torch.cuda.is_available()``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["PATCHED_ATTRIBUTES", "init_uninitialised_text_params", "patched", "sam3_cpu_compat"]

_LOCK = threading.RLock()
_DEPTH = 0
_SAVED: list[tuple[Any, str, Any]] = []
_MISSING = object()  # the attribute was inherited (e.g. Tensor.pin_memory lives on TensorBase)

# (module path, class name, attribute) patched by `sam3_cpu_compat`
PATCHED_ATTRIBUTES = (
    ("sam3.model.position_encoding", "PositionEmbeddingSine", "__init__"),
    ("sam3.model.decoder", "TransformerDecoder", "_get_coords"),
    ("torch", "Tensor", "pin_memory"),
)


def _cpu_if_no_cuda(device: Any) -> Any:
    if device is not None and torch.device(device).type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return device


def _make_replacements() -> list[tuple[Any, str, Callable[..., Any]]]:
    from sam3.model import decoder, position_encoding

    pes = position_encoding.PositionEmbeddingSine
    pes_init = pes.__init__

    def pes_init_cpu(
        self: Any, *args: Any, precompute_resolution: int | None = None, **kwargs: Any
    ) -> None:
        if precompute_resolution is None or torch.cuda.is_available():
            pes_init(self, *args, precompute_resolution=precompute_resolution, **kwargs)
            return
        pes_init(self, *args, precompute_resolution=None, **kwargs)
        for div in (4, 8, 16, 32):  # the sizes Meta precomputes, on CPU
            size = (precompute_resolution // div, precompute_resolution // div)
            self.forward(torch.zeros((1, 1) + size))
            self.cache[size] = self.cache[size].clone().detach()

    raw = decoder.TransformerDecoder.__dict__["_get_coords"]
    is_static = isinstance(raw, staticmethod)
    get_coords = raw.__func__ if is_static else raw

    def get_coords_cpu(*args: Any, **kwargs: Any) -> Any:
        # (H, W, device) after self when it is a method; Meta declares it a staticmethod
        pos = 2 if is_static else 3
        if "device" in kwargs:
            kwargs["device"] = _cpu_if_no_cuda(kwargs["device"])
        elif len(args) > pos:
            args = (*args[:pos], _cpu_if_no_cuda(args[pos]), *args[pos + 1 :])
        return get_coords(*args, **kwargs)

    pin = torch.Tensor.pin_memory

    def pin_memory_cpu(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if not torch.cuda.is_available():
            return self
        return pin(self, *args, **kwargs)

    return [
        (pes, "__init__", pes_init_cpu),
        (
            decoder.TransformerDecoder,
            "_get_coords",
            staticmethod(get_coords_cpu) if is_static else get_coords_cpu,
        ),
        (torch.Tensor, "pin_memory", pin_memory_cpu),
    ]


@contextlib.contextmanager
def sam3_cpu_compat() -> Iterator[None]:
    """Patch Meta's SAM3 for CPU inside the block; restore everything on exit.

    Examples
    --------
    >>> with sam3_cpu_compat():  # doctest: +SKIP
    ...     model = build_sam3_image_model(device="cpu", load_from_HF=False)
    """
    global _DEPTH
    with _LOCK:
        if _DEPTH == 0:
            for owner, name, new in _make_replacements():
                _SAVED.append((owner, name, owner.__dict__.get(name, _MISSING)))
                setattr(owner, name, new)
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0:
                while _SAVED:
                    owner, name, old = _SAVED.pop()
                    if old is _MISSING:
                        delattr(owner, name)
                    else:
                        setattr(owner, name, old)


@contextlib.contextmanager
def patched(owner: Any, **replacements: Any) -> Iterator[None]:
    """Set attributes of ``owner`` (a module or class) inside the block, restore them after."""
    missing = object()
    old = {k: vars(owner).get(k, missing) for k in replacements}
    for k, v in replacements.items():
        setattr(owner, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is missing:
                delattr(owner, k)
            else:
                setattr(owner, k, v)


@torch.no_grad()
def init_uninitialised_text_params(model: torch.nn.Module, seed: int | None = None) -> int:
    """Fill the text encoder parameters Meta leaves as ``torch.empty`` (CLIP's init).

    Only needed for a model built without a checkpoint. Returns how many tensors were set.
    """
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    count = 0
    for module in model.modules():
        if type(module).__name__ != "TextTransformer":
            continue
        pe = getattr(module, "positional_embedding", None)
        if isinstance(pe, torch.nn.Parameter):
            pe.copy_(torch.randn(pe.shape, generator=gen) * 0.01)
            count += 1
        proj = getattr(module, "text_projection", None)
        if isinstance(proj, torch.nn.Parameter):
            proj.copy_(torch.randn(proj.shape, generator=gen) * proj.shape[0] ** -0.5)
            count += 1
    return count
