"""Aligned face dataset: a folder tree of face photos, aligned once to the FFHQ template.

Alignment runs the face detector (`gan_face.face.FaceDetector`: RetinaFace when its weights
are present, else YuNet) on every image, warps the most confident face to the 5-point
template at `size` px, and caches the result as one uint8 array, so later runs (and
resumed runs) start in seconds. Images without a detected face are skipped and counted;
corrupt files are skipped with a warning naming the file. Folders of crops that are aligned
already (FFHQ's own images, or crops exported from another run's cache) are only resized
(`aligned=True`), as GFPGAN trains on FFHQ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from gan_face.atomic import atomic_write
from gan_face.face import FaceDetector, align
from gan_face.imageops import batch_to_unit

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def list_images(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        return np.asarray(im.convert("RGB"))


class AlignedFaces:
    """All faces of a folder tree, aligned to `size` px, as a (N,size,size,3) uint8 tensor.

    Args:
        root: folder searched recursively for images.
        size: side of the aligned crops.
        cache_dir: where the aligned array is kept (keyed by the file list and size).
        limit: use only the first `limit` files (sorted by path); 0 = all.
        detector: a FaceDetector (default: the offline-first one).
        aligned: the images are square crops aligned to the FFHQ template already: resized
            to `size`, no detection (a crop that is not square is rejected).
    """

    def __init__(self, root, size: int = 128, cache_dir=None, limit: int = 0, detector: FaceDetector | None = None, aligned: bool = False):
        files = list_images(root)
        if limit:
            files = files[:limit]
        if not files:
            raise ValueError(f"no images (*.jpg, *.png, ...) found under {root}")
        self.size = size
        listing = [size, [(str(f.resolve()), f.stat().st_size) for f in files]]
        key = hashlib.sha256(json.dumps(listing + ["aligned"] if aligned else listing).encode()).hexdigest()[:16]
        cache_dir = Path(cache_dir or Path.home() / ".cache" / "gan_face" / "aligned")
        array_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
        if array_path.is_file() and meta_path.is_file():
            images = np.load(array_path)
            meta = json.loads(meta_path.read_text())
        else:
            images, meta = self._resize(files, size) if aligned else self._align(files, size, detector or FaceDetector(download=False))
            cache_dir.mkdir(parents=True, exist_ok=True)
            # atomic writes: a crash mid-write never leaves a cache that looks complete
            with atomic_write(array_path) as tmp, open(tmp, "wb") as f:
                np.save(f, images)
            with atomic_write(meta_path) as tmp:  # written last: its presence means the array is complete
                tmp.write_text(json.dumps(meta))
        self.images = torch.from_numpy(images)
        self.files = meta["files"]
        self.rejected, self.corrupt = meta["rejected"], meta["corrupt"]
        for name in self.corrupt:
            warnings.warn(f"skipped corrupt image: {name}", stacklevel=2)
        log.info("%d aligned faces from %s (%d rejected: no face found, or not square when aligned; %d corrupt)", len(self), root, len(self.rejected), len(self.corrupt))
        if len(self) == 0:
            raise ValueError(f"no usable face in {root}: {len(self.rejected)} rejected (no face found, or not square when aligned), {len(self.corrupt)} corrupt")

    @staticmethod
    def _read(files: list[Path], size: int, crop_of, desc: str):
        """`crop_of(rgb)` -> the (size,size,3) crop of each readable image, or None to reject it."""
        crops, kept, rejected, corrupt = [], [], [], []
        for path in tqdm(files, desc=desc, unit="img", leave=False):
            try:
                image = load_rgb(path)
            except Exception:  # noqa: BLE001 - PIL raises many types for broken files
                corrupt.append(str(path))  # warned about in __init__, on every load
                continue
            crop = crop_of(image)
            if crop is None:
                rejected.append(str(path))
                continue
            crops.append(crop)
            kept.append(str(path))
        images = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
        return images, {"files": kept, "rejected": rejected, "corrupt": corrupt}

    @classmethod
    def _align(cls, files: list[Path], size: int, detector: FaceDetector):
        def crop_of(image):
            faces = detector(image)
            return align(image, faces[0].landmarks, size)[0] if faces else None

        return cls._read(files, size, crop_of, "aligning faces")

    @classmethod
    def _resize(cls, files: list[Path], size: int):
        def crop_of(image):
            if image.shape[0] != image.shape[1]:  # not square: cannot be an aligned crop
                return None
            return image if image.shape[0] == size else np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS))

        return cls._read(files, size, crop_of, "reading aligned faces")

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
        """(B,3,H,W) float in [0,1]; `flip` (B,) bool mirrors those images horizontally."""
        x = batch_to_unit(self.images[indices])
        if flip is not None:
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        return x
