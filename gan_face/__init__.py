"""gan-face: reconstruct damaged faces in photos."""

from gan_face.discriminator import PatchDiscriminator
from gan_face.generator import UNetGenerator

__all__ = ["UNetGenerator", "PatchDiscriminator"]
__version__ = "0.1.0"
