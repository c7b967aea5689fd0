"""The app's "simulate this damage" controls, made with the training degradations."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from gan_face import degradations
from gan_face.face import FaceDetector, alignment_matrix
from gan_face.imageops import from_unit, to_unit


def simulate_lighting(image: np.ndarray, condition: str, strength: float = 1.0) -> np.ndarray:
    """Relight the whole photo with one of degradations.LIGHTING_CONDITIONS."""
    return from_unit(degradations.lighting(to_unit(image), condition, strength))


def simulate_occluder(image: np.ndarray, detector: FaceDetector, area: float, seed: int = 0, crop: int = 128):
    """Paint one random occluder covering `area` of each detected face's aligned crop.

    Returns (damaged image, (H,W) bool mask of the painted pixels); the occluder is drawn in
    the aligned face frame (so sunglasses sit on the eyes) and warped into the photo."""
    h, w = image.shape[:2]
    generator = torch.Generator().manual_seed(seed)
    out, mask = image.copy(), np.zeros((h, w), bool)
    for face in detector(image):
        matrix = alignment_matrix(face.landmarks, crop)
        m = degradations.occlusion_mask(generator, 1, crop, crop, (area, area))[0, 0].numpy()
        inverse = cv2.invertAffineTransform(matrix)
        painted = cv2.warpAffine(m, inverse, (w, h), flags=cv2.INTER_NEAREST) > 0.5
        colour = (torch.rand(3, generator=generator).numpy() * 255).astype(np.uint8)
        noise = np.random.default_rng(seed).integers(0, 40, size=(h, w, 1), dtype=np.uint8)
        out[painted] = np.clip(colour[None].astype(int) + noise[painted] - 20, 0, 255).astype(np.uint8)
        mask |= painted
    return out, mask
