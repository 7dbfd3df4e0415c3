"""SAM2 video fine-tuning: clips, first-frame prompts, corrections on a later frame, and the
memory path (memory attention, memory encoder, object pointers) in the loss.

As the official SAM2.1 recipe (``sam2/training/model/sam2.py`` ``SAM2Train``, config
``sam2.1_hiera_b+_MOSE_finetune.yaml``), in miniature:

- a step sees ``train.batch_images`` clips of ``video.frames`` frames (official: one clip of 8);
- up to ``data.max_objects`` objects visible on the first frame are prompted there, as in the
  image path (a click, a point or a jittered box, then correction clicks): frame 0 is the
  conditioning frame, decoded without memory;
- every later frame is decoded from its features conditioned on the memories of the frames
  before it (``Sam2VideoModel._prepare_memory_conditioned_features``), with no prompt; with
  probability ``video.p_correct_frame`` one later frame also gets 1..``prompts.max_corrections``
  RITM correction clicks on the objects visible there and becomes a conditioning frame
  (official: 2 frames to correct, added as conditioning frames, 7 clicks each);
- the loss of each frame is SAM2's: focal + dice + IoU on the objects present there (best of
  the candidates where several are decoded) plus the object-score BCE on every object
  (``loss.object_score``, official ``loss_class`` 1), averaged over frames and clips. Memories
  are not detached: the gradient of a late frame reaches the memory encoder of earlier ones.

The memory path is `samgap_lib.models.hf.sam2_memory`, shared with the inference tracker
(`MemoryTracker`), so training and evaluation decode a clip the same way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...data import clip_tracks, synthetic_orchard_clips
from ...data.profiles import SPLIT_START
from ...evaluation import track_clips, tracking_summary
from ...models.hf.sam2_memory import (
    HeadOut,
    MemoryBank,
    MemoryTracker,
    clip_features,
    encode_memory,
    frame_maps,
    head,
    memory_maps,
    object_pointer,
)
from ...prompts import Clicker
from ..data import normalise
from .sam2 import (
    ObjectPrompt,
    Sam2Task,
    correction_rounds,
    decode_objects,
    first_prompt,
    grouped_mask_loss,
)

__all__ = ["Clip", "ClipPool", "Sam2VideoLoss", "Sam2VideoTask", "load_clip_pool"]


@dataclass
class ClipPool:
    """Clips at the model's input size: ``frames`` ``(N, T, S, S, 3)`` uint8 and, per clip,
    ``tracks[i]`` ``(K, T, S, S)`` bool, one row per apple (in instance-id order)."""

    frames: np.ndarray
    tracks: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class Clip:
    """One clip of a step: its objects' frame-0 prompts, their targets ``(K, T, S, S)``, the
    later frame that gets corrections (None: none) and how many clicks each object gets there."""

    objs: list[ObjectPrompt]
    targets: np.ndarray
    correct_at: int | None
    correct_clicks: int = 0


def load_clip_pool(cfg: dict[str, Any], split: str, n: int, size: int) -> ClipPool:
    """``n`` synthetic orchard clips of ``video.frames`` frames for ``split`` at ``size`` px."""
    v = cfg["video"]
    clips = synthetic_orchard_clips(
        n,
        int(v["frames"]),
        seed=int(cfg["data"]["seed"]),
        size=(size, size),
        pan=(int(v["pan"][0]), int(v["pan"][1])),
        start=SPLIT_START[split],
    )
    arrays = [clip_tracks(clip) for clip in clips]
    return ClipPool(np.stack([f for f, _ in arrays]), [tr for _, tr in arrays])


def _rows(out: HeadOut) -> tuple[torch.Tensor, ...]:
    return (out.logits, out.ious, out.tokens, out.obj)


def _stack(res: dict[int, tuple[torch.Tensor, ...]], n: int) -> HeadOut:
    """Per-object decodings with possibly different candidate counts as one `HeadOut` of each
    object's chosen candidate (C = 1)."""
    logits, ious, tokens, obj = [], [], [], []
    for i in range(n):
        lg, io, tk, ob = res[i]
        b = int(io.argmax())
        logits.append(lg[b : b + 1])
        ious.append(io[b : b + 1])
        tokens.append(tk[b : b + 1])
        obj.append(ob)
    return HeadOut(torch.stack(logits), torch.stack(ious), torch.stack(tokens), torch.stack(obj))


class Sam2VideoLoss(torch.nn.Module):
    """One micro-batch of clips as a module (so DistributedDataParallel can wrap it)."""

    def __init__(self, model: Any, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg

    def _decode(self, maps: list[torch.Tensor], mm: bool, **kw: Any) -> tuple[torch.Tensor, ...]:
        return _rows(head(self.model, maps, mm, **kw))

    def _frame_loss(
        self,
        rows: list[tuple[torch.Tensor, torch.Tensor]],
        obj: torch.Tensor,
        targets: np.ndarray,
        size: int,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        present = targets.reshape(len(targets), -1).any(1)
        w = float(self.cfg["loss"]["object_score"])
        p = torch.from_numpy(present.astype(np.float32)).to(obj.device)
        bce = F.binary_cross_entropy_with_logits(obj[:, 0].float(), p)
        total, terms = w * bce, {"object_score": float(bce.detach())}
        idx = np.flatnonzero(present)
        if len(idx):
            mask_loss, mask_terms = grouped_mask_loss(
                [rows[i] for i in idx], [targets[i] for i in idx], self.cfg, size
            )
            total = total + mask_loss
            terms.update(mask_terms)
        terms["loss"] = float(total.detach())
        return total, terms

    def forward(
        self, pixel: torch.Tensor, clips: list[Clip]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        model, cfg = self.model, self.cfg
        size = pixel.shape[-1]
        feats, pos = clip_features(model, pixel)
        n_frames = pixel.shape[0] // max(len(clips), 1)
        total = feats[-1].sum() * 0.0
        sums: dict[str, float] = defaultdict(float)
        n_terms = 0
        for c, clip in enumerate(clips):
            if not clip.objs:
                continue
            f_c = [f[:, c * n_frames : (c + 1) * n_frames] for f in feats]
            p_c = [f[:, c * n_frames : (c + 1) * n_frames] for f in pos]
            n = len(clip.objs)
            bank = MemoryBank(n_frames)
            for t in range(n_frames):
                tgt = clip.targets[:, t]
                if t == 0:
                    maps = frame_maps(model, f_c, 0, n)
                    prev = correction_rounds(model, maps, clip.objs, cfg, size, self._decode)
                    res = decode_objects(
                        model, maps, clip.objs, list(range(n)), prev, cfg, self._decode
                    )
                    rows = [res[i][:2] for i in range(n)]
                    out = _stack(res, n)
                else:
                    maps = memory_maps(model, bank, f_c, p_c, t, n)
                    out = head(model, maps, True)
                    rows = [(out.logits[i], out.ious[i]) for i in range(n)]
                    if t == clip.correct_at:
                        rows, out = self._correct(maps, out, rows, tgt, size, clip.correct_clicks)
                loss, terms = self._frame_loss(rows, out.obj, tgt, size)
                total = total + loss
                for k, v in terms.items():
                    sums[k] += v
                n_terms += 1
                low, token = out.chosen()
                cond = t == 0 or t == clip.correct_at
                bank.store(
                    t,
                    cond,
                    encode_memory(model, f_c, t, low, out.obj, binarize=False),
                    object_pointer(model, token, out.obj),
                )
        if not n_terms:
            return total, {"loss": 0.0}
        return total / n_terms, {k: v / n_terms for k, v in sums.items()}

    def _correct(
        self,
        maps: list[torch.Tensor],
        tracked: HeadOut,
        rows: list[tuple[torch.Tensor, torch.Tensor]],
        targets: np.ndarray,
        size: int,
        clicks: int,
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], HeadOut]:
        """Correction clicks on the objects visible on this frame, starting from the tracked
        prediction (its logits are the first mask prompt); the others keep the tracked one."""
        cfg = self.cfg
        present = np.flatnonzero(targets.reshape(len(targets), -1).any(1))
        if not len(present):
            return rows, tracked
        objs, prev = [], []
        with torch.no_grad():
            best_low, _ = tracked.chosen()
        for j, i in enumerate(present):
            o = ObjectPrompt(image=j, target=targets[i], clicker=Clicker(targets[i]))
            o.corrections = clicks
            o.draw = bool(cfg["prompts"]["dense"])
            objs.append(o)
            prev.append(best_low[i].detach().float().clamp(-32, 32).cpu().numpy())
        sub = [m.index_select(0, torch.as_tensor(present, device=m.device)) for m in maps]
        prev_c = self._click_rounds(sub, objs, prev, size)
        res = decode_objects(
            self.model, sub, objs, list(range(len(objs))), prev_c, cfg, self._decode
        )
        rows = list(rows)
        chosen = _stack(res, len(objs))
        logits, ious = tracked.logits.clone(), tracked.ious.clone()
        tokens, obj = tracked.tokens.clone(), tracked.obj.clone()
        # the corrected objects' chosen candidate replaces every tracked candidate
        pi = torch.as_tensor(present, device=logits.device)
        c = logits.shape[1]
        logits[pi] = chosen.logits.expand(-1, c, -1, -1)
        ious[pi] = chosen.ious.expand(-1, c)
        tokens[pi] = chosen.tokens.expand(-1, c, -1)
        obj[pi] = chosen.obj
        for j, i in enumerate(present):
            rows[i] = res[j][:2]
        return rows, HeadOut(logits, ious, tokens, obj)

    def _click_rounds(
        self, maps: list[torch.Tensor], objs: list[ObjectPrompt], prev: list[np.ndarray], size: int
    ) -> list[np.ndarray | None]:
        """The first correction click of each object goes on the error of the tracked mask;
        the rest as in the image path (`correction_rounds`)."""
        for o, p in zip(objs, prev, strict=True):
            up = F.interpolate(
                torch.from_numpy(p)[None, None],
                size=(size, size),
                mode="bilinear",
                align_corners=False,
            )
            c = o.clicker.next_click((up[0, 0] > 0).numpy())
            o.points.append((c.x, c.y))
            o.labels.append(c.label)
            o.corrections -= 1
        more = correction_rounds(self.model, maps, objs, self.cfg, size, self._decode)
        return [m if m is not None else p for m, p in zip(more, prev, strict=True)]


class Sam2VideoTask(Sam2Task):
    """SAM2 with its memory path: clips for the loss, tracking J&F for validation."""

    metric = "J&F"

    def load_pool(self, split: str, n: int, size: int) -> ClipPool:
        """The task's own data: ``n`` clips of ``split`` (the trainer asks for them)."""
        return load_clip_pool(self.cfg, split, n, size)

    def loss_module(self, model: Any) -> torch.nn.Module:
        return Sam2VideoLoss(model, self.cfg)

    def filter_pool(self, pool: Any) -> ClipPool:
        """Only clips with an apple on their first frame: the prompts go there."""
        keep = [i for i, tr in enumerate(pool.tracks) if len(tr) and tr[:, 0].any()]
        return ClipPool(pool.frames[keep], [pool.tracks[i] for i in keep])

    def batch(
        self, pool: Any, idx: np.ndarray, rng: np.random.Generator, device: torch.device
    ) -> tuple:
        cfg = self.cfg
        t_frames = pool.frames.shape[1]
        pixel = normalise(pool.frames[idx].reshape(-1, *pool.frames.shape[2:]), self.mean, self.std)
        clips = []
        min_area = int(cfg["video"]["min_area"])
        for i in idx:
            tr = pool.tracks[i]
            visible = np.flatnonzero(tr[:, 0].reshape(len(tr), -1).sum(1) >= min_area)
            k = min(len(visible), int(cfg["data"]["max_objects"]))
            chosen = np.sort(rng.choice(visible, size=k, replace=False)) if k else visible[:0]
            objs = [first_prompt(tr[j, 0], r, cfg, rng) for r, j in enumerate(chosen)]
            correct_at, clicks = None, 0
            if t_frames > 1 and rng.random() < cfg["video"]["p_correct_frame"]:
                correct_at = int(rng.integers(1, t_frames))
                clicks = int(rng.integers(1, int(cfg["prompts"]["max_corrections"]) + 1))
            clips.append(Clip(objs, tr[chosen], correct_at, clicks))
        return torch.from_numpy(pixel).to(device), clips

    def evaluate(self, model: Any, samples: Any, device: torch.device) -> dict[str, float]:
        return self.validate(model, samples, device)[0]

    def validate(
        self, model: Any, samples: Any, device: torch.device
    ) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Tracking on validation clips (a first click per apple on frame 0): J&F and its
        parts, decay and identity switches; per clip, the summed J&F over object-frames."""
        tracker = MemoryTracker(model, self.processor, device=device)
        clips = [
            (pool_frames, tracks)
            for pool_frames, tracks in zip(samples.frames, samples.tracks, strict=True)
        ]
        records = track_clips(tracker, clips, min_area=int(self.cfg["video"]["min_area"]))
        model.train()
        summary = tracking_summary(records)
        per = {
            "J&F": (
                np.array([r["jf_sum"] for r in records], float),
                np.array([r["object_frames"] for r in records], float),
            )
        }
        return summary, per
