"""The command line as a user runs it: hole masks from a folder, aligned crops, per-face lines."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .conftest import ASTRONAUT, face_files, load_rgb

REPO = Path(__file__).resolve().parents[1]


def run(*args):
    result = subprocess.run([sys.executable, "-m", "gan_face", "restore", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_masks_folder_fills_the_painted_holes(tmp_path):
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    (photos / "sub").mkdir(parents=True)
    (masks / "sub").mkdir(parents=True)
    astronaut = load_rgb(ASTRONAUT)
    painted = astronaut.copy()
    mask = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.line(mask, (150, 105), (280, 110), 255, 9, cv2.LINE_AA)  # across the eyes, past the face
    painted[mask > 0] = (255, 0, 255)
    Image.fromarray(painted).save(photos / "sub" / "a.jpg", quality=95)
    Image.fromarray(painted).save(photos / "b.png")  # no mask for this one: left as painted
    Image.fromarray(mask).save(masks / "sub" / "a.png")
    result = run(photos, "-o", out, "--upscale", "1", "--masks", masks)
    assert result.returncode == 0, result.stderr
    assert "face 1:" in result.stdout + result.stderr and "hole filled" in result.stdout + result.stderr
    rgb = np.asarray(Image.open(out / "sub" / "a.png")).astype(int)
    magenta = (rgb[..., 0] - rgb[..., 1] > 80) & (rgb[..., 2] - rgb[..., 1] > 80)
    near = cv2.dilate(mask, np.ones((31, 31), np.uint8)) > 0  # (the suit's patch far below is magenta-ish itself)
    assert magenta[near].sum() == 0  # JPEG ringing of the paint included (the mask is dilated)
    unmasked = np.asarray(Image.open(out / "b.png")).astype(int)
    assert ((unmasked[..., 0] - unmasked[..., 1] > 80) & (unmasked[..., 2] - unmasked[..., 1] > 80)).sum() > 500


def test_a_mask_of_the_wrong_size_is_named(tmp_path):
    Image.open(ASTRONAUT).convert("RGB").save(tmp_path / "x.png")
    (tmp_path / "masks").mkdir()
    Image.new("L", (100, 100), 255).save(tmp_path / "masks" / "x.png")
    result = run(tmp_path / "x.png", "-o", tmp_path / "out", "--masks", tmp_path / "masks")
    assert result.returncode == 1
    assert "mask" in result.stderr and "100x100" in result.stderr and "512x512" in result.stderr


def test_aligned_crops_skip_detection(tmp_path):
    crops = tmp_path / "crops"
    crops.mkdir()
    for i, path in enumerate(face_files(2)):
        Image.fromarray(load_rgb(path, 256)).save(crops / f"{i}.png")
    Image.new("RGB", (300, 200)).save(crops / "wide.png")  # not square: refused with a reason
    result = run(crops, "-o", tmp_path / "out", "--upscale", "2", "--aligned")
    assert result.returncode == 0, result.stderr
    for i in range(2):
        assert Image.open(tmp_path / "out" / f"{i}.png").size == (512, 512)
    assert "wide.png: an aligned face must be square" in result.stderr
    assert "2 photo(s) restored, 2 face(s) found, 1 skipped" in result.stdout


def test_the_installed_package_works_from_anywhere(tmp_path):
    # the README's set-up installs the package (pip install -e .): no need to be in the repo
    code = "from gan_face import FaceRestorer, UNetGenerator; print(FaceRestorer.__module__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "gan_face.pipeline" in result.stdout, result.stderr
    script = Path(sys.executable).parent / "gan-face"
    result = subprocess.run([str(script), "restore", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "--masks" in result.stdout
