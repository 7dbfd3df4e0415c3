"""The explorer's graphs driven from Python with onnxruntime, step by step as the browser
drives them with onnxruntime-web (the manifest's ``steps``): the parity tests and the export's
own check run the exported files through it against the PyTorch segmenters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .reference import sam2_slot, sam3_instances
from .tokenizer import encode_phrase

__all__ = ["OnnxExplorer", "session"]


def session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session of one graph with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxExplorer:
    """The exported graphs of an `ensure_explorer` folder, run as the browser runs them.

    Parameters
    ----------
    folder
        The folder (``manifest.json`` and the ``.onnx`` files).
    threads
        onnxruntime intra-op threads per session.
    """

    def __init__(self, folder: str | Path, threads: int = 1) -> None:
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        self.tokenizer = json.loads((self.folder / self.manifest["sam3"]["tokenizer"]).read_text())
        self.sessions = {
            name: session(self.folder / g["file"], threads)
            for name, g in self.manifest["graphs"].items()
        }
        self.mask_hw = tuple(self.manifest["sam2"]["mask_input_size"])

    def run(self, graph: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run one graph; outputs by name."""
        sess = self.sessions[graph]
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, inputs), strict=True))

    # ------------------------------------------------------------------ SAM2

    def sam2_embeddings(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """``sam2_encoder`` on a uint8 ``(S, S, 3)`` image: the three embeddings by name."""
        return self.run("sam2_encoder", image=np.ascontiguousarray(image, dtype=np.uint8))

    def _sam2_feed(self, emb: dict[str, np.ndarray], prev: np.ndarray | None) -> dict:
        feed = dict(emb)
        h, w = self.mask_hw
        if prev is None:
            feed["prev_low_res"] = np.zeros((1, 1, h, w), np.float32)
            feed["has_prev"] = np.zeros(1, np.float32)
        else:
            feed["prev_low_res"] = np.asarray(prev, np.float32).reshape(1, 1, h, w)
            feed["has_prev"] = np.ones(1, np.float32)
        return feed

    def sam2_click(
        self,
        emb: dict[str, np.ndarray],
        points: np.ndarray,
        labels: np.ndarray,
        prev: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """One object's clicks so far -> its answer: the first click (``prev`` None) keeps the
        best of three candidates, a later one the single mask drawn on ``prev`` (the previous
        answer's ``low_res``)."""
        feed = self._sam2_feed(emb, prev)
        feed["points"] = np.asarray(points, np.float32).reshape(1, -1, 2)
        feed["labels"] = np.asarray(labels, np.float32).reshape(1, -1)
        return self._answer(self.run("sam2_decoder", **feed), multimask=prev is None)

    def sam2_box(
        self, emb: dict[str, np.ndarray], box: np.ndarray, prev: np.ndarray | None = None
    ) -> dict[str, Any]:
        """One box (xyxy pixels) -> the single mask."""
        feed = self._sam2_feed(emb, prev)
        feed["box"] = np.asarray(box, np.float32).reshape(1, 4)
        return self._answer(self.run("sam2_box_decoder", **feed), multimask=False)

    @staticmethod
    def _answer(out: dict[str, np.ndarray], multimask: bool) -> dict[str, Any]:
        slot = sam2_slot(out["iou"][0], multimask)
        return {
            "slot": slot,
            "mask": out["mask_logits"][0, slot] > 0,
            "iou_pred": float(out["iou"][0, slot]),
            "low_res": out["low_res"][0, slot],
            "mask_logits": out["mask_logits"][0, slot],
            "outputs": out,
        }

    # ------------------------------------------------------------------ SAM3

    def sam3_features(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """``sam3_vision`` on a uint8 ``(S, S, 3)`` image."""
        return self.run("sam3_vision", image=np.ascontiguousarray(image, dtype=np.uint8))

    def sam3_text(self, phrase: str) -> dict[str, np.ndarray]:
        """Tokenize (the browser's procedure) and run ``sam3_text``: ``input_ids``,
        ``attention_mask`` and ``text_features``."""
        ids, mask = encode_phrase(phrase, self.tokenizer)
        feed = {
            "input_ids": np.array([ids], np.int32),
            "attention_mask": np.array([mask], np.int32),
        }
        return {**feed, **self.run("sam3_text", **feed)}

    def sam3_segment(
        self,
        features: dict[str, np.ndarray],
        text: dict[str, np.ndarray],
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """``sam3_detector`` and the browser's post-processing (`sam3_instances`)."""
        out = self.run(
            "sam3_detector",
            **features,
            text_features=text["text_features"],
            attention_mask=text["attention_mask"],
        )
        spec = self.manifest["sam3"]
        inst = sam3_instances(
            out["scores"][0],
            out["boxes"][0],
            out["masks"][0],
            spec["threshold"] if threshold is None else threshold,
            spec["nms_iou"],
        )
        return {**inst, "presence": float(out["presence"][0]), "outputs": out}
