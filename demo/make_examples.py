"""Regenerate demo/examples/ from ../shared/data/photos/astronaut.png (BSD-3-Clause).

    python -m demo.make_examples

Each example is the astronaut photo with synthetic damage from gan_face.degradations."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_face import degradations
from gan_face.imageops import from_unit, to_unit
from gan_face.weights import SHARED

SOURCE = SHARED / "data" / "photos" / "astronaut.png"
OUT = Path(__file__).resolve().parent / "examples"


def main() -> None:
    photo = to_unit(np.asarray(Image.open(SOURCE).convert("RGB")))
    g = torch.Generator().manual_seed(0)
    blurred = degradations.motion_blur(photo, g, length=(5, 5), shake_prob=0.0, angle=(30, 30))  # 20 px at 512 px
    Image.fromarray(from_unit(blurred)).save(OUT / "astronaut_motion_blur.jpg", quality=90)
    dark = degradations.lighting(photo, "left side", 0.8)
    small = torch.nn.functional.interpolate(dark, scale_factor=0.5, mode="area")
    Image.fromarray(from_unit(small)).save(OUT / "astronaut_side_light_small.jpg", quality=85)


if __name__ == "__main__":
    main()
