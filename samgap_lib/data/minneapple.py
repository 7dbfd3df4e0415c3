"""MinneApple (Häni, Roy, Isler 2020): a lazy reader for the detection/segmentation layout.

Layout (as distributed by the University of Minnesota, handle 11299/206575)::

    <root>/detection/train/images/*.png   RGB images (720 wide x 1280 tall)
    <root>/detection/train/masks/*.png    single-channel instance-id masks, 0 = background
    <root>/detection/test/images/*.png    test images; test masks are withheld (CodaLab)

Every distinct non-zero id in a mask is one apple. Unlike the reference PyTorch loader, no
instance is dropped for having a zero-area box: boxes here are exclusive (`mask_to_box`), so a
one-pixel-wide apple has width 1, and masks, boxes and labels always stay aligned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .types import Instance, Sample

__all__ = [
    "MinneApple",
    "load_minneapple",
    "read_rgb_png",
    "read_instance_mask",
    "split_indices",
    "write_minneapple",
]

SPLITS = ("train", "test")
DOWNLOAD_HINT = (
    "Download MinneApple by hand from https://conservancy.umn.edu/handle/11299/206575 "
    "(file detection.tar.gz), extract it so that <root>/detection/train/images exists, and pass "
    "that <root> as data_root; or run `samgap data minneapple --root <root>` where the internet "
    "is reachable."
)


def read_rgb_png(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit RGB image file as ``(H, W, 3)`` uint8, or raise naming the file and problem."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "RGB":
                return np.asarray(im, dtype=np.uint8).copy()
            arr = np.asarray(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file is missing.") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(
            f"{path}: empty or corrupt image file ({e}). Re-download or re-extract it."
        ) from e
    problem = {
        "L": "is grayscale (1 channel)",
        "LA": "is grayscale with alpha",
        "RGBA": "has an alpha channel (RGBA)",
        "P": "is palette-indexed",
        "I;16": "is 16-bit",
        "I;16B": "is 16-bit",
        "I": "is 32-bit integer",
        "F": "is floating point",
    }.get(mode, f"has mode {mode}")
    raise ValueError(
        f"{path}: image {problem} with shape {arr.shape}; MinneApple images are 8-bit RGB. Convert it to 8-bit RGB PNG."
    )


def read_instance_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a single-channel instance-id mask as an integer ``(H, W)`` array (0 = background)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: mask file is missing; every training image needs a mask of the same name."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path}: empty or corrupt mask file ({e}).") from e
    if arr.ndim != 2:
        raise ValueError(
            f"{path}: mask has shape {arr.shape}; expected a single-channel instance-id PNG (pixel value = apple id)."
        )
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{path}: mask dtype {arr.dtype} is not integer; expected instance ids.")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(
            f"{path}: mask is {arr.shape[1]}x{arr.shape[0]} (WxH) but its image is {shape[1]}x{shape[0]}."
        )
    return arr


def _instances_from_ids(ids: np.ndarray) -> list[Instance]:
    values = np.unique(ids)
    return [Instance(mask=ids == v, category="apple", instance_id=int(v)) for v in values if v != 0]


class MinneApple(Sequence[Sample]):
    """Lazy, indexable MinneApple split: ``ds[i]`` reads image ``i`` (and its mask) from disk.

    Parameters
    ----------
    root
        Folder that holds ``detection/``.
    split
        ``"train"`` (images and masks) or ``"test"`` (images only; samples have no instances
        and ``meta["annotated"]`` is False).
    indices
        Optional subset (e.g. from `split_indices`) of the sorted file list.
    """

    def __init__(
        self, root: str | os.PathLike, split: str = "train", indices: Sequence[int] | None = None
    ):
        if split not in SPLITS:
            raise ValueError(
                f"split must be one of {SPLITS}, got {split!r}. For validation/test data with masks, split 'train' with split_indices()."
            )
        self.root = Path(root)
        base = self.root / "detection" / split
        img_dir = base / "images"
        if not img_dir.is_dir():
            raise FileNotFoundError(
                f"{img_dir}: folder not found, so {self.root} is not a MinneApple root. {DOWNLOAD_HINT}"
            )
        files = sorted(p for p in img_dir.iterdir() if p.suffix.lower() == ".png")
        if not files:
            raise FileNotFoundError(f"{img_dir}: no .png images. {DOWNLOAD_HINT}")
        self.split = split
        self.annotated = split == "train"
        self.mask_dir = base / "masks"
        if self.annotated and not self.mask_dir.is_dir():
            raise FileNotFoundError(
                f"{self.mask_dir}: folder not found; the train split needs its masks. {DOWNLOAD_HINT}"
            )
        if indices is not None:
            bad = [i for i in indices if not 0 <= i < len(files)]
            if bad:
                raise IndexError(
                    f"indices {bad[:5]} out of range for {len(files)} images in {img_dir}."
                )
            files = [files[i] for i in indices]
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        path = self.files[i]
        image = read_rgb_png(path)
        instances: list[Instance] = []
        if self.annotated:
            ids = read_instance_mask(self.mask_dir / path.name, image.shape[:2])
            instances = _instances_from_ids(ids)
        return Sample(
            image=image,
            instances=instances,
            image_id=path.stem,
            meta={
                "file_name": str(path),
                "split": self.split,
                "annotated": self.annotated,
                "source": "minneapple",
            },
        )

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"MinneApple(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"


def load_minneapple(
    root: str | os.PathLike, split: str = "train", indices: Sequence[int] | None = None
) -> MinneApple:
    """Open a MinneApple split lazily (see `MinneApple`)."""
    return MinneApple(root, split, indices)


def split_indices(
    n: int, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> list[list[int]]:
    """Seeded disjoint index lists covering ``range(n)`` in the given proportions.

    MinneApple withholds its test masks, so experiments split ``train`` into their own
    train/val/test; this makes that split reproducible.
    """
    if n < 0 or not fractions or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(
            f"fractions must be non-negative and sum to 1, got {tuple(fractions)} (n={n})."
        )
    perm = np.random.default_rng(seed).permutation(n)
    edges = np.round(np.cumsum(fractions) * n).astype(int)
    edges[-1] = n
    starts = np.concatenate([[0], edges[:-1]])
    return [sorted(perm[a:b].tolist()) for a, b in zip(starts, edges, strict=True)]


def write_minneapple(
    samples: Sequence[Sample],
    root: str | os.PathLike,
    split: str = "train",
    name: str = "{index:04d}.png",
) -> Path:
    """Write samples in MinneApple's on-disk layout (RGB PNGs and 8/16-bit instance-id PNGs).

    Used to turn the synthetic orchard into a MinneApple-format folder, so the same reader and
    the `paper` profile's code path run on it. Returns the split folder. Files are written
    atomically; instance ids are the instances' positions (1..N) in each sample.
    """
    from ..io import atomic_write

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    base = Path(root) / "detection" / split
    (base / "images").mkdir(parents=True, exist_ok=True)
    if split == "train":
        (base / "masks").mkdir(parents=True, exist_ok=True)
    for index, s in enumerate(samples):
        fname = name.format(index=index, image_id=s.image_id)
        atomic_write(
            base / "images" / fname, lambda f, s=s: Image.fromarray(s.image).save(f, format="PNG")
        )
        if split == "train":
            dtype = np.uint8 if len(s.instances) < 256 else np.uint16
            ids = np.zeros((s.height, s.width), dtype)
            for k, inst in enumerate(s.instances, start=1):
                ids[inst.mask] = k
            atomic_write(
                base / "masks" / fname,
                lambda f, ids=ids: Image.fromarray(ids).save(f, format="PNG"),
            )
    return base
