"""Damage applied to a whole photo (uint8 RGB), made with the training degradations: the
app's "simulate" controls and the real-resolution evaluation use these."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from gan_face import degradations
from gan_face.face import Face, alignment_matrix
from gan_face.imageops import from_unit, to_unit


def lighting(image: np.ndarray, condition: str, strength: float = 1.0) -> np.ndarray:
    """Relight the whole photo with one of degradations.LIGHTING_CONDITIONS."""
    return from_unit(degradations.lighting(to_unit(image), condition, strength))


def motion_blur(image: np.ndarray, seed: int, fraction: tuple[float, float] = (0.015, 0.03)) -> np.ndarray:
    """Linear motion (or camera shake) of a length that is `fraction` of the photo's width."""
    h, w = image.shape[:2]
    per_128 = tuple(f * w * 128 / h for f in fraction)  # degradations give lengths at 128 px height
    return from_unit(degradations.motion_blur(to_unit(image), torch.Generator().manual_seed(seed), per_128))


def mixed(image: np.ndarray, seed: int) -> np.ndarray:
    """The GFPGAN recipe (blur, downsample, noise, JPEG) on the whole photo."""
    return from_unit(degradations.mixed(to_unit(image), torch.Generator().manual_seed(seed)))


def occluder(image: np.ndarray, faces: list[Face], area: float, seed: int = 0, crop: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Paint one random occluder covering `area` of each face's aligned crop.

    `faces` come from detecting the photo before it is damaged, so an occluder can never hide
    the face it is meant to damage from the detector. Returns (damaged image, (H,W) bool mask
    of the painted pixels); the occluder is drawn in the aligned face frame (so sunglasses sit
    on the eyes) and warped into the photo."""
    h, w = image.shape[:2]
    generator = torch.Generator().manual_seed(seed)
    out, mask = image.copy(), np.zeros((h, w), bool)
    for face in faces:
        matrix = alignment_matrix(face.landmarks, crop)
        m = degradations.occlusion_mask(generator, 1, crop, crop, (area, area))[0, 0].numpy()
        inverse = cv2.invertAffineTransform(matrix)
        painted = cv2.warpAffine(m, inverse, (w, h), flags=cv2.INTER_NEAREST) > 0.5
        colour = (torch.rand(3, generator=generator).numpy() * 255).astype(np.uint8)
        noise = np.random.default_rng(seed).integers(0, 40, size=(h, w, 1), dtype=np.uint8)
        out[painted] = np.clip(colour[None].astype(int) + noise[painted] - 20, 0, 255).astype(np.uint8)
        mask |= painted
    return out, mask
