"""Download and verify MinneApple's detection archive (where the internet is reachable).

Verification checks the extracted layout against the published counts: 670 training images,
each with an instance mask of the same name, and 331 test images (1,671 files in all). The
archive is downloaded to a temporary name and renamed only when complete, so an interrupted
download never looks finished.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from .minneapple import DOWNLOAD_HINT

__all__ = ["MINNEAPPLE_URL", "EXPECTED_COUNTS", "download_minneapple", "verify_minneapple"]

MINNEAPPLE_URL = "https://conservancy.umn.edu/bitstream/handle/11299/206575/detection.tar.gz"
EXPECTED_COUNTS = {"train/images": 670, "train/masks": 670, "test/images": 331}


def verify_minneapple(
    root: str | os.PathLike, expected: dict[str, int] | None = None
) -> dict[str, int]:
    """Count the PNGs of each MinneApple folder and check them against ``expected``.

    Returns the counts; raises ValueError naming each folder whose count differs and each
    training image without a mask.
    """
    root = Path(root)
    expected = EXPECTED_COUNTS if expected is None else expected
    counts, problems = {}, []
    for sub, n in expected.items():
        folder = root / "detection" / sub
        counts[sub] = len(list(folder.glob("*.png"))) if folder.is_dir() else 0
        if counts[sub] != n:
            problems.append(f"{folder}: {counts[sub]} PNG files, expected {n}")
    imgs = {p.name for p in (root / "detection/train/images").glob("*.png")}
    masks = {p.name for p in (root / "detection/train/masks").glob("*.png")}
    if imgs - masks:
        problems.append(
            f"{len(imgs - masks)} training images have no mask, e.g. {sorted(imgs - masks)[0]}"
        )
    if problems:
        raise ValueError(
            "MinneApple at "
            + str(root)
            + " is incomplete:\n  "
            + "\n  ".join(problems)
            + f"\n{DOWNLOAD_HINT}"
        )
    return counts


def download_minneapple(
    root: str | os.PathLike,
    url: str = MINNEAPPLE_URL,
    timeout: float = 20.0,
    keep_archive: bool = False,
) -> dict[str, int]:
    """Download, extract and verify MinneApple into ``root``; skip what is already complete.

    Raises
    ------
    ConnectionError
        At once when the server cannot be reached, with instructions for a manual download.
    """
    root = Path(root)
    try:
        return verify_minneapple(root)
    except ValueError:
        pass
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "detection.tar.gz"
    if not archive.exists():
        partial = archive.with_suffix(".gz.part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(partial, "wb") as out:
                shutil.copyfileobj(resp, out, length=1 << 20)
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            partial.unlink(missing_ok=True)
            raise ConnectionError(f"Could not download {url} ({e}). {DOWNLOAD_HINT}") from e
        os.replace(partial, archive)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    except (tarfile.TarError, EOFError) as e:
        raise ValueError(
            f"{archive}: corrupt or truncated archive ({e}); delete it and download again."
        ) from e
    counts = verify_minneapple(root)
    if not keep_archive:
        archive.unlink()
    return counts
