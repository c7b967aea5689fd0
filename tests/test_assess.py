"""The per-face assessment on a sharp, a blurred, a noisy and a dark real face."""

import pytest
import torch

from gan_face import degradations
from gan_face.assess import assess
from gan_face.imageops import batch_from_unit


@pytest.fixture(scope="module")
def faces():
    from gan_face.dataset import AlignedFaces

    from .conftest import TEST_FACES

    data = AlignedFaces(TEST_FACES, 128, limit=12)
    return data.images.permute(0, 3, 1, 2).float() / 255


def findings(batch):
    return [assess(crop, 250).findings for crop in batch_from_unit(batch)]


def test_sharp_well_lit_faces_need_nothing(faces):
    assert sum(f == [] for f in findings(faces)) >= 10  # of 12 real test faces


def test_blur_noise_and_darkness_are_found(faces):
    g = torch.Generator().manual_seed(0)
    blurred = degradations.motion_blur(faces, g, length=(12, 20))
    noisy = degradations.gaussian_noise(faces, g, (12, 20))
    dark = degradations.lighting(faces, "low light")
    assert sum("blurred" in f for f in findings(blurred)) >= 10
    assert sum("noisy" in f for f in findings(noisy)) >= 11
    assert sum("dark" in f for f in findings(dark)) >= 11


def test_noise_the_sigma_estimate_misses_is_found_by_its_fine_detail(faces):
    # GFPGAN-mixed faces (noise, then JPEG): some carry more fine-band energy than any clean face
    # while their noise estimate stays under NOISY_ABOVE; they are noisy, so the detail model's
    from gan_face.assess import NOISY_ABOVE, ROUGH_ABOVE

    assert all(assess(crop, 250).detail < ROUGH_ABOVE for crop in batch_from_unit(faces))
    found = 0
    for seed in range(4):
        mixed = degradations.mixed(faces, torch.Generator().manual_seed(seed))
        found += sum(a.noisy and a.noise <= NOISY_ABOVE and a.needs_detail for a in (assess(c, 250) for c in batch_from_unit(mixed)))
    assert found >= 5  # of 48


def test_the_change_measures_tell_detail_from_light(faces):
    from gan_face.assess import fine_change, light_change

    noisy = degradations.gaussian_noise(faces, torch.Generator().manual_seed(0), (8, 8))
    darker = faces * 0.6  # the same detail, less light
    assert fine_change(faces, faces).max() == 0 and light_change(faces, faces).max() == 0
    assert fine_change(faces, noisy).min() > 5  # noise of 8 grey levels, most of it finer than 9 px
    assert light_change(faces, darker).min() > 0.3
    assert light_change(faces, noisy).max() < 0.5 * light_change(faces, darker).min()


def test_the_second_look_decides_only_with_both_measures():
    from gan_face.assess import FINE_CHANGE_ABOVE, LIGHT_CHANGE_BELOW, Assessment

    sound = Assessment(detail=0.42, noise=0.9, brightness=0.47, unevenness=0.1, face_px=120)
    assert sound.findings == [] and not sound.needs_detail  # no second look taken
    worn = Assessment(0.42, 0.9, 0.47, 0.1, 120, fine_change=FINE_CHANGE_ABOVE + 1, light_change=LIGHT_CHANGE_BELOW / 2)
    assert worn.findings == ["mildly damaged"] and worn.needs_detail
    relit = Assessment(0.42, 0.9, 0.47, 0.1, 120, fine_change=FINE_CHANGE_ABOVE + 1, light_change=LIGHT_CHANGE_BELOW * 2)
    assert relit.findings == [] and not relit.needs_detail


def test_a_small_face_is_low_resolution(faces):
    crop = batch_from_unit(faces[:1])[0]
    assert "small (60 px)" in assess(crop, 60).findings
    assert not any(f.startswith("small") for f in assess(crop, 400).findings)


def test_a_large_face_is_measured_where_its_damage_shows():
    # a portrait whose aligned crop is about 800 px: motion blur of 1.5-3 % of the photo's width and
    # pixel noise are averaged away in its 128 px crop; at 256 px and at the photo's resolution they show
    import numpy as np

    from gan_face import photo_damage
    from gan_face.face import FaceDetector, align, matrix_scale

    from .conftest import SHARED, load_rgb

    clean = load_rgb(SHARED / "data" / "photos" / "portraits" / "canada_003f.jpg")
    face = FaceDetector(download=False)(clean)[0]
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 6, clean.shape), 0, 255).astype(np.uint8)

    def measured(photo, large):
        crop, matrix = align(photo, face.landmarks, 128)
        px = 128 / matrix_scale(matrix)
        crops = (align(photo, face.landmarks, 256)[0], align(photo, face.landmarks, round(px))[0]) if large else None
        return assess(crop, px, crops)

    blurred = photo_damage.motion_blur(clean, 5)
    assert measured(clean, True).findings == []
    assert measured(blurred, True).findings == ["blurred"] and measured(blurred, True).needs_hires
    assert measured(noisy, True).findings == ["noisy"]
    assert measured(blurred, False).findings == measured(noisy, False).findings == []  # the 128 px crop misses both
