"""FaceRestorer: the whole-photo pipeline.

    photo -> 1. detect + align (5 landmarks -> FFHQ template crops, occlusion mask warped too)
          -> 2. deblur (DeblurGAN-v2)
          -> 3. generator (U-Net, with the occlusion mask), fidelity and lighting blends
          -> 4. upscale the faces (x2) and the background (x`upscale`)
          -> 5. paste the faces back with feathered masks
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gan_face.deblur import DeblurGenerator
from gan_face.face import FaceDetector, align, paste_back, rescale_matrix, select_faces
from gan_face.generator import UNetGenerator
from gan_face.imageops import batch_from_unit, batch_to_unit, signed_to_unit, unit_to_signed
from gan_face.upscale import Upscaler

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_GENERATOR = REPO / "pretrained" / "gan-face-generator"
DEFAULT_DEBLUR = REPO / "pretrained" / "gan-face-deblur"


@dataclass
class RestoredFace:
    box: np.ndarray  # x0, y0, x1, y1 in the input photo
    score: float
    before: np.ndarray  # aligned crop as detected, uint8
    after: np.ndarray  # restored crop (after the face upscaler), uint8


@dataclass
class Restoration:
    image: np.ndarray  # the whole restored photo, uint8 RGB
    faces: list[RestoredFace]
    timings: dict[str, float]  # seconds per stage
    notes: list[str] = field(default_factory=list)  # what the user should know (e.g. no face found)


def load_model(cls, source, name: str):
    """`cls.from_pretrained(source)` for a local folder or Hub repo id; None when absent."""
    if source is None:
        return None
    if Path(source).exists() or "/" in str(source) and not str(source).startswith((".", "/")):
        try:
            return cls.from_pretrained(str(source), strict=True)
        except Exception as e:  # noqa: BLE001 - hub, json and safetensors errors
            raise ValueError(f"could not load the {name} from {source}: {e}") from e
    return None


class FaceRestorer:
    """Restores every face of a photo and returns the whole photo.

    Args:
        generator: the trained U-Net (None: faces are only deblurred/upscaled).
        deblur: the DeblurGAN-v2 stage (None: skipped).
        detector: a FaceDetector.
        background: Upscaler for the photo (Real-ESRGAN or Lanczos).
        face_upscaler: Upscaler for the restored faces (default Lanczos x2).
        crop_size: aligned face size the models run at.
    """

    def __init__(
        self,
        generator: UNetGenerator | None,
        deblur: DeblurGenerator | None = None,
        detector: FaceDetector | None = None,
        background: Upscaler | None = None,
        face_upscaler: Upscaler | None = None,
        crop_size: int = 128,
        notes: list[str] | None = None,
    ):
        self.generator = generator.eval() if generator is not None else None
        self.deblur = deblur.eval() if deblur is not None else None
        self.detector = detector or FaceDetector(download=False)
        self.background = background or Upscaler(None, scale=2)
        self.face_upscaler = face_upscaler or Upscaler(None, scale=2)
        self.crop_size = crop_size
        self.notes = list(notes or [])  # about the loaded models (shown by the app)

    @classmethod
    def from_pretrained(
        cls,
        generator: str | Path | None = DEFAULT_GENERATOR,
        deblur: str | Path | None = DEFAULT_DEBLUR,
        weights: str | Path | None = None,
        realesrgan_background: bool = True,
        download: bool = False,
    ) -> "FaceRestorer":
        """Load every stage: the models from local folders or Hub repo ids, the detector and
        Real-ESRGAN from the weights folder (or their checked downloads if `download`)."""
        notes = []
        g = load_model(UNetGenerator, generator, "generator")
        if g is None:
            notes.append("untrained generator: no trained weights were found, faces are not reconstructed")
            g = UNetGenerator()  # zero-initialised head: returns its input unchanged
        d = load_model(DeblurGenerator, deblur, "deblurring model")
        if d is None and deblur is not None:
            notes.append("no trained DeblurGAN-v2 weights: the deblurring stage is off")
        detector = FaceDetector(weights, download=download)
        background = Upscaler.default(weights, download=download) if realesrgan_background else Upscaler(None, scale=4)
        if realesrgan_background and not background.is_model:
            notes.append("no Real-ESRGAN weights: the background is upscaled with Lanczos")
        return cls(g, d, detector, background, notes=notes)

    @property
    def untrained(self) -> bool:
        return any(n.startswith("untrained") for n in self.notes)

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        upscale: float = 2,
        realesrgan_background: bool = False,
        fidelity: float = 0.0,
        lighting: float = 1.0,
        use_deblur: bool = True,
        use_generator: bool = True,
        only_largest: bool = False,
        only_center: bool = False,
        min_face: float = 0,
        time_limit: float | None = None,
    ) -> Restoration:
        """Restore `image` ((H,W,3) uint8 RGB).

        mask: (H,W) bool/uint8, nonzero where the photo is occluded (painted by the user).
        upscale: output size / input size (1 = same size).
        realesrgan_background: upscale the background with Real-ESRGAN (slow) instead of Lanczos.
        fidelity: 0 = the generator's reconstruction, 1 = the deblurred input (outside the mask).
        lighting: 1 = the generator's lighting correction, 0 = keep the input's lighting.
        time_limit: seconds; past it a TimeoutError stops the work between stages (and
            between Real-ESRGAN tiles).
        """
        check_image(image)
        if not (0 <= fidelity <= 1 and 0 <= lighting <= 1):
            raise ValueError(f"fidelity and lighting must be in [0, 1], got {fidelity} and {lighting}")
        if not 1 <= upscale <= 8:
            raise ValueError(f"upscale must be between 1 and 8, got {upscale}")
        timings: dict[str, float] = {}
        tick = time.perf_counter()

        deadline = None if time_limit is None else time.perf_counter() + time_limit

        def check_time() -> None:
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError(f"the photo took longer than the {time_limit:.0f} s limit; try a smaller photo or without Real-ESRGAN")

        def lap(stage: str) -> None:
            nonlocal tick
            now = time.perf_counter()
            timings[stage] = timings.get(stage, 0.0) + now - tick
            tick = now
            check_time()

        # 1. detect + align
        faces = select_faces(self.detector(image), image.shape, only_largest, only_center, min_face)
        crops, matrices, masks = [], [], []
        for face in faces:
            crop, matrix = align(image, face.landmarks, self.crop_size)
            crops.append(crop)
            matrices.append(matrix)
            if mask is not None:
                m = cv2.warpAffine(np.asarray(mask, np.uint8) * 255, matrix, (self.crop_size,) * 2, flags=cv2.INTER_LINEAR)
                masks.append(m > 127)
        lap("detect+align")
        notes = [] if faces else ["no face found: the photo was only upscaled"]

        restored = []
        if faces:
            x = unit_to_signed(batch_to_unit(np.stack(crops)))
            m = torch.from_numpy(np.stack(masks))[:, None].float() if masks else None
            # 2. deblur
            deblurred = self.deblur(x) if use_deblur and self.deblur is not None else x
            lap("deblur")
            # 3. generator, then the fidelity and lighting blends
            out = deblurred
            if use_generator and self.generator is not None:
                out = self.generator(deblurred, m).clamp(-1, 1)
                out = blend(out, deblurred, m, fidelity, lighting)
            lap("generator")
            # 4a. upscale the faces
            restored = [self.face_upscaler(face) for face in batch_from_unit(signed_to_unit(out))]
            lap("upscale faces")

        # 4b. upscale the background
        if upscale == 1:
            background = image.copy()
        elif realesrgan_background and self.background.is_model:
            background = self.background(image, outscale=upscale, check=check_time)
        else:
            background = Upscaler(None, scale=upscale)(image)
        lap("upscale background")
        scale = background.shape[1] / image.shape[1]

        # 5. paste back
        if faces:
            sizes = [r.shape[0] / self.crop_size for r in restored]
            background = paste_back(background, restored, [rescale_matrix(mt, s) for mt, s in zip(matrices, sizes)], scale)
        lap("paste back")
        timings["total"] = sum(timings.values())
        return Restoration(
            image=background,
            faces=[RestoredFace(f.box, f.score, c, r) for f, c, r in zip(faces, crops, restored)],
            timings=timings,
            notes=self.notes + notes,
        )


def low_frequencies(t: torch.Tensor) -> torch.Tensor:
    """Shading only: area-downsample x8, 3x3 box blur, back up (about 1/10 of the crop)."""
    small = F.avg_pool2d(F.interpolate(t, scale_factor=1 / 8, mode="area"), 3, 1, 1, count_include_pad=False)
    return F.interpolate(small, size=t.shape[-2:], mode="bilinear", align_corners=False)


def blend(restored: torch.Tensor, source: torch.Tensor, mask, fidelity: float, lighting: float) -> torch.Tensor:
    """Fidelity: mix the reconstruction with the (deblurred) input, except where occluded.
    Lighting: below 1, put back that fraction of the input's own shading (its low
    frequencies) under the reconstruction's detail."""
    out = restored
    if fidelity > 0:
        keep = fidelity if mask is None else fidelity * (1 - mask)
        out = keep * source + (1 - keep) * restored
    if lighting < 1:
        out = out + (1 - lighting) * (low_frequencies(source) - low_frequencies(restored))
    return out.clamp(-1, 1)


def check_image(image) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {got}")
    if min(image.shape[:2]) < 2:
        raise ValueError(f"image is too small ({image.shape[1]}x{image.shape[0]})")
