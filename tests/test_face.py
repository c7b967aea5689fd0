"""Detection, alignment and paste-back on real photos."""

import cv2
import numpy as np
import pytest

from gan_face.face import FaceDetector, align, feather_mask, paste_back, rescale_matrix, select_faces, template

from .conftest import face_files, load_rgb


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(download=False)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-12))


def test_detects_the_one_face_of_the_astronaut(detector, astronaut):
    faces = detector(astronaut)
    assert len(faces) == 1
    # the face is at x=178, y=63, w=90, h=113 (shared/weights/README.md)
    assert np.allclose(faces[0].box, [178, 63, 268, 176], atol=6)
    left_eye, right_eye = faces[0].landmarks[:2]
    assert left_eye[0] < right_eye[0]  # image-left eye first


def test_detects_faces_in_most_test_photos(detector):
    files = face_files(200)
    found = sum(bool(detector(load_rgb(p))) for p in files)
    # measured: 200 of 200 with YuNet
    assert found / len(files) >= 0.97


def test_landmarks_land_on_the_template(detector, astronaut):
    errors = []
    for image in [astronaut] + [load_rgb(p) for p in face_files(40)]:
        face = detector(image)[0]
        _, matrix = align(image, face.landmarks, 128)
        moved = np.c_[face.landmarks, np.ones(5)] @ matrix.T
        errors.append(np.linalg.norm(moved - template(128), axis=1).mean())
    # a similarity transform cannot fit every face exactly; on average within 2 px at 128 px
    assert np.mean(errors) < 2.0
    assert errors[0] < 2.0  # the astronaut


def test_align_then_paste_back_reproduces_the_face(detector, astronaut):
    face = detector(astronaut)[0]
    crop, matrix = align(astronaut, face.landmarks, 512)  # larger than the face: no information lost
    out = paste_back(astronaut, [crop], [matrix])
    inverse, size = cv2.invertAffineTransform(matrix), astronaut.shape[1::-1]
    inside = cv2.warpAffine(feather_mask(512), inverse, size) > 0.99
    assert inside.sum() > 5000
    assert psnr(out[inside], astronaut[inside]) > 35
    outside = cv2.warpAffine(np.ones((512, 512), np.float32), inverse, size) == 0
    assert np.array_equal(out[outside], astronaut[outside])  # nothing outside the crop changes


def test_paste_back_into_an_upscaled_photo_has_no_seam(detector, astronaut):
    face = detector(astronaut)[0]
    _, matrix = align(astronaut, face.landmarks, 128)
    # a flat grey photo upscaled x2 and a flat white 256 px face: the blend must ramp, not step
    grey = np.full((1024, 1024, 3), 100, np.uint8)
    white = np.full((256, 256, 3), 200, np.uint8)
    out = paste_back(grey, [white], [rescale_matrix(matrix, 2)], scale=2)
    row = out[int(face.center[1] * 2), :, 0].astype(int)
    assert row.max() == 200 and row.min() == 100  # fully replaced inside, untouched outside
    ramp = np.flatnonzero((row > 100) & (row < 200))
    assert len(ramp) >= 2 * 10  # at least 10 px of fade on each side
    assert np.abs(np.diff(row)).max() <= 12  # no step anywhere


def test_paste_back_of_faces_cut_by_the_border_matches_a_whole_frame_blend():
    # paste_back warps only the box each face lands in; it must equal blending whole frames,
    # also for faces hanging over the photo's edges or lying entirely outside it
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (200, 300, 3), np.uint8)
    crops = [rng.integers(0, 256, (64, 64, 3), np.uint8) for _ in range(4)]
    angle = np.deg2rad(20)
    rotation = 1.3 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrices = [np.c_[rotation, -rotation @ np.array(at)] for at in ([-20, 50], [150, 90], [270, 170], [900, 900])]
    expected = photo.astype(np.float32)
    for crop, matrix in zip(crops, matrices):
        inverse = cv2.invertAffineTransform(matrix)
        warped = cv2.warpAffine(crop.astype(np.float32), inverse, (300, 200), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(feather_mask(64), inverse, (300, 200), flags=cv2.INTER_LINEAR)[..., None]
        expected = mask * warped + (1 - mask) * expected
    out = paste_back(photo, crops, matrices)
    assert np.abs(out.astype(int) - np.clip(expected + 0.5, 0, 255).astype(int)).max() <= 1
    assert not np.array_equal(out[:, :40], photo[:, :40])  # the face cut by the left edge was pasted


def test_select_faces():
    from gan_face.face import Face

    def face(x, size):
        return Face(np.array([x, 10, x + size, 10 + size], np.float32), 0.9, np.zeros((5, 2), np.float32))

    faces = [face(0, 20), face(100, 50), face(180, 30)]
    assert select_faces(faces, (100, 220, 3), only_largest=True)[0].size == 50
    assert select_faces(faces, (100, 220, 3), only_center=True)[0].box[0] == 100
    assert [f.size for f in select_faces(faces, (100, 220, 3), min_size=25)] == [50, 30]


def test_detector_rejects_bad_images(detector):
    with pytest.raises(ValueError, match="uint8 RGB"):
        detector(np.zeros((10, 10), np.uint8))
    assert detector(np.zeros((64, 64, 3), np.uint8)) == []


def test_detector_is_safe_to_share_between_threads(detector):
    # the app runs two requests at a time on one detector; YuNet keeps per-call state
    from concurrent.futures import ThreadPoolExecutor

    images = [load_rgb(p) for p in face_files(16)]
    sequential = [len(detector(im)) for im in images]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda im: len(detector(im)), images * 3))
    assert threaded == sequential * 3


def test_retinaface_backend_loads_a_local_checkpoint_and_falls_back_when_it_is_broken(tmp_path, astronaut):
    # No RetinaFace-ResNet50 weights may be downloaded here: a randomly initialised network in
    # the upstream file layout (DataParallel "module." keys) exercises loading and parsing;
    # what it detects is meaningless, so only the shape of the answer is checked.
    import torch
    from facexlib.detection.retinaface import RetinaFace

    from gan_face.face import RETINAFACE_FILE, YUNET_FILE
    from gan_face.weights import weights_dir

    torch.manual_seed(0)
    network = RetinaFace(network_name="resnet50", half=False, device="cpu")
    torch.save({"module." + k: v for k, v in network.state_dict().items()}, tmp_path / RETINAFACE_FILE)
    detector = FaceDetector(weights=tmp_path, backend="retinaface", download=False)
    assert detector.backend == "retinaface"
    faces = detector(astronaut[:128, :128])
    assert faces  # random weights fire everywhere: the parsing ran
    assert all(f.box.shape == (4,) and f.landmarks.shape == (5, 2) for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)

    # a broken checkpoint under that name: "auto" says why and uses YuNet
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / RETINAFACE_FILE).write_bytes(b"not a checkpoint")
    (broken / YUNET_FILE).symlink_to(weights_dir() / YUNET_FILE)
    detector = FaceDetector(weights=broken, download=False)
    assert detector.backend == "yunet"
    assert len(detector(astronaut)) == 1
    with pytest.raises(RuntimeError, match="RetinaFace"):
        FaceDetector(weights=broken, backend="retinaface", download=False)


def test_a_face_under_heavy_noise_is_found_at_a_smaller_detection_size(detector):
    # the GFPGAN mix on a whole portrait: YuNet misses the face at 2048 and 640 px, finds it at 320
    from gan_face import photo_damage
    from gan_face.face import DETECT_SIDE

    from .conftest import SHARED

    clean = load_rgb(SHARED / "data" / "photos" / "portraits" / "canada_003f.jpg")
    truth = max(detector(clean), key=lambda f: f.size)
    damaged = photo_damage.mixed(clean, 2033)
    assert not detector._detect_at(damaged, DETECT_SIDE) and not detector._detect_at(damaged, 640)
    found = detector(damaged)
    assert len(found) == 1
    assert np.abs(found[0].landmarks - truth.landmarks).max() < 0.1 * truth.size  # the same face, landmarks close
