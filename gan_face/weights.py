"""Where third-party weight files come from: a local folder first, else a checked download.

The folder is `$GAN_FACE_WEIGHTS` if set, else `weights/` in the shared folder
(`$GAN_FACE_SHARED`, default `../shared` beside the repository: this project's offline
machines), else `~/.cache/gan_face/weights`. Downloads land in
`~/.cache/gan_face/weights` and are accepted only if their sha256 matches the pinned value.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from gan_face.atomic import atomic_write

CACHE = Path(os.environ.get("GAN_FACE_CACHE", Path.home() / ".cache" / "gan_face"))
# What the project provides beside the repository (data, weights): $GAN_FACE_SHARED or ../shared
SHARED = Path(os.environ.get("GAN_FACE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def weights_dir() -> Path:
    if os.environ.get("GAN_FACE_WEIGHTS"):
        return Path(os.environ["GAN_FACE_WEIGHTS"])
    shared = SHARED / "weights"
    return shared if shared.is_dir() else CACHE / "weights"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(name: str, url: str, expected_sha256: str, directory: Path | None = None, download: bool = True) -> Path:
    """Path of weight file `name`: from `directory`, the download cache, or downloaded now."""
    for folder in (directory or weights_dir(), CACHE / "weights"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    if not download:
        raise FileNotFoundError(f"{name} is not in {directory or weights_dir()} and downloads are off")
    target = CACHE / "weights" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as tmp:  # a partial or unverified download never takes the real name
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as f:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
        got = sha256(tmp)
        if got != expected_sha256:
            raise ValueError(f"{url} has sha256 {got}, expected {expected_sha256}: refusing to use it")
    return target
