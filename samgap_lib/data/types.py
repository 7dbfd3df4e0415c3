"""The plain types every part of samgap exchanges: `Sample`, `Instance` and `Concept`.

Images are ``(H, W, 3)`` uint8 RGB arrays, masks ``(H, W)`` bool arrays at the image's size.
Boxes are ``xyxy`` in pixels with an exclusive right/bottom edge (a one-pixel mask at column
``x`` has ``x0 = x`` and ``x1 = x + 1``), so no mask ever yields a zero-area box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Concept",
    "Instance",
    "Sample",
    "check_image",
    "check_mask",
    "mask_to_box",
    "masks_to_boxes",
]


def check_image(image: Any, what: str = "image") -> np.ndarray:
    """Return ``image`` as a C-contiguous ``(H, W, 3)`` uint8 array or raise a clear error.

    Parameters
    ----------
    image
        Array-like RGB image.
    what
        How to name the image in the error message (a file path, an image id).
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        raise ValueError(
            f"{what}: grayscale image of shape {arr.shape}; samgap expects RGB (H, W, 3). "
            "Convert it first, e.g. np.repeat(img[..., None], 3, axis=2)."
        )
    if arr.ndim != 3 or arr.shape[2] != 3:
        hint = (
            " (RGBA: drop the alpha channel with img[..., :3])"
            if arr.ndim == 3 and arr.shape[2] == 4
            else ""
        )
        raise ValueError(
            f"{what}: expected an RGB image of shape (H, W, 3), got {arr.shape}{hint}."
        )
    if arr.dtype != np.uint8:
        raise ValueError(
            f"{what}: expected dtype uint8 (0-255), got {arr.dtype}. "
            "Rescale it first, e.g. (img / img.max() * 255).astype(np.uint8) for 16-bit images."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what}: empty image of shape {arr.shape}.")
    return np.ascontiguousarray(arr)


def check_mask(mask: Any, shape: tuple[int, int] | None = None, what: str = "mask") -> np.ndarray:
    """Return ``mask`` as an ``(H, W)`` bool array or raise a clear error.

    Integer or float masks are accepted only when every value is 0 or 1; anything else
    (instance-id maps, soft masks, logits) is refused rather than silently thresholded.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D (H, W) mask, got shape {arr.shape}.")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(
            f"{what}: mask shape {arr.shape} does not match its image {tuple(shape)}; "
            "masks must be at the image's resolution."
        )
    if arr.dtype != bool:
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{what}: mask dtype {arr.dtype} is not numeric.")
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError(
                f"{what}: mask of dtype {arr.dtype} has values other than 0 and 1 "
                f"(min {arr.min()}, max {arr.max()}). Threshold it yourself (e.g. logits > 0) "
                "or split an instance-id map into one mask per id."
            )
        arr = arr.astype(bool)
    return arr


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight ``xyxy`` box of a bool mask (exclusive right/bottom); all zeros for an empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return np.zeros(4, dtype=np.float32)
    xs = np.flatnonzero(mask.any(axis=0))
    return np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], dtype=np.float32)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """``(N, 4)`` xyxy boxes of an ``(N, H, W)`` mask stack (see `mask_to_box`)."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"expected an (N, H, W) mask stack, got shape {masks.shape}.")
    return np.stack([mask_to_box(m) for m in masks]) if len(masks) else np.zeros((0, 4), np.float32)


@dataclass
class Instance:
    """One object in an image.

    Attributes
    ----------
    mask
        ``(H, W)`` bool visible mask.
    attributes
        Free-form labels, e.g. ``{"ripeness": "ripe", "health": "healthy"}``.
    category
        Category name ("apple" for every orchard instance).
    instance_id
        Identifier unique within an image; in videos the same object keeps its id across frames.
    """

    mask: np.ndarray
    attributes: dict[str, Any] = field(default_factory=dict)
    category: str = "apple"
    instance_id: int = 0

    def __post_init__(self) -> None:
        self.mask = check_mask(self.mask, what=f"instance {self.instance_id}")

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def box(self) -> np.ndarray:
        return mask_to_box(self.mask)


@dataclass
class Sample:
    """An image with its instances.

    Attributes
    ----------
    image
        ``(H, W, 3)`` uint8 RGB.
    instances
        Ground-truth instances; every mask is at the image's size.
    image_id
        Identifier unique within a dataset (int or str).
    meta
        Anything else: source file, generator parameters, split, frame index.
    """

    image: np.ndarray
    instances: list[Instance] = field(default_factory=list)
    image_id: int | str = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        what = f"image {self.image_id!r}"
        self.image = check_image(self.image, what=what)
        hw = self.image.shape[:2]
        for inst in self.instances:
            if inst.mask.shape != hw:
                raise ValueError(
                    f"{what}: instance {inst.instance_id} has a mask of shape {inst.mask.shape}, "
                    f"but the image is {hw}; masks must be at the image's resolution."
                )

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def masks(self) -> np.ndarray:
        """``(N, H, W)`` bool stack of the instance masks (``(0, H, W)`` when there are none)."""
        if not self.instances:
            return np.zeros((0, self.height, self.width), dtype=bool)
        return np.stack([inst.mask for inst in self.instances])

    @property
    def boxes(self) -> np.ndarray:
        """``(N, 4)`` xyxy boxes of the instances."""
        return masks_to_boxes(self.masks)

    def select(self, concept: Concept) -> list[Instance]:
        """The instances that ``concept`` denotes."""
        return [inst for inst in self.instances if concept.matches(inst)]


@dataclass(frozen=True)
class Concept:
    """A noun phrase and the instances it denotes.

    An instance matches when its category equals ``category`` and each ``attributes`` item
    equals the instance's attribute (a tuple value means "any of these"). A concept whose
    category occurs nowhere in the data (``"pear"``) is a negative phrase: it denotes nothing.

    Examples
    --------
    >>> Concept("ripe apple", "apple", {"ripeness": "ripe"}).text
    'ripe apple'
    """

    text: str
    category: str = "apple"
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.text or not self.text.strip():
            raise ValueError("Concept.text must be a non-empty noun phrase.")
        object.__setattr__(self, "attributes", dict(self.attributes))

    def matches(self, instance: Instance) -> bool:
        if instance.category != self.category:
            return False
        for key, want in self.attributes.items():
            have = instance.attributes.get(key)
            if isinstance(want, tuple | list | set | frozenset):
                if have not in want:
                    return False
            elif have != want:
                return False
        return True

    def __hash__(self) -> int:  # attributes is a dict: hash its items
        return hash((self.text, self.category, tuple(sorted(self.attributes.items(), key=str))))


def as_concepts(phrases: Sequence[Concept | str]) -> list[Concept]:
    """Accept concepts or bare category names ("apple") and return concepts."""
    out = []
    for p in phrases:
        if isinstance(p, Concept):
            out.append(p)
        elif isinstance(p, str):
            out.append(Concept(p, category=p))
        else:
            raise TypeError(f"expected a Concept or a phrase string, got {type(p).__name__}.")
    return out
