"""Shared fixtures: real faces and photos from ../shared (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_face.weights import SHARED  # noqa: E402 - $GAN_FACE_SHARED or ../shared
TEST_FACES = SHARED / "data" / "faces" / "test"
TRAIN_FACES = SHARED / "data" / "faces" / "train"
ASTRONAUT = SHARED / "data" / "photos" / "astronaut.png"

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)


def face_files(n: int) -> list[Path]:
    return sorted(TEST_FACES.glob("*.jpg"))[:n]


def load_rgb(path: Path, size: int | None = None) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size:
            im = im.resize((size, size), Image.BICUBIC)
        return np.asarray(im)


@pytest.fixture(scope="session")
def faces128() -> torch.Tensor:
    """(8,3,128,128) real test faces in [0,1] (resized, not aligned)."""
    arrays = [load_rgb(p, 128) for p in face_files(8)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return load_rgb(ASTRONAUT)
