"""gan-face: reconstruct damaged faces in photos."""

from gan_face.deblur import DeblurGenerator
from gan_face.discriminator import PatchDiscriminator
from gan_face.generator import UNetGenerator
from gan_face.pipeline import FaceRestorer

__all__ = ["DeblurGenerator", "FaceRestorer", "PatchDiscriminator", "UNetGenerator"]
__version__ = "0.1.0"
