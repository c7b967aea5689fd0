"""Classical restoration a user could do without gan-face (the evaluation's baselines).

All take and return (H,W,3) uint8 RGB unless noted."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def richardson_lucy(image: np.ndarray, kernel: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Richardson-Lucy deconvolution with the true blur kernel (k,k), all channels at once."""
    x = image.astype(np.float32) / 255
    k = np.asarray(kernel, np.float32)
    # the degradation correlates with k (kornia.filter2d); RL's correction uses its mirror
    blur = lambda t, w: cv2.filter2D(t, -1, w, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    estimate = np.clip(x, 1e-3, 1)
    for _ in range(iterations):
        ratio = x / np.maximum(blur(estimate, k), 1e-6)
        estimate = np.clip(estimate * blur(ratio, k[::-1, ::-1]), 0, 1)
    return (estimate * 255 + 0.5).astype(np.uint8)


def inpaint(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV Telea inpainting of the (H,W) mask."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    out = cv2.inpaint(bgr, (mask > 0).astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def clahe(image: np.ndarray, clip: float = 2.0, tiles: int = 4) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of the L channel (Lab)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def auto_gamma(image: np.ndarray, target: float = 0.45) -> np.ndarray:
    """The gamma that brings the mean luminance to `target`."""
    y = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255
    mean = float(np.clip(y.mean(), 1e-3, 0.999))
    gamma = np.log(target) / np.log(mean)
    return (np.clip((image / 255.0) ** gamma, 0, 1) * 255 + 0.5).astype(np.uint8)


def denoise(image: np.ndarray) -> np.ndarray:
    """Non-local means colour denoising (what a photo editor's 'reduce noise' does)."""
    return cv2.fastNlMeansDenoisingColored(image, None, 7, 7, 5, 15)


def lanczos_upscale(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(small).resize(size, Image.LANCZOS))


def unsharp(image: np.ndarray, sigma: float = 2.0, amount: float = 1.0) -> np.ndarray:
    """Unsharp masking: what a photo editor's 'sharpen' does without knowing the blur."""
    x = image.astype(np.float32)
    return np.clip(x + amount * (x - cv2.GaussianBlur(x, (0, 0), sigma)) + 0.5, 0, 255).astype(np.uint8)
