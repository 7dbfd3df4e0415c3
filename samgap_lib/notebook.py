"""Notebook set-up shared by the chapters: quiet library noise, keep real warnings.

Call `setup_notebook()` at the top of a chapter, before importing models: it silences the
import-time warnings of Meta's sam2/sam3 packages on machines without CUDA and the weight-loading
progress bars of transformers, which would otherwise fill the book's pages. Warnings raised by
samgap itself and by the computations a chapter runs are left alone.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["setup_notebook", "NOISY_WARNINGS"]

# (category, message regex) of warnings that say nothing about the chapter's results.
NOISY_WARNINGS = (
    (FutureWarning, r".*torch\.jit\.script.* is deprecated"),
    (UserWarning, r"CUDA is not available or torch_xla is imported\. Disabling autocast\."),
    (DeprecationWarning, r"__array__ implementation doesn't accept a copy keyword"),
)


def setup_notebook(progress_bars: bool | None = None) -> None:
    """Silence known-noisy warnings; disable transformers' and hub progress bars.

    ``progress_bars``: None keeps samgap's own tqdm bars unless ``TQDM_DISABLE`` is set (the
    book build sets it); False also disables them for this process.
    """
    for category, message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    if progress_bars is False:
        os.environ["TQDM_DISABLE"] = "1"
