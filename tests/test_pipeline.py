"""The whole-photo pipeline on a real photo, with the real detector."""

import numpy as np
import pytest
import torch
from PIL import Image

from gan_face import FaceRestorer, UNetGenerator
from gan_face.deblur import DeblurGenerator


@pytest.fixture(scope="module")
def restorer():
    torch.manual_seed(0)
    g = UNetGenerator(channels=[8, 16, 16], blocks=1)
    torch.nn.init.normal_(g.head.weight, 0, 0.05)  # a generator that changes faces
    return FaceRestorer(g, DeblurGenerator(num_filters=16, num_filters_fpn=32))


def test_restores_the_face_and_only_upscales_the_background(restorer, astronaut):
    result = restorer(astronaut, upscale=2)
    assert result.image.shape == (1024, 1024, 3)
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.before.shape == (128, 128, 3) and face.after.shape == (256, 256, 3)
    lanczos = np.asarray(Image.fromarray(astronaut).resize((1024, 1024), Image.LANCZOS)).astype(int)
    changed = np.abs(result.image.astype(int) - lanczos).sum(2) > 0
    x0, y0, x1, y1 = (face.box * 2).astype(int)
    assert changed[y0:y1, x0:x1].mean() > 0.9  # the face region is reconstructed
    far = np.ones_like(changed)
    far[max(0, y0 - 200) : y1 + 200, max(0, x0 - 200) : x1 + 200] = False
    assert not changed[far].any()  # the background is the plain upscale
    for stage in ("detect+align", "deblur", "generator", "upscale faces", "upscale background", "paste back", "total"):
        assert stage in result.timings


def test_stages_can_be_switched_off(restorer, astronaut):
    plain = restorer(astronaut, upscale=1, use_deblur=False, use_generator=False)
    assert plain.image.shape == astronaut.shape
    full = restorer(astronaut, upscale=1)
    assert not np.array_equal(plain.image, full.image)


def test_fidelity_one_keeps_the_input_face(restorer, astronaut):
    faithful = restorer(astronaut, upscale=1, use_deblur=False, fidelity=1.0)
    plain = restorer(astronaut, upscale=1, use_deblur=False, use_generator=False)
    assert np.abs(faithful.image.astype(int) - plain.image.astype(int)).max() <= 1


def test_user_mask_reaches_the_generator(restorer, astronaut):
    mask = np.zeros(astronaut.shape[:2], bool)
    mask[90:130, 190:260] = True  # over the eyes
    with_mask = restorer(astronaut, upscale=1, mask=mask)
    without = restorer(astronaut, upscale=1)
    assert not np.array_equal(with_mask.image, without.image)


def test_no_face_means_upscaled_only(restorer):
    sky = np.full((200, 300, 3), (90, 140, 220), np.uint8)
    result = restorer(sky, upscale=2)
    assert result.faces == [] and result.image.shape == (400, 600, 3)
    assert any("no face" in n for n in result.notes)


def test_bad_arguments(restorer, astronaut):
    with pytest.raises(ValueError, match="uint8 RGB"):
        restorer(astronaut.astype(np.float32))
    with pytest.raises(ValueError, match="fidelity"):
        restorer(astronaut, fidelity=2)


def test_from_pretrained_without_weights_says_untrained(tmp_path):
    r = FaceRestorer.from_pretrained(generator=tmp_path / "none", deblur=tmp_path / "none", realesrgan_background=False)
    assert r.untrained
    assert any("untrained" in n for n in r.notes)


def test_time_limit_stops_a_slow_request(restorer, astronaut):
    with pytest.raises(TimeoutError, match="limit"):
        restorer(astronaut, time_limit=0.0)
    assert restorer(astronaut, upscale=1, time_limit=600).image.shape == astronaut.shape
