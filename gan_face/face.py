"""Face detection with 5 landmarks, alignment to the FFHQ template, paste-back.

Detector order (first that works):
1. facexlib RetinaFace-ResNet50: `detection_Resnet50_Final.pth` in the weights directory,
   else facexlib's own download (when `download=True`);
2. OpenCV `FaceDetectorYN` with YuNet: `face_detection_yunet_2026may.onnx` in the weights
   directory, else its opencv_zoo download checked against a pinned sha256.

Landmark order everywhere: image-left eye, image-right eye, nose, image-left mouth
corner, image-right mouth corner (facexlib's order).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gan_face.imageops import check_rgb
from gan_face.weights import fetch, weights_dir

log = logging.getLogger(__name__)

# FFHQ 5-point template for a 512 px crop (facexlib / GFPGAN).
FFHQ_TEMPLATE_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.19360], [256.63416, 314.01935], [201.26117, 371.41043], [313.08905, 371.15118]],
    dtype=np.float32,
)

# the detector sees the photo with its long side at most DETECT_SIDE px: at full size a 36 MP
# photo took 11 s and 3 GB in RetinaFace, and a face larger than its biggest anchors (about
# 500 px) is missed; a photo without any face found is tried again at each of RETRY_SIDES (as
# CodeFormer detects at 640 px; at 320 px the pixel noise of a heavily damaged photo is averaged
# away: YuNet found 20 of 24 portraits with the GFPGAN mix at 640 px, all 24 at 320).
# Faces below about 16 px at the detection size are not found.
DETECT_SIDE = 2048
RETRY_SIDES = (640, 320)

RETINAFACE_FILE = "detection_Resnet50_Final.pth"
RETINAFACE_URL = "https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth"
RETINAFACE_SHA256 = "6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d"
YUNET_FILE = "face_detection_yunet_2026may.onnx"
YUNET_URL = "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2026may.onnx"
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"


@dataclass
class Face:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in image pixels
    score: float
    landmarks: np.ndarray  # (5,2) x, y in the order above

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def center(self) -> np.ndarray:
        return (self.box[:2] + self.box[2:]) / 2


class FaceDetector:
    """Finds faces and their 5 landmarks in an (H,W,3) uint8 RGB image.

    Args:
        weights: folder searched first for detector files (default: `gan_face.weights.weights_dir()`).
        score_threshold: minimum detection confidence.
        download: allow downloading missing detector weights (checked against pinned sha256).
        backend: "auto", "retinaface" or "yunet".
    """

    def __init__(self, weights: str | Path | None = None, score_threshold: float = 0.7, download: bool = True, backend: str = "auto"):
        if backend not in ("auto", "retinaface", "yunet"):
            raise ValueError(f"backend must be 'auto', 'retinaface' or 'yunet', got {backend!r}")
        self.weights = Path(weights) if weights else weights_dir()
        self.score_threshold = score_threshold
        self.backend = None
        self._lock = threading.Lock()  # cv2.FaceDetectorYN keeps per-call state: one caller at a time
        errors = []
        if backend in ("auto", "retinaface"):
            try:
                self._retinaface = self._load_retinaface(download)
                self.backend = "retinaface"
            except Exception as e:  # noqa: BLE001 - any failure means: try the next detector
                errors.append(f"RetinaFace: {e}")
        if self.backend is None and backend in ("auto", "yunet"):
            try:
                path = fetch(YUNET_FILE, YUNET_URL, YUNET_SHA256, self.weights, download)
                self._yunet = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, 0.3, 5000)
                self.backend = "yunet"
            except Exception as e:  # noqa: BLE001
                errors.append(f"YuNet: {e}")
        if self.backend is None:
            raise RuntimeError("no face detector could be loaded: " + "; ".join(errors))
        log.info("face detector: %s (%s)", self.backend, "; ".join(errors) or "first choice")

    def _load_retinaface(self, download: bool):
        import torch
        from facexlib.detection.retinaface import RetinaFace

        path = fetch(RETINAFACE_FILE, RETINAFACE_URL, RETINAFACE_SHA256, self.weights, download)
        model = RetinaFace(network_name="resnet50", half=False, device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
        return model.eval()

    def __call__(self, image: np.ndarray) -> list[Face]:
        check_rgb(image)
        faces = self._detect_at(image, DETECT_SIDE)
        for side in RETRY_SIDES:  # a face too large for the anchors at the first size, or too noisy
            if faces or max(image.shape[:2]) <= side:
                break
            faces = self._detect_at(image, side)
        return faces

    def _detect_at(self, image: np.ndarray, side: int) -> list[Face]:
        """Detect on a copy with its long side at most `side` px; boxes and landmarks in `image`'s pixels."""
        factor = min(1.0, side / max(image.shape[:2]))
        if factor < 1:
            size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        with self._lock:
            faces = self._detect(bgr)
        return [Face(f.box / factor, f.score, f.landmarks / factor) for f in faces]

    def _detect(self, bgr: np.ndarray) -> list[Face]:
        if self.backend == "retinaface":
            import torch

            with torch.inference_mode():
                rows = self._retinaface.detect_faces(bgr, conf_threshold=self.score_threshold)
            faces = [Face(np.asarray(r[:4], np.float32), float(r[4]), np.asarray(r[5:15], np.float32).reshape(5, 2)) for r in rows]
        else:
            h, w = bgr.shape[:2]
            self._yunet.setInputSize((w, h))
            _, rows = self._yunet.detect(bgr)
            rows = [] if rows is None else rows
            # YuNet: x, y, w, h, then right eye, left eye (the subject's), nose, mouth corners, score
            faces = []
            for r in rows:
                box = np.array([r[0], r[1], r[0] + r[2], r[1] + r[3]], np.float32)
                faces.append(Face(box, float(r[14]), _order(r[4:14].reshape(5, 2))))
        return sorted(faces, key=lambda f: -f.score)


def _order(lm: np.ndarray) -> np.ndarray:
    """Put eyes and mouth corners image-left first (detectors differ in whose left they mean)."""
    lm = lm.astype(np.float32).copy()
    for a, b in ((0, 1), (3, 4)):
        if lm[a, 0] > lm[b, 0]:
            lm[[a, b]] = lm[[b, a]]
    return lm


def select_faces(faces: list[Face], image_shape, only_largest=False, only_center=False, min_size=0.0) -> list[Face]:
    """Filter detections: drop faces smaller than `min_size` px, keep only the largest or
    the one closest to the image centre if asked."""
    faces = [f for f in faces if f.size >= min_size]
    if faces and only_largest:
        faces = [max(faces, key=lambda f: f.size)]
    if faces and only_center:
        center = np.array([image_shape[1], image_shape[0]]) / 2
        faces = [min(faces, key=lambda f: float(np.linalg.norm(f.center - center)))]
    return faces


def template(size: int) -> np.ndarray:
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """2x3 similarity transform taking image pixels to the aligned crop of `size` px."""
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), template(size), method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("could not fit an alignment to these landmarks")
    return matrix


def matrix_scale(matrix: np.ndarray) -> float:
    """How many crop pixels one photo pixel becomes under an alignment matrix."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def align(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face to the FFHQ template. Returns (crop (size,size,3) uint8, 2x3 matrix)."""
    matrix = alignment_matrix(landmarks, size)
    scale = matrix_scale(matrix)
    src, m = image, matrix
    if scale < 0.8:  # large face: area-downscale first, so the warp does not alias
        h, w = image.shape[:2]
        src = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        fx, fy = src.shape[1] / w, src.shape[0] / h
        m = matrix @ np.diag([1 / fx, 1 / fy, 1.0])
    crop = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return crop, matrix


def rescale_matrix(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The alignment matrix for a crop `factor` times larger (e.g. a 2x generator output)."""
    return matrix * factor


def feather_mask(size: int) -> np.ndarray:
    """(size,size) float mask: 1 inside, falling smoothly to 0 at the crop's border."""
    mask = np.zeros((size, size), np.float32)
    margin = max(1, round(size * 0.06))
    mask[margin:-margin, margin:-margin] = 1
    sigma = size * 0.025
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def landing_box(matrix: np.ndarray, size: int, shape: tuple[int, ...], scale: float = 1.0):
    """Where a `size` px crop lands in an image of `shape` that is `scale` x the photo
    `matrix` aligned: (x0, y0, x1, y1, crop -> box matrix), or None if it lies outside.

    Warping only that box, not the whole frame, keeps paste-back cheap on photos with many faces."""
    h, w = shape[:2]
    # upscaled image -> original photo -> crop
    m = np.vstack([matrix, [0, 0, 1]]) @ np.diag([1 / scale, 1 / scale, 1.0])
    inverse = cv2.invertAffineTransform(m[:2])
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inverse.T
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1, inverse - [[0, 0, x0], [0, 0, y0]]


def paste_back(image: np.ndarray, crops: list[np.ndarray], matrices: list[np.ndarray], scale: float = 1.0) -> np.ndarray:
    """Warp each restored crop back into `image` and blend it with a feathered mask.

    image: the (possibly upscaled) photo, (H,W,3) uint8.
    crops: restored faces, square.
    matrices: original photo -> crop matrices (from `align`; see `rescale_matrix` when the
        restored crop is larger than the aligned one).
    scale: how much `image` was upscaled relative to the original photo.
    """
    out = image.astype(np.float32)
    for crop, matrix in zip(crops, matrices):
        size = crop.shape[0]
        box = landing_box(matrix, size, image.shape, scale)
        if box is None:
            continue  # the face lies outside the photo
        x0, y0, x1, y1, to_box = box
        warped = cv2.warpAffine(crop.astype(np.float32), to_box, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(feather_mask(size), to_box, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)[..., None]
        region = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = mask * warped + (1 - mask) * region
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
