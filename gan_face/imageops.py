"""Conversions between uint8 RGB arrays and model tensors. Nowhere else converts.

Two tensor conventions are used:
- "unit" tensors in [0, 1], what degradations and metrics work on;
- "signed" tensors in [-1, 1], what the networks take and return.
"""

from __future__ import annotations

import numpy as np
import torch


def check_rgb(image) -> None:
    """The one check of what every stage takes: an (H,W,3) uint8 RGB array, at least 2x2."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {got}")
    if min(image.shape[:2]) < 2:
        raise ValueError(f"image is too small ({image.shape[1]}x{image.shape[0]})")


def to_unit(image: np.ndarray) -> torch.Tensor:
    """(H,W,3) uint8 RGB -> (1,3,H,W) float in [0,1]."""
    check_rgb(image)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0  # a copy: input may be read-only


def batch_to_unit(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(B,H,W,3) uint8 -> (B,3,H,W) float in [0,1]."""
    t = torch.as_tensor(images)
    return t.permute(0, 3, 1, 2).float() / 255.0


def batch_from_unit(t: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) in [0,1] -> (B,H,W,3) uint8 RGB, rounded."""
    return (t.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_unit(t: torch.Tensor) -> np.ndarray:
    """(1,3,H,W) or (3,H,W) in [0,1] -> (H,W,3) uint8 RGB, rounded."""
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {t.shape[0]}")
        t = t[0]
    return (t.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def unit_to_signed(t: torch.Tensor) -> torch.Tensor:
    return t * 2.0 - 1.0


def signed_to_unit(t: torch.Tensor) -> torch.Tensor:
    return (t + 1.0) * 0.5
