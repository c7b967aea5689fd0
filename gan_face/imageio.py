"""Reading users' image files safely, and giving their alpha/gray back on output.

Every image a user brings goes through `load_photo` (files) or `from_array` (arrays from
Gradio): size limits are checked before decoding, EXIF orientation is applied, every
Pillow mode becomes 8-bit RGB, and transparency and grayness are remembered so the output
keeps them (as GFPGAN does). Failures raise `ImageError` with a one-line message.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Limits, configurable by environment: pixels (width x height) and file size.
MAX_PIXELS = int(os.environ.get("GAN_FACE_MAX_PIXELS", 36_000_000))
MAX_BYTES = int(os.environ.get("GAN_FACE_MAX_BYTES", 40 * 1024 * 1024))
# the restored photo: a 36 MP photo is fine at x1, a 9 MP one at x2; larger outputs are refused up front
MAX_OUTPUT_PIXELS = int(os.environ.get("GAN_FACE_MAX_OUTPUT_PIXELS", 40_000_000))


class ImageError(ValueError):
    """A user's image cannot be used; the message says why in one line."""


@dataclass
class Photo:
    rgb: np.ndarray  # (H,W,3) uint8
    alpha: np.ndarray | None = None  # (H,W) uint8 when the input had transparency
    gray: bool = False  # the input was grayscale


def limits_text(max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> str:
    return f"Limits: at most {max_pixels / 1e6:.0f} megapixels and {max_bytes / 2**20:.0f} MB per image."


def open_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> Image.Image:
    """Open and decode an image file (path or bytes), first frame, EXIF orientation applied."""
    name = Path(source).name if isinstance(source, (str, Path)) else "image"
    if not isinstance(source, bytes) and not Path(source).is_file():
        # in the app: an upload that waited in the queue past the cache lifetime and was removed
        raise ImageError(f"{name} is not there (any more): upload it again")
    size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
    if size == 0:
        raise ImageError(f"{name} is empty (0 bytes)")
    if size > max_bytes:
        raise ImageError(f"{name} is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            # the header gives the size: refuse before decoding a single pixel
            if image.width * image.height > max_pixels:
                raise ImageError(
                    f"{name} is {image.width}x{image.height} ({image.width * image.height / 1e6:.0f} megapixels); "
                    f"the limit is {max_pixels / 1e6:.0f} megapixels"
                )
            image.seek(0)  # animated GIF/WebP: the first frame
            image.load()
            return ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name} is too large to decode safely ({e})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name} is corrupt or truncated ({e})") from None


def from_pil(image: Image.Image) -> Photo:
    """Any Pillow mode -> 8-bit RGB (+ alpha, gray flag)."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(image, dtype=np.float64)
        top = 1.0 if mode == "F" and a.max(initial=0) <= 1.0 else 65535.0 if a.max(initial=0) > 255 else 255.0
        a = np.nan_to_num(a, nan=0.0, posinf=top, neginf=0.0)
        gray = (np.clip(a / top, 0, 1) * 255 + 0.5).astype(np.uint8)
        return Photo(np.repeat(gray[..., None], 3, 2), None, True)
    if mode in ("1", "L"):
        gray = np.asarray(image.convert("L"))
        return Photo(np.repeat(gray[..., None], 3, 2), None, True)
    if mode in ("LA", "La"):
        la = np.asarray(image.convert("LA"))
        return Photo(np.repeat(la[..., :1], 3, 2), la[..., 1].copy(), True)
    has_alpha = mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return Photo(np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].copy(), False)
    return Photo(np.asarray(image.convert("RGB")), None, False)


def load_photo(source: str | Path | bytes, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> Photo:
    return from_pil(open_image(source, max_pixels, max_bytes))


def from_array(array: np.ndarray, max_pixels: int = MAX_PIXELS) -> Photo:
    """An array from Gradio or a user: (H,W), (H,W,1), (H,W,3) or (H,W,4), any numeric dtype."""
    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {a.shape}")
    if a.shape[0] * a.shape[1] > max_pixels:
        raise ImageError(f"image is {a.shape[1]}x{a.shape[0]}; the limit is {max_pixels / 1e6:.0f} megapixels")
    if min(a.shape[:2]) < 2:
        raise ImageError(f"image is too small ({a.shape[1]}x{a.shape[0]} px)")
    if a.dtype != np.uint8:
        a = np.nan_to_num(a.astype(np.float64))
        top = 1.0 if a.max(initial=0) <= 1.0 else 65535.0 if a.max(initial=0) > 255 else 255.0
        a = (np.clip(a / top, 0, 1) * 255 + 0.5).astype(np.uint8)
    if a.ndim == 2 or a.shape[2] == 1:
        return Photo(np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, 2), None, True)
    if a.shape[2] == 4:
        alpha = a[..., 3].copy()
        return Photo(np.ascontiguousarray(a[..., :3]), None if alpha.min() == 255 else alpha, False)
    return Photo(np.ascontiguousarray(a), None, False)


def finish(photo: Photo, restored: np.ndarray) -> np.ndarray:
    """Give the restored RGB the input's alpha (resized) and grayness back."""
    out = restored
    if photo.gray:
        out = np.asarray(Image.fromarray(out).convert("L"))
    if photo.alpha is not None:
        alpha = np.asarray(Image.fromarray(photo.alpha).resize(restored.shape[1::-1], Image.LANCZOS))
        out = np.dstack([out if out.ndim == 3 else out[..., None], alpha])
    return out
