"""Carry the models' correction of a 128 px aligned face back into the photo at its own
resolution, without throwing away the photo's detail.

The models see a face at 128 px; a face in a photo is often 300-450 px. Pasting the
enlarged 128 px result back (what gan-face did before) softens every sharp face. Instead the
model's output O is split against its input I (both at 128 px) into
- a smooth per-channel gain g = lowpass(O) / lowpass(I): lighting is multiplicative, so the
  photo's own detail is scaled with it, at every resolution;
- a residual r = O - g * I: what the models added beyond relighting (deblurred edges,
  denoised skin, filled holes), at most 128 px worth of detail.
The photo P at output resolution then becomes g * P + r (r and g warped up to the face's
size): a face with no correction comes back exactly as it was, a pure tone change keeps the
photo's high frequencies. The photo's detail above the model's 128 px is kept even where
it is blur or noise: replacing it by a low-pass copy (tried) scored worse (LPIPS) on the
damaged portraits than keeping it.

The gain does not stop at the face: it is spread smoothly into hair, neck and background
(normalised convolution, fading over about one face width to the faces' mean gain), so a
relit face shows no spotlight or halo. Painted occlusions are replaced by the model's fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import kornia
import numpy as np
import torch

from gan_face.face import feather_mask, landing_box, matrix_scale

SIZE = 128  # the aligned crop the models run at
HIRES_SIZE = 256  # the crop the high-resolution detail model runs at, for faces larger than that in the photo
PAINT_SPREAD = 4  # photo px: how far JPEG's chroma subsampling and ringing spread paint past a stroke
# crop px: gaps between strokes up to twice this wide are filled too (the model's hole, `hole_mask`,
# covers them): a sliver of photo left between a painted hand's fingers reads as a row of dots in
# a smooth fill on a large face
GAP_CLOSE = 2
# crop px at 128: a hole's fill is pasted with full weight up to this close to its crop's edge
# (the feather that blends corrections fades over the outer 15 px: there it mixed the fill with
# the inpainting of a stroke running out of the crop, a seam across the stroke)
FILL_MARGIN = 2
GAIN_SIGMA = SIZE / 16  # gain is smooth: Gaussian low-pass at 1/16 of the crop (shading, not detail)
EPS = 1e-3  # keeps the gain finite on black pixels
LOW_RES = 256  # the spread field is computed with the photo's long side at most this


def lowpass(t: torch.Tensor, sigma: float = GAIN_SIGMA) -> torch.Tensor:
    k = int(2 * round(3 * sigma) + 1)
    return kornia.filters.gaussian_blur2d(t, (k, k), (sigma, sigma), border_type="replicate")


def split(restored: torch.Tensor, source: torch.Tensor, holes: torch.Tensor | None = None):
    """(B,3,n,n) in [0,1] -> (log gain, residual), both (B,3,n,n).

    holes: (B,1,n,n), 1 where the source is occluded: the gain is measured on the face
    around them only (normalised convolution), or an occluder's colour against its fill would
    read as a lighting change and tint the skin around it."""
    weight = torch.ones_like(source[:, :1]) if holes is None else 1 - holes
    sigma = GAIN_SIGMA * source.shape[-1] / SIZE
    norm = lowpass(weight, sigma) + EPS
    log_gain = torch.log(lowpass(restored * weight, sigma) / norm + EPS) - torch.log(lowpass(source * weight, sigma) / norm + EPS)
    log_gain = log_gain.clamp(-3, 3)
    residual = restored - torch.exp(log_gain) * source
    return log_gain, residual


# A pixel at the top of the range has lost its detail to clipping: the on-camera flash of the
# "frontal" lighting clips 28 % of a portrait's face region (clean portraits: 0.01 %)
SATURATED_ABOVE = 250 / 255
SATURATED_RAMP = 10 / 255


def saturated(faces: torch.Tensor) -> torch.Tensor:
    """(B,3,n,n) in [0,1] -> (B,1,n,n) in [0,1]: where a channel is clipped at the top of the range
    (soft from SATURATED_ABOVE - SATURATED_RAMP up, grown by a pixel and smoothed), so no gain can
    bring its detail back."""
    top = ((faces.amax(1, keepdim=True) - (SATURATED_ABOVE - SATURATED_RAMP)) / SATURATED_RAMP).clamp(0, 1)
    return lowpass(torch.nn.functional.max_pool2d(top, 3, stride=1, padding=1), 1.0)


def rim(holes: torch.Tensor, width: int = 3) -> torch.Tensor:
    """(B,1,128,128) holes -> the holes grown by `width` px with a soft edge. The models
    overshoot in the 1-3 px just outside a hole (a bright ring in the hole's colour: on a
    magenta occluder, 238 against 198 in the red channel of the skin there); their residual
    is not pasted there."""
    grown = torch.nn.functional.max_pool2d((holes > 0.5).float(), 2 * width + 1, stride=1, padding=width)
    return torch.maximum(grown, lowpass(grown, 1.0))


def pull_push(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(n,n,C) float32 values known where `known` (n,n) is 1 -> every pixel filled with a smooth
    interpolation of the known ones (pull-push, Gortler et al. 1996: Gaussian-pyramid averages
    of the known values, pushed back up where nothing was known)."""
    h, w = known.shape
    if known.min() >= 1:
        return values
    if min(h, w) < 4:  # the coarsest level: the known values' mean
        mean = (values * known[..., None]).sum((0, 1)) / max(float(known.sum()), 1e-6)
        return known[..., None] * values + (1 - known[..., None]) * mean
    coarse_known = cv2.pyrDown(known)
    coarse = cv2.pyrDown(values * known[..., None]).reshape(*coarse_known.shape, -1) / np.maximum(coarse_known, 1e-6)[..., None]
    coarse = pull_push(coarse.astype(np.float32), np.minimum(1.0, 4 * coarse_known))  # any known pixel under a coarse one counts
    up = cv2.pyrUp(coarse, dstsize=(w, h)).reshape(h, w, -1)
    return known[..., None] * values + (1 - known[..., None]) * up


def seamless_fill(fill: np.ndarray, around: np.ndarray, hole: np.ndarray, ring: int = 2) -> np.ndarray:
    """A hole's (n,n,3) fill shifted so it meets `around` (the photo as it will be pasted, (n,n,3))
    at the hole's edge with no colour step: the difference between the photo just outside the
    (n,n) bool hole and the fill just inside it, interpolated smoothly across the hole
    (`pull_push`), is added to the fill. A membrane version of the Poisson blending that Iizuka
    et al. (2017) applied to their completions; the fill's own structure is kept."""
    if not hole.any():
        return fill
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1,) * 2)
    h8 = hole.astype(np.uint8)
    outside = (cv2.dilate(h8, disc) > 0) & ~hole  # the photo's own pixels next to the hole
    inside = hole & ~(cv2.erode(h8, disc, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0)  # the fill's edge
    if not outside.any():  # a hole over the whole crop: nothing to match
        return fill
    offset = pull_push(around.astype(np.float32), outside.astype(np.float32)) - pull_push(fill.astype(np.float32), inside.astype(np.float32))
    return (fill + hole[..., None] * offset).astype(np.float32)


@dataclass
class Correction:
    """One face's correction at the crop size its model ran at (128 px, or HIRES_SIZE for
    large faces), as `split` gives it."""

    matrix: np.ndarray  # photo -> crop
    log_gain: np.ndarray  # (n,n,3)
    residual: np.ndarray  # (n,n,3) float32, 0-255
    fill: np.ndarray | None = None  # (n,n,3) float32 0-255: what replaces painted pixels (None: no holes)

    @property
    def size(self) -> int:
        return self.residual.shape[0]


def fill_cover(size: int) -> np.ndarray:
    """(size,size) float: where a crop's hole fill replaces painted pixels, 1 inside, falling to 0
    over the outer FILL_MARGIN px (at 128) of the crop. Painted pixels it leaves uncovered are
    inpainted from the fill and the photo around them (`pipeline.fill_uncovered`)."""
    margin = max(1, round(size * FILL_MARGIN / SIZE))
    mask = np.zeros((size, size), np.float32)
    mask[margin:-margin, margin:-margin] = 1
    return cv2.GaussianBlur(mask, (0, 0), margin / 2)


def _warp(array: np.ndarray, to_box: np.ndarray, box: tuple[int, int], border=cv2.BORDER_REPLICATE) -> np.ndarray:
    out = cv2.warpAffine(array, to_box, box, flags=cv2.INTER_LINEAR, borderMode=border)
    return out[..., None] if out.ndim == 2 else out


def spread_gain(shape: tuple[int, ...], corrections: list[Correction], scale: float) -> np.ndarray | None:
    """The log gain outside the faces, at low resolution ((h,w,3) with the photo's long side at
    most LOW_RES), or None when no face is relit: each face's gain spread by normalised
    convolution with a Gaussian of half a face width, fading to the faces' mean gain far from
    any face. shape: the output photo; scale: output / photo size."""
    if not corrections or max(float(np.abs(c.log_gain).max()) for c in corrections) < 1e-3:
        return None
    h, w = shape[:2]
    low = min(1.0, LOW_RES / max(h, w))  # output px -> low-res px
    lh, lw = max(1, round(h * low)), max(1, round(w * low))
    num, den = np.zeros((lh, lw, 3), np.float32), np.zeros((lh, lw, 1), np.float32)
    means, weights = [], []
    for c in corrections:
        feather = feather_mask(c.size)
        to_low = cv2.invertAffineTransform(c.matrix) * (scale * low)  # crop -> low-res
        weight = _warp(feather, to_low, (lw, lh), cv2.BORDER_CONSTANT)
        value = _warp(c.log_gain, to_low, (lw, lh))
        face_px = c.size * scale * low / matrix_scale(c.matrix)
        sigma = max(1.0, face_px / 2)
        num += cv2.GaussianBlur(weight * value, (0, 0), sigma).reshape(lh, lw, 3)
        den += cv2.GaussianBlur(weight, (0, 0), sigma).reshape(lh, lw, 1)
        means.append((c.log_gain * feather[..., None]).sum((0, 1)) / feather.sum())
        weights.append(face_px)
    mean = np.average(means, axis=0, weights=weights).astype(np.float32)
    floor = 0.05 * den.max()  # beyond about one face width the mean gain takes over
    return (num + floor * mean) / (den + floor)


def paste(background: np.ndarray, corrections: list[Correction], scale: float, painted: np.ndarray | None = None, band: int = 256) -> np.ndarray:
    """The (H,W,3) uint8 photo at output size with every face's correction: the relighting
    (spread past the faces, each face's own gain inside its crop), then each residual, then
    each hole fill over the painted pixels its crop covers (`painted`: (H,W) float from
    `photo_hole`; `fill_cover`).

    Works through the photo `band` rows at a time in float32: a 36 MP photo needs tens of MB,
    not the 2 GB of whole-photo float arrays."""
    h, w = background.shape[:2]
    spread = spread_gain(background.shape, corrections, scale)
    boxes = [landing_box(c.matrix, c.size, background.shape, scale) for c in corrections]
    crop_feathers = [feather_mask(c.size) for c in corrections]
    covers = [None if c.fill is None or painted is None else fill_cover(c.size) for c in corrections]
    out = np.empty_like(background)
    for top in range(0, h, band):
        bottom = min(h, top + band)
        rows = background[top:bottom].astype(np.float32)
        parts = [_rows(box, top, bottom) for box in boxes]
        # each crop's feather in its part of these rows: weights its own gain and residual
        feathers = [
            None if part is None else _warp(feather, part[4], (part[2] - part[0], part[3] - part[1]), cv2.BORDER_CONSTANT)
            for feather, part in zip(crop_feathers, parts)
        ]
        if spread is not None:
            # the low-res field enlarged as cv2.resize(INTER_LINEAR) would, these rows only
            sy, sx = spread.shape[0] / h, spread.shape[1] / w
            to_low = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, (top + 0.5) * sy - 0.5]])
            field = cv2.warpAffine(spread, to_low, (w, bottom - top), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
            for c, part, f in zip(corrections, parts, feathers):  # inside each crop its own gain, blended in by the feather
                if part is not None:
                    x0, y0, x1, y1, to_part = part
                    region = field[y0 - top : y1 - top, x0:x1]
                    region[:] = f * _warp(c.log_gain, to_part, (x1 - x0, y1 - y0)) + (1 - f) * region
            rows *= np.exp(field)
        for c, part, f, cover in zip(corrections, parts, feathers, covers):
            if part is not None:
                x0, y0, x1, y1, to_part = part
                size = (x1 - x0, y1 - y0)
                region = rows[y0 - top : y1 - top, x0:x1]
                region += f * _warp(c.residual, to_part, size)
                if cover is not None:  # at the photo's resolution: an exact edge
                    m = _warp(cover, to_part, size, cv2.BORDER_CONSTANT) * painted[y0:y1, x0:x1, None]
                    region[:] = (1 - m) * region + m * _warp(c.fill, to_part, size)
        out[top:bottom] = np.clip(rows + 0.5, 0, 255).astype(np.uint8)
    return out


def _rows(box, top: int, bottom: int):
    """The part of a landing box (from `landing_box`) within rows top..bottom, with its matrix."""
    if box is None:
        return None
    x0, y0, x1, y1, to_box = box
    y0, y1, shift = max(y0, top), min(y1, bottom), max(y0, top) - y0
    if y1 <= y0:
        return None
    return x0, y0, x1, y1, to_box - [[0, 0, 0], [0, 0, shift]]


MIRROR_SIGMA = 2.0  # crop px (at 128): the band finer than this in a hole comes from the face's other half
# How far the nose sits from the eyes' midpoint in the 128 px crop, a cue for a turned head: the 48
# frontal portraits are all within 2.2 px; CelebA's 3/4 views reach 10-12
FRONTAL_NOSE_PX = 3.0
TURNED_NOSE_PX = 8.0
# The mirror image must be the same stuff as the fill: where their colours, smoothed over
# MATCH_SIGMA crop px, differ by more than MATCH_LOG (natural log, per channel) its detail fades
# out, gone at twice that (hair or an earring mirrored onto a cheek). On 24 occluded portraits
# face LPIPS 0.2253 -> 0.2255, dlib distance 0.524 -> 0.525; 0.25 lost stubble (LPIPS 0.2274)
MATCH_SIGMA = 4.0
MATCH_LOG = 0.4


def symmetry(landmarks: np.ndarray, matrix: np.ndarray) -> float:
    """1 for a frontal face, falling to 0 for a turned one, whose mirror image is not the
    other half of the face: from the 5 landmarks (eyes, nose, mouth corners) in the crop."""
    p = np.c_[landmarks, np.ones(len(landmarks))] @ np.asarray(matrix, np.float64).T
    offset = abs(p[2, 0] - (p[0, 0] + p[1, 0]) / 2)
    return float(np.clip((TURNED_NOSE_PX - offset) / (TURNED_NOSE_PX - FRONTAL_NOSE_PX), 0, 1))


def mirror_detail(
    image: np.ndarray, source: np.ndarray, painted: np.ndarray, matrix: np.ndarray, scale: float, strength: float = 1.0, sigma: float = MIRROR_SIGMA
) -> np.ndarray:
    """The (H,W,3) uint8 photo at output size with the detail of one face's painted pixels
    (`painted`, (H,W) float from `photo_hole`) taken from the other half of the face: the band
    finer than `sigma` crop px of `source` (the photo before paste-back), mirrored about the
    aligned face's vertical axis, replaces that band of the fill where the mirrored pixels are
    not painted themselves and are of the fill's colour (MATCH_LOG). The models' fill is 128 px
    worth of detail however large the face; a face is nearly symmetric, so its other half is the
    best clue for the rest (as the `mirror` stem of the inpainting model uses it at 128 px).
    Multiplicative (a log-domain band), so a differently lit other half lends its texture, not
    its light. `strength` (`symmetry`) fades it out on turned faces."""
    box = landing_box(matrix, SIZE, image.shape, scale)
    if box is None or strength <= 0:
        return image
    x0, y0, x1, y1, to_box = box
    hole = painted[y0:y1, x0:x1]
    if hole.max() <= 0:
        return image
    size = (x1 - x0, y1 - y0)
    a = np.vstack([to_box, [0, 0, 1]])  # crop -> box
    flip = np.array([[-1.0, 0, SIZE], [0, 1, 0], [0, 0, 1]])  # the FFHQ template's axis: x = 64.0-64.3 px of 128
    mirror = (a @ flip @ np.linalg.inv(a))[:2]  # a box pixel -> its mirror image in the box
    px = scale / matrix_scale(matrix)  # output px per crop px
    s = sigma * px

    def band(log: np.ndarray) -> np.ndarray:
        return log - cv2.GaussianBlur(log, (0, 0), s)

    def reflect(x: np.ndarray) -> np.ndarray:  # each box pixel gets its mirror image's value
        return cv2.warpAffine(x, mirror, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    source_log = np.log1p(source[y0:y1, x0:x1].astype(np.float32))
    mirrored = reflect(band(source_log))
    # the mirrored pixel painted, or near enough for its band to see the paint's edge: nothing to copy there
    seen = reflect(hole)
    seen = cv2.GaussianBlur(np.minimum(1.0, 4 * seen), (0, 0), 2 * s)
    log = np.log1p(image[y0:y1, x0:x1].astype(np.float32))
    smooth = cv2.GaussianBlur(log, (0, 0), MATCH_SIGMA * px)  # the output's: as relit
    apart = np.abs(smooth - reflect(smooth)).max(2)
    alike = np.clip(2 - apart / MATCH_LOG, 0, 1)
    weight = (strength * hole * np.clip(1 - 4 * seen, 0, 1) * alike)[..., None]
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(np.expm1(log + weight * (mirrored - band(log))) + 0.5, 0, 255).astype(np.uint8)
    return out


# A fill's grain (`fill_grain`). On 24 occluded portraits, full size / 512 px: face LPIPS 0.232 /
# 0.213 -> 0.190 / 0.185, SSIM 0.894 / 0.887 -> 0.883 / 0.879, PSNR 24.54 / 24.17 -> 24.52 / 24.15
# dB, dlib distance 0.482 / 0.514 -> 0.481 / 0.515 (another draw of the noise: 0.484 / 0.513).
# GRAIN_AMOUNT 0.7: LPIPS 0.192 / 0.186, 1.6: 0.200 / 0.195. A first version matched the band
# finer than 2 crop px (which the fill's own edges already fill) to the whole crop's median: next
# to no grain, LPIPS 0.227 / 0.208. Its cost is in `bench/pipeline_speed.py`'s occluded portrait (paste back).
GRAIN_SIGMA = 0.6  # output px: skin's grain is a little coarser than one pixel (JPEG, demosaicing)
GRAIN_SEED = 0  # the same photo always comes back the same
GRAIN_RING = 8  # crop px (at 128)
GRAIN_BAND = 0.5  # crop px: the band finer than this is what a 128 px fill cannot carry (its own edges reach 1 px)
GRAIN_AMOUNT = 1.0  # x the skin's median fine-band energy's root


def fill_grain(image: np.ndarray, painted: np.ndarray, matrix: np.ndarray, scale: float, sigma: float = GRAIN_BAND) -> np.ndarray:
    """The (H,W,3) uint8 photo at output size with grain on one face's painted pixels
    (`painted`: (H,W) float from `photo_hole`). The models' fill is 128 px worth of detail, so on
    a large face it is a smooth patch in textured skin: a smudge. Per pixel, the fill's log-domain
    band finer than `sigma` crop px is brought up to that band's median energy over the
    unpainted pixels around the paint (GRAIN_RING) with zero-mean luminance noise of the same
    band (grain matching, as retouchers do after a fill); what `mirror_detail` lent the hole
    already counts, so it gets little. On a small face the band is finer than a pixel: no grain."""
    box = landing_box(matrix, SIZE, image.shape, scale)
    if box is None:
        return image
    # past the crop too: paint there was filled by `fill_uncovered`, and grain that stopped at
    # the crop's edge would draw that edge across the fill
    x0, y0, x1, y1, _ = box
    gx, gy = (x1 - x0) // 2, (y1 - y0) // 2
    px = scale / matrix_scale(matrix)  # output px per crop px
    s = sigma * px
    r = max(1, round(GRAIN_RING * px))
    # the work is confined to the paint's bounding box there, with room for the ring and the blurs
    x0, y0, x1, y1 = max(0, x0 - gx), max(0, y0 - gy), min(image.shape[1], x1 + gx), min(image.shape[0], y1 + gy)
    ys, xs = np.nonzero(painted[y0:y1, x0:x1] > 0.01)
    if len(ys) == 0:
        return image
    margin = r + math.ceil(12 * s) + 1
    x0, y0, x1, y1 = max(x0, x0 + xs.min() - margin), max(y0, y0 + ys.min() - margin), min(x1, x0 + xs.max() + 1 + margin), min(y1, y0 + ys.max() + 1 + margin)
    hole = painted[y0:y1, x0:x1]
    # the skin to match: the unpainted pixels within GRAIN_RING crop px of the paint
    clear = hole <= 0.01
    ring = (cv2.distanceTransform(clear.astype(np.uint8), cv2.DIST_L2, 3) <= r) & clear
    if ring.sum() < 100:  # nothing to match
        return image

    def band(x: np.ndarray) -> np.ndarray:
        return x - cv2.GaussianBlur(x, (0, 0), s)

    region = image[y0:y1, x0:x1].astype(np.float32)
    energy = (band(np.log1p(region)) ** 2).mean(2)
    wanted = np.median(energy[ring])
    amplitude = hole * np.sqrt(np.maximum(wanted - cv2.GaussianBlur(energy, (0, 0), 4 * s), 0))
    # luminance grain, as skin's texture is mostly: the same in the three channels
    noise = np.random.default_rng(GRAIN_SEED).standard_normal(hole.shape).astype(np.float32)
    noise = band(cv2.GaussianBlur(noise, (0, 0), GRAIN_SIGMA))
    noise /= noise.std() + 1e-6
    out = image.copy()
    # in the log domain: log1p(x) + d, that is (1 + x) e^d - 1
    out[y0:y1, x0:x1] = np.clip((1 + region) * np.exp(GRAIN_AMOUNT * amplitude * noise)[..., None] - 0.5, 0, 255).astype(np.uint8)
    return out


def photo_hole(mask: np.ndarray, shape: tuple[int, ...], scale: float, close: float = 0) -> np.ndarray:
    """A painted (H,W) photo mask -> (H',W') float mask at the output `shape`: the whole stroke,
    its anti-aliased edge and JPEG ringing included (dilated 4 px of the photo), with a soft edge outside.
    The generator's own hole (`hole_mask`) is dilated further, so the band where its fill meets
    the face (where a fill is least sure) stays the photo's. close: photo px; gaps between
    strokes up to twice this wide count as painted (`GAP_CLOSE`)."""
    m = np.asarray(mask, np.uint8)
    if round(close) >= 1:
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * round(close) + 1,) * 2)
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, element)
    if m.shape != shape[:2]:
        m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    radius = round(PAINT_SPREAD * scale)
    m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)).astype(np.float32)
    return np.maximum(m, cv2.GaussianBlur(m, (0, 0), max(1.0, scale)))


def hole_mask(mask: np.ndarray, matrix: np.ndarray, dilate: int = 2) -> np.ndarray:
    """A painted (H,W) photo mask -> (128,128) float mask in the crop, covering the whole
    stroke: its anti-aliased edge included (dilated `dilate` px at 128, and at least 1 px past
    the PAINT_SPREAD photo px `photo_hole` replaces), with a 1 px soft edge outside. On a small
    face 4 photo px are several crop px: a hole only `dilate` px wider than the stroke left the
    model's copy of the face around it (with its bright rim) pasted into the painted band."""
    # mirrored past the photo's border exactly as `align` mirrors the photo (a stroke there is in the crop twice)
    m = cv2.warpAffine(np.asarray(mask, np.uint8) * 255, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101) > 0
    reach = max(dilate, int(np.ceil(PAINT_SPREAD * matrix_scale(matrix))) + 1)
    m = cv2.dilate(m.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    m = m.astype(np.float32)
    return np.maximum(m, cv2.GaussianBlur(m, (0, 0), 1.0))  # 1 over the dilated stroke, a soft edge outside
