"""FaceRestorer: the whole-photo pipeline.

    photo -> 1. detect + align (5 landmarks -> FFHQ template crops at 128 px, painted masks too)
          -> 2. assess each face (blur, noise, size, light; where those pass, a second look
                by the detail model and the generator): which stages it needs
          -> 3. deblur (DeblurGAN-v2) the blurred faces; generator (U-Net) on every face;
                faces larger than 256 px in the photo with damaged detail: NL-means at the
                photo's resolution if noisy, then the high-resolution U-Net on 256 px crops
                (blurred ones: their detail finer than that sharpened after step 4)
          -> 4. upscale the photo (Lanczos, or Real-ESRGAN)
          -> 5. paste back the correction, not the 128 px face (`gan_face.transfer`): the
                lighting gain spread past the face, the residual added at the face's own
                resolution, painted holes filled and matched to the photo around them,
                their fine detail mirrored from the face's other half (outside the
                crops: inpainted)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from gan_face import baselines, transfer
from gan_face.assess import DETAIL_MAX_PX, LARGE_DETAIL_PX, Assessment, assess, fine_change, light_change
from gan_face.deblur import DeblurGenerator
from gan_face.face import Face, FaceDetector, align, feather_mask, landing_box, matrix_scale, select_faces, template
from gan_face.generator import UNetGenerator
from gan_face.imageio import MAX_OUTPUT_PIXELS
from gan_face.imageops import batch_to_unit, check_rgb, signed_to_unit, unit_to_signed
from gan_face.upscale import Upscaler

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_GENERATOR = REPO / "pretrained" / "gan-face-generator"
DEFAULT_INPAINT = REPO / "pretrained" / "gan-face-inpaint"
DEFAULT_INPAINT_DAMAGED = REPO / "pretrained" / "gan-face-inpaint-damaged"
DEFAULT_DEBLUR = REPO / "pretrained" / "gan-face-deblur"
DEFAULT_DETAIL = REPO / "pretrained" / "gan-face-detail"
DEFAULT_HIRES = REPO / "pretrained" / "gan-face-hires"
LARGE_NOISE_PX = 1024  # a large face's noise is measured on its crop at the photo's resolution, at most this
# the share of the high-resolution model's residual that is pasted: on the first 8 harness portraits
# with the GFPGAN mix (after NL-means) all of it gave face LPIPS 0.527 but dlib identity distance
# 0.371, half 0.536 and 0.322, none 0.557 and 0.339 (the model was trained without an identity
# loss: windows are not faces). Set on the harness's own photos: a first cut
HIRES_STRENGTH = 0.5


@dataclass
class RestoredFace:
    box: np.ndarray  # x0, y0, x1, y1 in the input photo
    score: float
    before: np.ndarray  # aligned crop as detected (128 px), uint8
    after: np.ndarray  # the same crop of the restored photo, at the face's output size (at most 512 px)
    assessment: Assessment | None = None  # what was found (None: not assessed, e.g. no models ran)
    stages: list[str] = field(default_factory=list)  # what was done to it

    @property
    def summary(self) -> str:
        """One line: what was found and what was done ("blurred, dark -> detail, generator")."""
        found = ", ".join(self.assessment.findings) if self.assessment and self.assessment.findings else "nothing to fix"
        return f"{found} -> {', '.join(self.stages) or 'left as it was'}"


@dataclass
class Restoration:
    image: np.ndarray  # the whole restored photo, uint8 RGB
    faces: list[RestoredFace]
    timings: dict[str, float]  # seconds per stage
    notes: list[str] = field(default_factory=list)  # what the user should know (e.g. no face found)

    def describe(self, known: list[str] = ()) -> list[str]:
        """One line per face (what was found and done), then the notes not in `known` (e.g. the
        model notes a batch prints once): what the CLI prints and the app shows for a photo."""
        return [f"face {i + 1}: {face.summary}" for i, face in enumerate(self.faces)] + [f"note: {n}" for n in self.notes if n not in known]


def load_model(cls, source, name: str, default: Path):
    """`cls.from_pretrained(source)` for a local folder or Hub repo id. None when `source` is
    None, or is the shipped `default` folder and that is absent (a checkout without weights);
    any other path that does not exist is an error naming it."""
    if source is None:
        return None
    text = str(source)
    looks_local = Path(text).exists() or text.startswith((".", "/", "~")) or text.count("/") != 1
    if looks_local and not Path(text).expanduser().exists():
        if Path(text) == default:
            return None
        raise ValueError(f"the {name} folder {text} does not exist")
    try:
        return cls.from_pretrained(str(Path(text).expanduser()) if looks_local else text, strict=True)
    except Exception as e:  # hub, json and safetensors errors
        raise ValueError(f"could not load the {name} from {source}: {e}") from e


class FaceRestorer:
    """Restores every face of a photo and returns the whole photo.

    Args:
        generator: the trained U-Net (None: faces are only deblurred/upscaled).
        inpaint: a U-Net trained with occlusions, for faces with painted holes (None: the
            generator fills them). Separate models for separate jobs: trained in the same
            batches, hole filling kept the restoration tasks from learning.
        inpaint_damaged: a U-Net trained with holes in blurred, low-resolution, noisy and badly
            lit faces, run instead of `inpaint` on holed faces whose assessment finds them
            damaged too (None: `inpaint` fills those as well; see `plan`). Trained so, it fills
            such faces better and holes in sound faces worse than `inpaint`.
        detail: a U-Net trained on blur, low resolution and noise only (no lighting, no holes),
            run instead of the generator on faces whose detail is damaged, before it on such faces
            that are dark or bright (None: the generator does them; see `plan`). Trained beside
            lighting, the generator learnt little of the detail tasks.
        hires: a U-Net trained like `detail` on sharp 256 px faces, run at 256 px on faces larger
            than that in the photo whose detail is damaged (None: they keep their own detail;
            see `plan`). A 128 px model's correction, enlarged 3-7x onto such a face, cannot
            reach the blur and noise at the face's own scale.
        deblur: the DeblurGAN-v2 stage (None: skipped).
        detector: a FaceDetector.
        background: Upscaler for the photo (Real-ESRGAN or Lanczos).
    """

    def __init__(
        self,
        generator: UNetGenerator | None,
        deblur: DeblurGenerator | None = None,
        detector: FaceDetector | None = None,
        background: Upscaler | None = None,
        notes: list[str] | None = None,
        inpaint: UNetGenerator | None = None,
        detail: UNetGenerator | None = None,
        hires: UNetGenerator | None = None,
        inpaint_damaged: UNetGenerator | None = None,
    ):
        self.generator = generator.eval() if generator is not None else None
        self.deblur = deblur.eval() if deblur is not None else None
        self.inpaint = inpaint.eval() if inpaint is not None else None
        self.inpaint_damaged = inpaint_damaged.eval() if inpaint_damaged is not None else None
        self.detail = detail.eval() if detail is not None else None
        self.hires = hires.eval() if hires is not None else None
        self.detector = detector or FaceDetector(download=False)
        self.background = background or Upscaler(None, scale=2)
        self.crop_size = transfer.SIZE  # the models' working resolution
        self.notes = list(notes or [])  # about the loaded models (shown by the app)

    @classmethod
    def from_pretrained(
        cls,
        generator: str | Path | None = DEFAULT_GENERATOR,
        deblur: str | Path | None = DEFAULT_DEBLUR,
        weights: str | Path | None = None,
        realesrgan_background: bool = True,
        download: bool = False,
        inpaint: str | Path | None = DEFAULT_INPAINT,
        detail: str | Path | None = DEFAULT_DETAIL,
        hires: str | Path | None = DEFAULT_HIRES,
        inpaint_damaged: str | Path | None = DEFAULT_INPAINT_DAMAGED,
    ) -> FaceRestorer:
        """Load every stage: the models from local folders or Hub repo ids, the detector and
        Real-ESRGAN from the weights folder (or their checked downloads if `download`)."""
        notes = []
        g = load_model(UNetGenerator, generator, "generator", DEFAULT_GENERATOR)
        if g is None:
            notes.append("untrained generator: no trained weights were found, faces are not reconstructed")
            g = UNetGenerator()  # zero-initialised head: returns its input unchanged
        d = load_model(DeblurGenerator, deblur, "deblurring model", DEFAULT_DEBLUR)
        if d is None and deblur is not None:
            notes.append("no trained DeblurGAN-v2 weights: the deblurring stage is off")
        detector = FaceDetector(weights, download=download)
        background = Upscaler.default(weights, download=download) if realesrgan_background else Upscaler(None, scale=4)
        if realesrgan_background and not background.is_model:
            notes.append("no Real-ESRGAN weights: the background is upscaled with Lanczos")
        inpainter = load_model(UNetGenerator, inpaint, "inpainting generator", DEFAULT_INPAINT)
        detailer = load_model(UNetGenerator, detail, "detail generator", DEFAULT_DETAIL)
        large = load_model(UNetGenerator, hires, "high-resolution detail generator", DEFAULT_HIRES)
        damaged = load_model(UNetGenerator, inpaint_damaged, "inpainting generator for damaged faces", DEFAULT_INPAINT_DAMAGED)
        return cls(g, d, detector, background, notes=notes, inpaint=inpainter, detail=detailer, hires=large, inpaint_damaged=damaged)

    @property
    def untrained(self) -> bool:
        return any(n.startswith("untrained") for n in self.notes)

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        faces: list[Face] | None = None,
        aligned: bool = False,
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
        faces: detections to use instead of running the detector (e.g. made before the photo
            was damaged on purpose).
        aligned: the photo is one face already aligned to the FFHQ template (any size, square).
        upscale: output size / input size (1 = same size).
        realesrgan_background: upscale the photo with Real-ESRGAN (slow) instead of Lanczos.
        fidelity: 0 = the models' reconstruction, 1 = keep the input's detail (outside holes).
        lighting: 1 = the generator's lighting correction, 0 = keep the input's lighting.
        time_limit: seconds; past it a TimeoutError stops the work between stages (and
            between Real-ESRGAN tiles).
        """
        check_rgb(image)
        if not (0 <= fidelity <= 1 and 0 <= lighting <= 1):
            raise ValueError(f"fidelity and lighting must be in [0, 1], got {fidelity} and {lighting}")
        if not 1 <= upscale <= 8:
            raise ValueError(f"upscale must be between 1 and 8, got {upscale}")
        out_pixels = image.shape[0] * image.shape[1] * upscale**2
        if out_pixels > MAX_OUTPUT_PIXELS:  # before any work: the memory and time it would take
            raise ValueError(
                f"at x{upscale:g} this {image.shape[1]}x{image.shape[0]} photo would become {out_pixels / 1e6:.0f} megapixels; "
                f"the limit is {MAX_OUTPUT_PIXELS / 1e6:.0f}: choose a smaller output scale or photo"
            )
        if mask is not None and np.shape(mask) != image.shape[:2]:
            raise ValueError(f"the mask is {np.shape(mask)[1::-1]} but the photo is {image.shape[1]}x{image.shape[0]}: they must match")
        if aligned and image.shape[0] != image.shape[1]:
            raise ValueError(f"an aligned face must be square, got {image.shape[1]}x{image.shape[0]}")
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
        if aligned:
            size = image.shape[0]
            faces = [Face(np.array([0, 0, size, size], np.float32), 1.0, template(size))]
        elif faces is None and mask is not None and np.any(mask):
            # a painted occluder can hide the face from the detector: detect on the photo with
            # the paint inpainted (OpenCV Telea), then again with it filled by the inpainting
            # model; the models still see the holes as holes
            painted = np.asarray(mask) > 0
            filled = baselines.inpaint(image, painted)
            faces = self.detector(filled)
            if self.inpaint is not None and use_generator:
                faces = found_again(self.detector, self.inpaint, filled, painted, faces)
        elif faces is None:
            faces = self.detector(image)
        faces = select_faces(faces, image.shape, only_largest, only_center, min_face)
        crops, matrices, holes = [], [], []
        for face in faces:
            crop, matrix = align(image, face.landmarks, self.crop_size)
            crops.append(crop)
            matrices.append(matrix)
            hole = transfer.hole_mask(mask, matrix) if mask is not None else None
            holes.append(hole if hole is not None and hole.max() > 0.5 else None)
        lap("detect+align")
        notes = [] if faces else ["no face found: the photo was only upscaled"]

        # 2. assess: which faces need which stages
        models = {"deblur": self.deblur, "inpaint": self.inpaint, "inpaint_damaged": self.inpaint_damaged, "generator": self.generator, "detail": self.detail, "hires": self.hires}
        have = {name for name, model in models.items() if model is not None and (use_deblur if name == "deblur" else use_generator)}
        assessments = []
        for face, crop, matrix, hole in zip(faces, crops, matrices, holes):
            face_px = self.crop_size / matrix_scale(matrix)
            if hole is not None:  # assessed at 128 px with its holes inpainted
                assessments.append(assess(unpainted(crop, hole), face_px))
                continue
            where = None
            if face_px > DETAIL_MAX_PX and "hires" in have:  # measured where its damage shows
                where = (align(image, face.landmarks, LARGE_DETAIL_PX)[0], align(image, face.landmarks, min(round(face_px), LARGE_NOISE_PX))[0])
            assessments.append(assess(crop, face_px, where))
        source = None
        if faces:  # one extra 128 px pass for each face it looks at (6-17 ms): the other pass is its output (`run_models`)
            source = batch_to_unit(np.stack(crops))
            assessments, looked = second_look({name: models[name] for name in have}, source, assessments, [h is not None for h in holes])
        stages = [plan(a, h is not None, have) for a, h in zip(assessments, holes)]
        lap("assess")

        # 3. the models, at 128 px, on the faces that need them
        def hole_batch(rows: list[int]) -> torch.Tensor:  # (len(rows),1,128,128) soft holes, 0 where none
            blank = np.zeros((self.crop_size,) * 2, np.float32)
            return torch.from_numpy(np.stack([blank if holes[i] is None else holes[i] for i in rows]))[:, None].clamp(0, 1)

        restored = None
        if faces:  # the models take a binary mask: the dilated stroke
            restored = run_models(models, source, (hole_batch(list(range(len(faces)))) > 0.5).float(), stages, lap, looked)
        else:
            for stage in STAGES:
                lap(stage)
        # large faces: the high-resolution model on their 256 px crops, after NL-means on the
        # noisy ones at the photo's own resolution (the noise lives there: see `plan`)
        large = [i for i, s in enumerate(stages) if "hires" in s]
        large_corrections = []
        if large:
            noisy = [matrices[i] for i in large if "denoise" in stages[i]]
            if noisy:
                image = denoise_faces(image, noisy)
            lap("denoise")
            hires_crops, hires_matrices = zip(*(align(image, faces[i].landmarks, transfer.HIRES_SIZE) for i in large))
            hires_source = batch_to_unit(np.stack(hires_crops))
            hires_out = run_stage(self.hires, hires_source, hires_source.new_zeros(len(large), 1, *hires_source.shape[-2:]))
            log_gain, residual = (hwc(t) for t in transfer.split(hires_out, hires_source))
            keep = 1 - fidelity
            for k, matrix in enumerate(hires_matrices):
                large_corrections.append(transfer.Correction(matrix, lighting * keep * log_gain[k], residual[k] * 255 * keep * HIRES_STRENGTH))
            lap("hires")

        # 4. the photo at output size
        if upscale == 1:
            background = image
        elif realesrgan_background and self.background.is_model:
            background = self.background(image, outscale=upscale, check=check_time)
        else:
            background = Upscaler(None, scale=upscale)(image)
        lap("upscale background")
        scale = background.shape[1] / image.shape[1]
        blurred = [matrices[i] for i, s in enumerate(stages) if "sharpen" in s]
        if blurred and fidelity < 1:
            background = sharpen_faces(background, blurred, scale, SHARPEN_AMOUNT * (1 - fidelity))
            lap("sharpen")

        # 5. paste back: the relighting (spread past the faces) and each face's residual and
        # hole fill; then painted pixels no fill covers are inpainted from the fills around them
        # gaps between strokes the model filled (inside its hole) on the largest holed face
        close = max((transfer.GAP_CLOSE / matrix_scale(matrices[i]) for i, h in enumerate(holes) if h is not None), default=0)
        painted = transfer.photo_hole(mask, background.shape, scale, close) if mask is not None else None
        worked = [i for i, s in enumerate(stages) if s and "hires" not in s]
        corrections = large_corrections
        if worked:
            hole_weights = hole_batch(worked)
            log_gain, residual = transfer.split(restored[worked], source[worked], hole_weights)
            # inside the generator's (dilated) holes the residual is fill minus paint: the fill
            # itself comes in through `painted` below, the photo's own pixels stay around it,
            # without the bright rim the models leave just outside a hole's edge
            residual = residual * (1 - transfer.rim(hole_weights))
            # on a face whose detail is intact the residual only costs detail and identity (on the
            # relit portraits: LPIPS 0.022 -> 0.017, dlib distance 0.10 -> 0.05 without it): relight
            # only. A hole is no reason to keep it: its fill comes in through `filled` (on 24 occluded
            # portraits at 512 px: dlib distance 0.522 -> 0.514, LPIPS 0.212 either way); but where it
            # is clipped it has no detail to keep
            residual = residual * detail_kept([assessments[i] for i in worked], source[worked])
            keep = 1 - fidelity  # fidelity 1: the input as it was (holes are filled regardless)
            log_gain, residual = hwc(log_gain), hwc(residual) * 255 * keep
            # a hole's fill is the generator's output with the lighting correction that is kept,
            # shifted to meet the photo around it with no colour step (on 24 occluded portraits:
            # face LPIPS 0.289 -> 0.268, PSNR 23.47 -> 23.89 dB; `transfer.seamless_fill`)
            filled = hwc(restored[worked]) * 255 * np.exp((lighting * keep - 1) * log_gain)
            for k, i in enumerate(worked):
                if holes[i] is not None:
                    around = crops[i] * np.exp(lighting * keep * log_gain[k])  # the photo there, relit as it is pasted
                    filled[k] = transfer.seamless_fill(filled[k], around, holes[i] > 0.5)
            corrections = corrections + [
                transfer.Correction(matrices[i], lighting * keep * log_gain[k], residual[k], filled[k] if holes[i] is not None else None)
                for k, i in enumerate(worked)
            ]
        out = transfer.paste(background, corrections, scale, painted) if corrections else background
        if painted is not None:
            out, outside = fill_uncovered(out, painted > 0.5, [c for c in corrections if c.fill is not None], scale)
            if outside:
                notes.append(f"{outside} painted pixels outside the face crops were inpainted smoothly from the pixels around them")
        # a hole's detail finer than the models' 128 px, from the other half of the face. On all 48
        # occluded portraits, full size / 512 px: face LPIPS 0.266 / 0.245 -> 0.229 / 0.208 (cv2.inpaint
        # 0.246 / 0.217); dlib distance 0.520 / 0.521 -> 0.542 / 0.524 (on the first 24: 0.564 -> 0.542)
        for i in worked:
            if holes[i] is not None:
                out = transfer.mirror_detail(out, background, painted, matrices[i], scale, transfer.symmetry(faces[i].landmarks, matrices[i]))
                out = transfer.fill_grain(out, painted, matrices[i], scale)  # what the mirror left smooth
        lap("paste back")
        timings["total"] = sum(timings.values())
        results = []
        for i, face in enumerate(faces):
            done = [s if s != "generator" or assessments[i].needs_detail else "generator (lighting only)" for s in stages[i]]
            if any(s in done for s in FILLERS) and holes[i] is not None:
                done.append("hole filled")
            results.append(RestoredFace(face.box, face.score, crops[i], face_view(out, matrices[i], scale, self.crop_size), assessments[i], done))
        return Restoration(image=out, faces=results, timings=timings, notes=self.notes + notes)


REDETECT_ROUNDS = 1


def found_again(detector, inpaint: UNetGenerator, filled: np.ndarray, mask: np.ndarray, faces: list[Face], rounds: int = REDETECT_ROUNDS) -> list[Face]:
    """`faces` found on `filled` (the photo with its (H,W) bool `mask` inpainted by OpenCV Telea),
    found again, `rounds` times, on the photo with each face's hole filled by the inpainting model
    at 128 px instead: Telea's streaks across a large occluder mislead the detector's landmarks,
    and the model's fill, a face drawn at the first guess, draws the second guess towards where the
    visible face is. Under the harness's occluders, with `gan-face-inpaint` of 2026-12-08, the mean
    landmark error in eye distances went 0.180 -> 0.129 (full size) and 0.159 -> 0.087 (512 px) on
    the first 24 portraits, 0.133 -> 0.126 and 0.127 -> 0.103 on the other 24 (a second round:
    0.119 / 0.079 and 0.116 / 0.093, but on the 48 photos' face scores PSNR -0.13 / +0.12 dB and
    LPIPS level: not worth its time). A face the detector does not find again keeps its landmarks."""
    for _ in range(rounds if faces else 0):
        work = filled.copy()
        for face in faces:
            crop, matrix = align(filled, face.landmarks, 128)
            box = landing_box(matrix, 128, work.shape)
            if box is None:
                continue
            hole = torch.from_numpy(transfer.hole_mask(mask, matrix) > 0.5).float()[None, None]
            with torch.no_grad():
                fill = hwc(run_stage(inpaint, batch_to_unit(crop[None]), hole) * 255)[0].round().astype(np.uint8)
            x0, y0, x1, y1, to_box = box  # only the crop's box is warped, not the whole photo
            inside = cv2.warpAffine(np.ones((128, 128), np.uint8), to_box, (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST) > 0
            where = mask[y0:y1, x0:x1] & inside
            work[y0:y1, x0:x1][where] = cv2.warpAffine(fill, to_box, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)[where]
        found = detector(work)
        again = []
        for face in faces:
            twin = max(found, key=lambda f: box_overlap(face.box, f.box), default=None)
            again.append(twin if twin is not None and box_overlap(face.box, twin.box) > 0.3 else face)
        faces = again
    return faces


def box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def unpainted(crop: np.ndarray, hole: np.ndarray | None) -> np.ndarray:
    """The crop a face is assessed on: with its holes (soft, (n,n)) inpainted (OpenCV Telea), so
    paint neither hides a dark face nor reads as damage. The pipeline and the harness both use it."""
    return crop if hole is None else baselines.inpaint(crop, hole > 0.5)


def hwc(t: torch.Tensor) -> np.ndarray:
    """(B,C,H,W) tensor -> (B,H,W,C) contiguous array."""
    return np.ascontiguousarray(t.permute(0, 2, 3, 1).numpy())


def blend_into_faces(image: np.ndarray, matrices: list[np.ndarray], scale: float, operation) -> np.ndarray:
    """`operation(region, matrix)` -> uint8 region, on the region of each aligned crop
    (`matrices`: photo -> 128 px crop) of `image` (the photo at `scale` x), blended in with the
    crop's feather. Only the crops' boxes are worked in float: a 36 MP photo stays uint8."""
    out = image.copy()
    for matrix in matrices:
        box = landing_box(matrix, transfer.SIZE, image.shape, scale)
        if box is None:
            continue
        x0, y0, x1, y1, to_box = box
        f = cv2.warpAffine(feather_mask(transfer.SIZE), to_box, (x1 - x0, y1 - y0))[..., None]
        done = operation(np.ascontiguousarray(image[y0:y1, x0:x1]), matrix)
        blended = f * done + (1 - f) * out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out


# Unsharp masking's amount on large blurred faces. On 24 motion-blurred portraits (full size /
# 512 px, face LPIPS): 1.0 -> 0.288 / 0.202, 1.3 -> 0.281 / 0.194, 1.6 -> 0.278 / 0.189, 2.2 ->
# 0.278 / 0.185 but PSNR 0.7 dB below the blurred input's (1.6: 0.2 dB below); `unsharp mask`
# on the whole photo 0.287 / 0.199. A larger sigma (1 crop px instead of 0.5) scored worse. On all
# 48 portraits, 1.0 -> 1.6: 0.311 -> 0.304 / 0.228 -> 0.216 (unsharp mask 0.307 / 0.219; on the 24
# not used to choose it, level with unsharp mask: 0.329 / 0.243 against 0.328 / 0.239), PSNR 0.3 dB lower.
SHARPEN_AMOUNT = 1.6


def sharpen_faces(image: np.ndarray, matrices: list[np.ndarray], scale: float, amount: float = SHARPEN_AMOUNT) -> np.ndarray:
    """Unsharp masking (`baselines.unsharp`) of each face's region (`blend_into_faces`), sigma
    half a pixel of the high-resolution model's crop, so the detail sharpened is the detail
    finer than that model sees. On the first 8 harness portraits, motion-blurred, it took face
    LPIPS from 0.371 to 0.326 and dlib identity distance from 0.104 to 0.094, where the model
    alone changed neither (its correction lives below the face's finest detail)."""

    def sharpen(region: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        sigma = 0.5 * scale / matrix_scale(matrix) * transfer.SIZE / transfer.HIRES_SIZE  # output px per half a 256 px crop px
        return baselines.unsharp(region, sigma, amount)

    return blend_into_faces(image, matrices, scale, sharpen)


def denoise_faces(image: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
    """NL-means (`baselines.denoise`) of each face's region at the photo's resolution (`blend_into_faces`)."""
    return blend_into_faces(image, matrices, 1.0, lambda region, matrix: baselines.denoise(region))


def face_view(image: np.ndarray, matrix: np.ndarray, scale: float, crop: int, largest: int = 512) -> np.ndarray:
    """The aligned face crop of the output photo, at the face's own output size (<= `largest`)."""
    size = int(np.clip(round(crop * scale / matrix_scale(matrix)), crop, largest))
    m = matrix * (size / crop) @ np.diag([1 / scale, 1 / scale, 1.0])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA if size < crop else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


FILL_RES = 1024  # px: the longest side `fill_uncovered` interpolates at


def fill_uncovered(image: np.ndarray, painted: np.ndarray, fills: list[transfer.Correction], scale: float) -> tuple[np.ndarray, int]:
    """Fill the painted pixels of `image` (the photo at output size with the holes' fills pasted;
    `painted` (H,W) bool, from `transfer.photo_hole`) that no fill fully covers
    (`transfer.fill_cover`): a painted or synthetic occluder must not stay in the photo where
    the models' fill does not reach. Filled after the fills are in, so the part of a stroke past
    a crop's edge continues the fill beside it, by a smooth interpolation of the pixels around it
    (`transfer.pull_push`): OpenCV's Telea inpainting drew streaks there that met in a V below a
    chin. Returns (image, such pixels)."""
    h, w = image.shape[:2]
    covered = np.zeros((h, w), np.float32)
    for c in fills:
        box = landing_box(c.matrix, c.size, image.shape, scale)
        if box is not None:
            x0, y0, x1, y1, to_box = box
            cover = cv2.warpAffine(transfer.fill_cover(c.size), to_box, (x1 - x0, y1 - y0))
            covered[y0:y1, x0:x1] = np.maximum(covered[y0:y1, x0:x1], cover)
    left = painted & (covered < 0.999)
    if not left.any():
        return image, 0
    ys, xs = np.nonzero(left)
    pad = 32  # photo px of context around the uncovered pixels
    y0, y1, x0, x1 = max(0, ys.min() - pad), min(h, ys.max() + pad + 1), max(0, xs.min() - pad), min(w, xs.max() + pad + 1)
    box, unknown = image[y0:y1, x0:x1], left[y0:y1, x0:x1]
    # a stroke across much of a 36 MP photo: interpolated at most FILL_RES px long and uint8 at
    # full size, as float32 pyramids of the whole box would take gigabytes (the fill is smooth
    # there); a smaller box is interpolated as it is (the resizes are then copies)
    low = min(1.0, FILL_RES / max(box.shape[:2]))
    size = (max(1, round(box.shape[1] * low)), max(1, round(box.shape[0] * low)))
    known = cv2.resize((~unknown).astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    small = cv2.resize(np.where(unknown[..., None], 0, box).astype(np.uint8), size, interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32) / np.maximum(known, 1e-6)[..., None]
    guess = transfer.pull_push(small, known)  # a low-res pixel part known counts as that part
    guess = cv2.resize(np.clip(guess + 0.5, 0, 255).astype(np.uint8), box.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    out = image.copy()
    out[y0:y1, x0:x1][unknown] = guess[unknown]
    return out, int(left.sum())


STAGES = ("deblur", "inpaint", "inpaint_damaged", "detail", "generator")  # the order the 128 px model stages run in
FILLERS = ("inpaint", "inpaint_damaged", "generator")  # the stages that fill a face's holes (the first in its plan)


@torch.inference_mode()
def second_look(models: dict, faces: torch.Tensor, assessments: list[Assessment], holed: list[bool]) -> tuple[list[Assessment], dict]:
    """`assessments`, with the faces the measures passed looked at again by the models: each
    face with no hole, no damage found, neither dark nor bright and at most DETAIL_MAX_PX wide
    goes through the detail model and the generator, and its assessment records how much they
    change it (`Assessment.model_sees_damage`). faces: (N,3,128,128) aligned, in [0,1]; models:
    stage name -> model. Of the harness's 480 faces the measures pass 67 GFPGAN-mixed and 33
    motion-blurred ones (neither dark nor bright), on which the detail model scores 1.8 and 2.6
    dB above the generator. The pipeline and the 128 px harness both call this before `plan`.

    Also returns the outputs it computed, face index -> {stage: face}: each face it looks at is
    planned one of those two stages alone (it has no hole, and no blur for DeblurGAN-v2), so
    `run_models` takes that output instead of running the stage again."""
    if not {"detail", "generator"} <= set(models):
        return assessments, {}
    rows = [
        i
        for i, (a, hole) in enumerate(zip(assessments, holed))
        if not (hole or a.needs_detail or a.dark or a.bright or a.face_px > DETAIL_MAX_PX)
    ]
    if not rows:
        return assessments, {}
    x = faces[rows]
    detail, generator = run_stage(models["detail"], x), run_stage(models["generator"], x)
    fine, light = fine_change(x, detail), light_change(x, generator)
    out = list(assessments)
    for k, i in enumerate(rows):
        out[i] = replace(out[i], fine_change=fine[k].item(), light_change=light[k].item())
    return out, {i: {"detail": detail[k], "generator": generator[k]} for k, i in enumerate(rows)}


def plan(assessment: Assessment, hole: bool, have: set[str]) -> list[str]:
    """The model stages one face goes through, in the order of STAGES, from what its
    assessment found and which stages `have` models. The pipeline and the 128 px harness both
    call this, then `run_models`.

    - a face with painted holes: the inpainting generator, then the generator if its light looks
      wrong, else the detail model if its detail is damaged (the inpainting model was trained on
      holes alone); without an inpainting model the generator, which fills and relights. A
      holed face that is also damaged (detail or light) is filled by the model trained on such
      faces, when there is one: in place of the inpainting model on 240 harness faces it gained
      1.0 dB with every damage at once ("all") and lost 0.55 dB inside the holes of sound faces;
    - a face whose detail is damaged (blurred, noisy, small, or mildly damaged as the
      `second_look` finds): the detail model, on the face as it came (it was trained on raw
      damaged faces); then the generator if the face is dark or bright. On 48 test faces the
      detail model gains 1.0-1.2 dB over the generator on motion blur, x4 and the GFPGAN mix;
      run after the generator it gains nothing (so it runs first); the generator, trained beside lighting,
      "relights" some naturally lit blurred faces badly (34 -> 16 dB). Uneven light does not
      send such a face to the generator: the measure flags 13 % of naturally lit faces (32 of
      the harness's first 240 clean ones), and on the first 240 faces sending blurred,
      uneven ones to the detail model too gained 0.15 dB on motion blur, 0.14 on x4 and
      0.16 on the GFPGAN mix, with every lighting row within 0.02 dB. Dark ones went to
      DeblurGAN-v2 and the generator until the harness's 480 faces showed the detail model
      first doing better on every damage (PSNR, those faces alone): motion blur 11 faces
      25.41 -> 27.65 dB, x4 12 faces 27.83 -> 28.88, the mix 10 faces 23.70 -> 26.32, low
      light 12 faces 23.38 -> 25.49, the three other lightings' 5 faces within 0.3 dB;
    - a face too large for that (its crop wider than DETAIL_MAX_PX in the photo), blurred or
      noisy where it shows (`assess`), well lit: the high-resolution model on its 256 px crop,
      after NL-means at the photo's resolution when noisy (per-pixel noise there is above any
      256 px model's reach: its correction is enlarged 2-4x), else followed by unsharp masking
      of the detail finer than its crop (`sharpen_faces`);
    - every other face: the generator, after DeblurGAN-v2 when blurred and there is no detail
      model (the light measures miss milder uneven lighting that the generator does correct;
      where the detail is intact only its lighting is kept: FaceRestorer's step 5)."""
    lit_wrong = assessment.dark or assessment.bright or assessment.uneven
    if hole and "inpaint" in have:
        damaged = assessment.needs_detail or lit_wrong
        fill = "inpaint_damaged" if damaged and "inpaint_damaged" in have else "inpaint"
        if lit_wrong and "generator" in have:
            return [fill, "generator"]
        return [fill, "detail"] if assessment.needs_detail and "detail" in have else [fill]
    if hole:
        return ["generator"] if "generator" in have else []
    if assessment.needs_detail and "detail" in have:
        relight = (assessment.dark or assessment.bright) and "generator" in have
        return ["detail", "generator"] if relight else ["detail"]
    if assessment.needs_hires and not lit_wrong and "hires" in have:
        return ["denoise", "hires"] if assessment.noisy else ["hires", "sharpen"]
    # a large face keeps its own detail (the generator's residual is dropped): deblurring it at
    # 128 px would only skew the lighting gain (a top-lit 512 px portrait: LPIPS 0.021 -> 0.030)
    deblur = assessment.blurred and assessment.face_px <= DETAIL_MAX_PX and "deblur" in have
    stages = ["deblur"] if deblur else []
    return stages + ["generator"] if "generator" in have else stages


def run_models(models: dict, faces: torch.Tensor, masks: torch.Tensor | None, plans: list[list[str]], lap=None, done: dict | None = None) -> torch.Tensor:
    """Each face's planned stages (`plan`) on (N,3,128,128) aligned faces in [0,1], stage by
    stage in the order of STAGES, each a batch of the faces planned for it (`run_stage`).
    models: stage name -> model; masks: (N,1,128,128) binary holes, or None: given to the stage
    that fills a face's holes (the first of FILLERS in its plan); the stages
    after it see the filled face. done: face index -> {stage: output} computed already on these
    faces with no holes (`second_look`'s): a face planned for one such stage alone takes it.
    `lap(stage)` is called after each stage."""
    out = faces.clone()
    fillers = [next((s for s in FILLERS if s in p), None) for p in plans]
    plans = list(plans)
    for i, outputs in (done or {}).items():
        if len(plans[i]) == 1 and plans[i][0] in outputs:
            out[i], plans[i] = outputs[plans[i][0]], []
    for stage in STAGES:
        rows = [i for i, p in enumerate(plans) if stage in p]
        if rows:
            holes = None if masks is None else masks[rows] * torch.tensor([float(fillers[i] == stage) for i in rows]).view(-1, 1, 1, 1)
            out[rows] = run_stage(models[stage], out[rows], holes)
        if lap is not None:
            lap(stage)
    return out


def detail_kept(assessments: list[Assessment], faces: torch.Tensor) -> torch.Tensor:
    """(N,1,n,n): 1 where the models' residual (their detail) is pasted on the (N,3,n,n) source
    faces in [0,1]: all of a face whose detail is damaged (`needs_detail`); on a face whose detail
    is intact, which keeps its own and takes only the lighting gain, its clipped pixels
    (`transfer.saturated`: they have no detail of their own to keep; on the 24 portraits under the
    "frontal" flash, with the twenty-first session's generator, full size / 512 px: face PSNR
    26.19 -> 26.50 / 26.11 -> 26.40 dB, LPIPS 0.039 -> 0.037 / 0.029 -> 0.026, dlib distance 0.124
    -> 0.110 / 0.125 -> 0.126; the other lightings within 0.03 dB). FaceRestorer's paste-back and
    `as_pasted` both apply it."""
    damaged = torch.tensor([float(a.needs_detail) for a in assessments]).view(-1, 1, 1, 1)
    return torch.maximum(damaged, transfer.saturated(faces))


def as_pasted(restored: torch.Tensor, faces: torch.Tensor, holes: torch.Tensor | None, assessments: list[Assessment]) -> torch.Tensor:
    """`run_models`' (N,3,128,128) output as FaceRestorer's paste-back keeps it, at 128 px: a face
    whose detail is intact (not `needs_detail`) takes only the lighting gain of its restoration
    (`transfer.split`) and keeps its own detail where it has any (`detail_kept`), outside its holes
    (N,1,128,128; their fill is the models'). The 128 px harness scores this; the paste-back
    proper also works at the photo's resolution (`transfer.paste`)."""
    log_gain, residual = transfer.split(restored, faces, holes)
    out = (torch.exp(log_gain) * faces + detail_kept(assessments, faces) * residual).clamp(0, 1)
    return out if holes is None else holes * restored + (1 - holes) * out


def run_stage(model, faces: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """One model stage on (B,3,128,128) aligned faces in [0,1]: DeblurGAN-v2, or the generator
    with its (B,1,128,128) occlusion mask. The pipeline and the evaluation harness both call this."""
    x = unit_to_signed(faces)
    y = model(x) if isinstance(model, DeblurGenerator) else model(x, mask)
    return signed_to_unit(y).clamp(0, 1)
