"""Carrying a 128 px correction back to the photo: the frequency split, the spread of the
lighting gain past the face, and holes filled over the whole painted stroke."""

import cv2
import numpy as np
import pytest
import torch

from gan_face import transfer
from gan_face.face import align
from gan_face.imageops import batch_to_unit


@pytest.fixture(scope="module")
def face(astronaut):
    from gan_face.face import FaceDetector

    return FaceDetector(download=False)(astronaut)[0]


def crop_tensor(image, face, size=transfer.SIZE):
    crop, matrix = align(image, face.landmarks, size)
    return batch_to_unit(crop[None]), matrix


def correct(image, face, restored_fn, band=256, size=transfer.SIZE):
    """The pipeline's step 5 for one face whose `size` px crop the 'model' maps by restored_fn."""
    source, matrix = crop_tensor(image, face, size)
    log_gain, residual = transfer.split(restored_fn(source), source)
    hwc = lambda t: t[0].permute(1, 2, 0).numpy()
    correction = transfer.Correction(matrix, hwc(log_gain), hwc(residual) * 255)
    return transfer.paste(image, [correction], 1.0, band=band), matrix


@pytest.mark.parametrize("size", [transfer.SIZE, transfer.HIRES_SIZE])
def test_no_correction_gives_the_photo_back_exactly(astronaut, face, size):
    out, _ = correct(astronaut, face, lambda x: x.clone(), size=size)
    assert np.array_equal(out, astronaut)


def test_the_bands_join_without_a_trace(astronaut, face):
    # band by band (memory) gives the photo that one band for the whole photo gives
    relight = lambda x: (x * 1.5 + 0.05 * torch.sin(x * 20)).clamp(0, 1)
    whole, _ = correct(astronaut, face, relight, band=512)
    for band in (7, 100):
        banded, _ = correct(astronaut, face, relight, band=band)
        assert np.abs(banded.astype(int) - whole).max() <= 1


@pytest.mark.parametrize("size", [transfer.SIZE, transfer.HIRES_SIZE])
def test_a_pure_tone_change_keeps_the_photos_detail(astronaut, face, size):
    # a 2x larger photo than the crop sees: its finest detail exists only in the photo
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    from gan_face.face import Face

    scaled = Face(face.box * 2, face.score, face.landmarks * 2)
    out, matrix = correct(big, scaled, lambda x: x * 0.5, size=size)
    core = round(size * 0.75)
    inside = cv2.warpAffine(np.ones((core, core), np.float32), cv2.invertAffineTransform(matrix), (1024, 1024)) > 0.5  # the crop's core
    # the face is half as bright and has all of its high frequencies, halved: within rounding
    # of the ideal, far closer to it than the detail a face enlarged from the crop would have
    halved = np.floor(big * 0.5 + 0.5).astype(np.float32)
    err = np.abs(out.astype(np.float32) - halved)[inside]
    assert np.mean(err <= 1) > 0.99
    soft = cv2.resize(cv2.resize(halved, (256, 256), interpolation=cv2.INTER_AREA), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    assert err.mean() < 0.2 * np.abs(soft - halved)[inside].mean()


def test_a_relit_face_shows_no_step_at_the_paste_boundary(astronaut, face):
    # a flat photo and a face brightened 1.8x: the gain must fade past the crop, not stop at it
    grey = np.full_like(astronaut, 60)
    out, _ = correct(grey, face, lambda x: (x * 1.8).clamp(0, 1))
    row = out[int(face.center[1]), :, 1].astype(int)
    assert row.max() > 100  # the face is relit
    assert np.abs(np.diff(row)).max() <= 2  # no step anywhere along the row (60 -> 108 over >= 30 px; 1 is rounding)
    column = out[:, int(face.center[0]), 1].astype(int)
    assert np.abs(np.diff(column)).max() <= 2


def test_the_gain_spreads_into_the_surroundings(astronaut, face):
    # a face the model darkens to half: its neck darkens with it, and far away the photo
    # takes the faces' mean gain (a whole photo underexposed or overexposed is corrected as one)
    grey = np.full_like(astronaut, 200)
    out, _ = correct(grey, face, lambda x: x * 0.5)
    gain = out / 200.0
    x0, y0, x1, y1 = face.box.astype(int)
    assert gain[(y0 + y1) // 2, (x0 + x1) // 2, 1] == pytest.approx(0.5, abs=0.02)  # the face
    assert gain[min(y1 + (y1 - y0) // 2, 511), (x0 + x1) // 2, 1] == pytest.approx(0.5, abs=0.05)  # the neck
    assert gain[500, 10, 1] == pytest.approx(0.5, abs=0.05)  # a far corner


def test_hole_mask_covers_the_antialiased_stroke(astronaut, face):
    _, matrix = crop_tensor(astronaut, face)
    painted = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.line(painted, (200, 110), (260, 120), 255, 6, cv2.LINE_AA)
    hole = transfer.hole_mask(painted > 0, matrix)
    stroke = cv2.warpAffine(painted, matrix, (128, 128), flags=cv2.INTER_LINEAR) > 0
    assert hole[stroke].min() > 0.99  # every pixel the stroke touches is fully a hole
    # and not much more: the stroke grown by the paint's spread (about 3 crop px on this 512 px photo)
    assert hole.max() <= 1.0 and (hole > 0).sum() < 5 * stroke.sum()


@pytest.mark.parametrize("crop_px_per_photo_px", [1.0, 2.0])  # faces of 128 and 64 px in the photo
def test_the_models_hole_covers_what_the_fill_replaces(crop_px_per_photo_px):
    # every photo pixel the paste replaces with the fill (`photo_hole`: the stroke and the
    # PAINT_SPREAD px its JPEG ringing reaches) must lie inside the model's own hole: else the
    # fill there is the model's copy of the paint and of its rim (a dotted seam on small faces)
    k = crop_px_per_photo_px
    matrix = np.array([[k, 0, -100 * k], [0, k, -100 * k]])  # photo (100, 100) -> crop (0, 0)
    painted = np.zeros((800, 800), np.uint8)
    painted[100 + round(40 / k) : 100 + round(60 / k), 100 + round(30 / k) : 100 + round(90 / k)] = 1
    hole = transfer.hole_mask(painted > 0, matrix)
    replaced = transfer.photo_hole(painted, painted.shape, 1.0) > 0.5
    ys, xs = np.nonzero(replaced)
    crop_x, crop_y = (k * (xs - 100)).round().astype(int), (k * (ys - 100)).round().astype(int)
    inside = (crop_x >= 0) & (crop_x < 128) & (crop_y >= 0) & (crop_y < 128)
    assert hole[crop_y[inside], crop_x[inside]].min() > 0.99


@pytest.mark.parametrize("photo_px_per_crop_px", [4, 6])  # faces of 512 and 768 px in the photo
def test_a_narrow_gap_between_strokes_is_filled_within_the_models_hole(photo_px_per_crop_px):
    # a painted hand on a large face: the photo left between two fingers (wider than the paste's
    # PAINT_SPREAD reaches from both sides) read as a row of dots in the smooth fill
    s = photo_px_per_crop_px
    matrix = np.array([[1 / s, 0, 0], [0, 1 / s, 0]])  # photo -> crop
    painted = np.zeros((128 * s, 128 * s), np.uint8)
    painted[40 * s : 60 * s, 20 * s : 50 * s] = 1
    painted[40 * s : 60 * s, 53 * s : 80 * s] = 1  # 3 crop px from the first
    painted[40 * s : 60 * s, 90 * s : 110 * s] = 1  # 10 crop px from the second
    row = 50 * s
    unclosed = transfer.photo_hole(painted, painted.shape, 1.0) > 0.5
    assert not unclosed[row, 50 * s : 53 * s].all()  # what was left before
    replaced = transfer.photo_hole(painted, painted.shape, 1.0, close=transfer.GAP_CLOSE * s) > 0.5
    assert replaced[row, 50 * s : 53 * s].all()
    assert not replaced[row, 85 * s]  # a wide gap stays the photo's
    hole = transfer.hole_mask(painted > 0, matrix)
    ys, xs = np.nonzero(replaced)
    assert hole[ys // s, xs // s].min() > 0.99  # the model filled all of it


def test_split_of_a_darkened_face_is_a_gain():
    x = torch.rand(1, 3, 128, 128) * 0.5 + 0.25
    log_gain, residual = transfer.split(x * 0.25, x)
    assert torch.allclose(log_gain, torch.full_like(log_gain, np.log(0.25)), atol=0.01)
    assert residual.abs().max() < 0.005


def test_rim_grows_a_hole_by_its_width_and_nothing_else():
    holes = torch.zeros(2, 1, 128, 128)
    holes[0, :, 40:60, 50:70] = 1
    rim = transfer.rim(holes, width=3)
    assert torch.equal(rim[1], torch.zeros(1, 128, 128))  # no hole, no rim
    assert (rim[0, 0, 37:63, 47:73] == 1).all()  # the hole and 3 px around it
    assert rim[0, 0, 35, 60] < 0.5 and rim[0, 0, 30, 60] == 0 and rim[0, 0, 50, 80] == 0  # then a soft edge, then nothing


def test_pull_push_keeps_the_known_values_and_fills_the_rest_smoothly():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    known = np.zeros((64, 64), np.float32)
    known[:, :8] = known[:, -8:] = 1
    values[:, :8], values[:, -8:] = 40, 200  # a left and a right edge
    out = transfer.pull_push(values, known)
    assert np.array_equal(out[known > 0], values[known > 0])
    middle = out[32, 8:-8, 0]
    assert middle[0] < 90 and middle[-1] > 150 and np.all(np.diff(middle) > 0)  # a ramp between them
    assert np.array_equal(transfer.pull_push(values, np.ones_like(known)), values)


def test_seamless_fill_removes_the_colour_step_and_keeps_the_fills_structure():
    yy, xx = np.mgrid[:64, :64]
    photo = np.stack([100 + xx, 120 + 0 * xx, 90 + yy], -1).astype(np.float32)  # a smooth face
    hole = (xx - 32) ** 2 + (yy - 32) ** 2 < 15**2
    pattern = 20.0 * np.sin(xx / 2.0)[..., None] * np.ones(3)  # the fill's own detail
    fill = (photo + pattern + np.array([30, -25, 15])).astype(np.float32)  # ...in the wrong colour
    out = transfer.seamless_fill(fill, photo, hole)
    inside = hole & ((xx - 32) ** 2 + (yy - 32) ** 2 < 12**2)
    # the offset is gone (23 grey levels on average before); what is left is the part of the
    # pattern the edge of the fill happened to carry
    assert np.abs((out - photo - pattern)[inside]).mean() < 5
    assert np.array_equal(out[~hole], fill[~hole])  # only the hole changes
    assert np.array_equal(transfer.seamless_fill(fill, photo, np.zeros_like(hole)), fill)


def test_mirror_detail_lends_a_hole_the_texture_of_the_faces_other_half():
    import cv2

    rng = np.random.default_rng(0)
    half = cv2.GaussianBlur(rng.uniform(60, 200, (256, 129, 3)).astype(np.float32), (0, 0), 1.5)
    clean = np.concatenate([half, half[:, 127:0:-1]], 1)  # a 256 px "face" symmetric about x = 128, as the template's axis
    matrix = np.array([[0.5, 0, 0], [0, 0.5, 0]])  # photo -> its 128 px aligned crop
    painted = np.zeros((256, 256), np.float32)
    painted[80:150, 30:100] = 1  # a hole on the left half only
    source = clean.copy()
    source[painted > 0] = (255, 0, 255)  # the paint, as the photo has it before paste-back
    soft = np.where(painted[..., None] > 0, cv2.GaussianBlur(clean, (0, 0), 6), clean)  # a fill with no fine detail
    soft = np.clip(soft + 0.5, 0, 255).astype(np.uint8)
    out = transfer.mirror_detail(soft, np.clip(source, 0, 255).astype(np.uint8), painted, matrix, 1.0)

    def band(x):
        log = np.log1p(x.astype(np.float32))
        return log - cv2.GaussianBlur(log, (0, 0), 2 * transfer.MIRROR_SIGMA)

    inner = (slice(90, 140), slice(40, 90))  # inside the hole, clear of its edge
    truth, before, after = band(clean)[inner].ravel(), band(soft)[inner].ravel(), band(out)[inner].ravel()
    assert np.std(before) < 0.3 * np.std(truth)  # the fill was smooth
    assert np.corrcoef(after, truth)[0, 1] > 0.9  # now it has the other half's texture, in place
    assert 0.7 < np.std(after) / np.std(truth) < 1.3
    assert np.array_equal(out[painted == 0], soft[painted == 0])  # nothing outside the hole changes

    both = painted.copy()
    both[80:150, 156:226] = 1  # the mirror image painted too: nothing to borrow
    out = transfer.mirror_detail(soft, np.clip(source, 0, 255).astype(np.uint8), both, matrix, 1.0)
    assert np.abs(out[inner].astype(int) - soft[inner]).max() <= 1

    # the mirror image is other stuff (dark hair beside a skin-coloured fill): nothing to borrow
    dark = np.ones((256, 256, 1), np.float32)
    dark[70:160, 146:236] = 0.3
    out = transfer.mirror_detail(np.clip(soft * dark + 0.5, 0, 255).astype(np.uint8), np.clip(source * dark, 0, 255).astype(np.uint8), painted, matrix, 1.0)
    assert np.abs(out[inner].astype(int) - soft[inner]).max() <= 1


def test_fill_grain_gives_a_smooth_fill_the_grain_of_the_skin_around_it():
    import cv2

    rng = np.random.default_rng(1)
    skin = np.repeat(150 + 6 * rng.standard_normal((256, 256, 1)).astype(np.float32), 3, 2)  # textured skin (luminance)
    matrix = np.array([[0.5, 0, 0], [0, 0.5, 0]])  # photo -> its 128 px aligned crop
    painted = np.zeros((256, 256), np.float32)
    painted[60:180, 40:200] = 1
    smooth = np.where(painted[..., None] > 0, 150.0, skin)  # a fill with no fine detail
    photo = np.clip(smooth + 0.5, 0, 255).astype(np.uint8)
    out = transfer.fill_grain(photo, painted, matrix, 1.0)

    def fine(x, where):  # the log-luminance band finer than 2 px
        log = np.log1p(x.astype(np.float32)).mean(2)
        return np.std((log - cv2.GaussianBlur(log, (0, 0), 2))[where])

    inner = np.zeros_like(painted, bool)
    inner[80:160, 60:180] = True  # clear of the hole's edge
    assert fine(photo, inner) < 0.1 * fine(photo, painted == 0)
    assert 0.5 < fine(out, inner) / fine(photo, painted == 0) < 1.5  # grain like the skin's
    assert abs(out[inner].mean() - photo[inner].mean()) < 1  # zero-mean: no change of colour
    assert np.array_equal(out[painted == 0], photo[painted == 0])  # nothing outside the hole changes
    assert np.array_equal(transfer.fill_grain(photo, painted, matrix, 1.0), out)  # the same every time
    # a fill as grainy as the skin already (what `mirror_detail` lent it) gets next to nothing
    textured = np.clip(skin + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(transfer.fill_grain(textured, painted, matrix, 1.0).astype(int) - textured)[inner].mean() < 1


def test_symmetry_fades_the_mirror_out_on_turned_faces():
    from gan_face.face import template

    matrix = np.array([[1.0, 0, 0], [0, 1.0, 0]])  # the landmarks are already in the crop
    frontal = template(transfer.SIZE)
    assert transfer.symmetry(frontal, matrix) == 1.0
    turned = frontal.copy()
    turned[2, 0] += 10  # the nose 10 px off the eyes' midpoint: a 3/4 view
    assert transfer.symmetry(turned, matrix) == 0.0
    soft = np.full((128, 128, 3), 120, np.uint8)
    painted = np.zeros((128, 128), np.float32)
    painted[40:60, 20:50] = 1
    source = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    assert np.array_equal(transfer.mirror_detail(soft, source, painted, matrix, 1.0, strength=0.0), soft)
    assert not np.array_equal(transfer.mirror_detail(soft, source, painted, matrix, 1.0, strength=1.0), soft)
