"""Awkward and broken files through the Python API and the CLI (the app: test_app.py)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_face import FaceRestorer, UNetGenerator
from gan_face.imageio import ImageError, finish, load_photo

from .bad_inputs import ERROR, make_corpus
from .conftest import ASTRONAUT

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder)


@pytest.fixture(scope="module")
def restorer():
    torch.manual_seed(0)
    return FaceRestorer(UNetGenerator(channels=[8, 16, 16], blocks=1))


def test_python_api_gives_a_result_or_a_one_line_message(corpus, restorer):
    folder, expect = corpus
    for name, expectation in expect.items():
        try:
            photo = load_photo(folder / name)
            result = restorer(photo.rgb, upscale=1)
        except (ImageError, ValueError) as e:
            assert expectation == ERROR, f"{name}: unexpected error {e}"
            assert "\n" not in str(e) and len(str(e)) < 300, name
            continue
        assert expectation != ERROR, f"{name} should have been refused"
        out = finish(photo, result.image)
        assert out.shape[:2] == photo.rgb.shape[:2], name
        if photo.alpha is not None:
            assert out.ndim == 3 and out.shape[2] == 4, name  # transparency kept
            assert np.array_equal(out[..., 3], photo.alpha)
        if photo.gray:
            assert out.ndim == 2, name  # gray stays gray


def test_limits_are_enforced_before_decoding(tmp_path):
    Image.new("RGB", (3000, 2000)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="the limit is 5 megapixels"):
        load_photo(tmp_path / "big.png", max_pixels=5_000_000)
    with pytest.raises(ImageError, match="MB; the limit is"):
        load_photo(ASTRONAUT, max_bytes=10_000)


def test_exif_orientation_is_honoured(corpus):
    folder, _ = corpus
    upright = np.asarray(Image.open(ASTRONAUT).convert("RGB")).astype(int)
    for orientation in range(1, 9):
        photo = load_photo(folder / f"exif_orientation_{orientation}.jpg")
        assert photo.rgb.shape == upright.shape
        assert np.abs(photo.rgb.astype(int) - upright).mean() < 4, orientation  # JPEG noise only


def test_faces_found_where_there_are_faces(corpus, restorer):
    folder, _ = corpus
    count = lambda name: len(restorer.detector(load_photo(folder / name).rgb))  # noqa: E731
    assert count("no_face.png") == count("black.png") == count("white.png") == 0
    assert count("thirty_faces.png") >= 25
    assert count("face_at_border.png") == 1
    assert count("cmyk.jpg") == count("gray16.png") == count("float32.tiff") == 1


def test_cli_restores_the_good_files_and_names_the_bad(corpus, tmp_path):
    folder, expect = corpus
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "gan_face", "restore", str(folder), "-o", str(out), "--upscale", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name, expectation in expect.items():
        written = out / f"{Path(name).stem}.png"
        if expectation == ERROR:
            assert not written.exists(), name
            assert f"skipped {folder / name}:" in result.stderr, name
        else:
            assert written.is_file(), name
    assert not list(out.glob("*.tmp*"))  # nothing half-written
    errors = sum(e == ERROR for e in expect.values())
    assert f"{len(expect) - errors} photo(s) restored" in result.stdout
    assert f"{errors} skipped" in result.stdout


def test_cli_gives_inputs_of_the_same_name_their_own_outputs(tmp_path):
    from gan_face.__main__ import collect

    astronaut = Image.open(ASTRONAUT).convert("RGB").resize((256, 256))
    for name in ("a/x.jpg", "a/x.png", "b/x.jpg", "b/deep/x.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        astronaut.save(tmp_path / name)
    inputs = [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "b" / "x.jpg")]
    names = [str(out) for _, out in collect(inputs)]
    # sub-folders are kept; a clash appends the extension, then a number
    assert names == ["x.png", "x_png.png", "deep/x.png", "x_jpg.png", "x_jpg_2.png"]

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "gan_face", "restore", *inputs, "-o", str(out), "--upscale", "1", "--no-deblur"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == sorted(names)
    assert "5 photo(s) restored" in result.stdout
