"""Each degradation does what it claims, on real faces from ../shared/data/faces/test/."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan_face import degradations as D


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def grad_energy(img):
    """Mean squared horizontal and vertical finite differences."""
    dx = (img[..., :, 1:] - img[..., :, :-1]).pow(2).mean()
    dy = (img[..., 1:, :] - img[..., :-1, :]).pow(2).mean()
    return dx.item(), dy.item()


def luminance(img):
    return 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]


@pytest.mark.parametrize("angle,blurred_axis", [(0.0, "x"), (90.0, "y")])
def test_motion_blur_lowers_high_frequencies_along_its_direction(faces128, angle, blurred_axis):
    out = D.motion_blur(faces128, gen(), length=(15, 15), shake_prob=0, angle=(angle, angle))
    dx0, dy0 = grad_energy(faces128)
    dx1, dy1 = grad_energy(out)
    along, across = (dx1 / dx0, dy1 / dy0) if blurred_axis == "x" else (dy1 / dy0, dx1 / dx0)
    assert along < 0.35  # most energy along the motion is gone
    assert along < 0.6 * across  # and far more than across it


def test_motion_blur_lengths_and_shake_kernels(faces128):
    _, kernels = D.motion_blur(faces128, gen(), length=(3, 31), shake_prob=0.5, return_kernels=True)
    assert torch.allclose(kernels.sum((1, 2)), torch.ones(len(kernels)), atol=1e-5)
    assert kernels.shape[-1] <= 33
    shake = D.shake_kernels(gen(), 4, 21)
    assert torch.allclose(shake.sum((1, 2)), torch.ones(4), atol=1e-5)
    assert (shake > 0).sum((1, 2)).min() > 5  # a trajectory, not a point


@pytest.mark.parametrize("fn", [D.gaussian_blur, D.defocus_blur])
def test_blurs_lower_high_frequencies(faces128, fn):
    out = fn(faces128, gen())
    assert sum(grad_energy(out)) < sum(grad_energy(faces128))


@pytest.mark.parametrize("kind", D.OCCLUDERS)
@pytest.mark.parametrize("area", [(0.05, 0.15), (0.2, 0.4)])
def test_occlusion_area_in_range_and_rest_untouched(faces128, kind, area):
    out, mask = D.occlude(faces128, gen(), area=area, kinds=(kind,))
    fractions = mask.mean((1, 2, 3))
    # within the asked range, allowing one pixel-row of rasterisation at 128 px
    assert (fractions >= area[0] - 0.01).all() and (fractions <= area[1]).all(), fractions
    outside = (mask == 0).expand_as(out)
    assert torch.equal(out[outside], faces128[outside])  # untouched outside the mask
    changed = (out - faces128).abs().sum(1, keepdim=True)[mask == 1] > 0
    assert changed.float().mean() > 0.9  # the occluder really paints over the face


@pytest.mark.parametrize("kind", [k for k in D.OCCLUDERS if k != "hand"])
def test_occluder_scale_is_the_smallest_that_covers_the_area(kind):
    # the scale is read off the pixels' entry scales (an order statistic) instead of a 30-step
    # bisection on the area (2-3x faster masks): both give the same masks
    xs, ys = D._grid(128, 128)
    for seed in range(8):
        g = gen(seed)
        p, target = D._shape_params(kind, g), float(torch.rand(1, generator=g)) * 0.4 + 0.01
        a, b = 0.0, 4.0
        for _ in range(30):
            s = (a + b) / 2
            a, b = (s, b) if D._shape_mask(kind, p, s, xs, ys).float().mean() < target else (a, s)
        entry = D._entry_scale(kind, p, xs, ys)
        found = entry <= float(entry.flatten().kthvalue(math.ceil(target * 128 * 128)).values)
        assert found.float().mean() >= target
        assert (found != D._shape_mask(kind, p, b, xs, ys)).sum() <= 1  # a pixel on the boundary, at most


def test_the_hand_is_its_palm_and_five_finger_strokes():
    # `_hand` batches the five fingers' distances (the hand's bisection calls it some 30 times):
    # the same mask, pixel for pixel, as drawing each finger as its own stroke
    xs, ys = D._grid(128, 128)
    for seed in range(6):
        p = D._shape_params("hand", gen(seed))
        c, si = math.cos(p["angle"]), math.sin(p["angle"])
        rot = lambda x, y: (p["cx"] + c * x - si * y, p["cy"] + si * x + c * y)  # noqa: E731
        for s in (0.1, 0.25, 0.5):
            want = D._ellipse_radius2(xs, ys, p["cx"], p["cy"], 0.9, 1.0, p["angle"]) <= s * s
            for k, (fx, length) in enumerate(D.FINGERS):
                tilt = -0.9 if k == 4 else 0.0
                bx, by = fx * s, -0.6 * s
                tip = (bx + length * s * math.sin(-tilt) * (1 if k < 4 else -1), by - length * s * math.cos(tilt))
                want |= D._segment_distance2(xs, ys, rot(bx, by), rot(*tip)) <= (0.17 * s) ** 2
            got = D._hand(p, xs, ys)(s)
            assert torch.equal(got, want) and 0 < got.float().mean() < 1


def test_occlusion_fills(faces128):
    _, mask = D.occlude(faces128, gen(3), area=(0.2, 0.3))
    for fill in D.FILLS:
        out, m = D.occlude(faces128, gen(3), area=(0.2, 0.3), fills=(fill,))
        assert torch.equal(m, mask)  # the fill does not change where the occluder is
        for i in range(len(out)):
            region = out[i].permute(1, 2, 0)[m[i, 0] == 1]  # (pixels, 3)
            if fill == "flat":
                assert region.std(0).max() < 1e-6
            if fill == "noise":
                assert region.std(0).min() > 0.2  # uniform noise has std 0.29
            if fill == "texture":
                assert region.std(0).min() > 0.01  # image content, not a flat patch


def test_lighting_conditions_shift_luminance_as_named(faces128):
    y0 = luminance(faces128)
    h, w = y0.shape[-2:]
    left, right = (slice(None), slice(None), slice(0, w // 2)), (slice(None), slice(None), slice(w // 2, None))
    top, bottom = (slice(None), slice(0, h // 2)), (slice(None), slice(h // 2, None))

    def ratio(y, a, b):
        return (y[a].mean() / y[b].mean()).item()

    y = luminance(D.lighting(faces128, "left side"))
    assert ratio(y, left, right) > 1.3 * ratio(y0, left, right)
    y = luminance(D.lighting(faces128, "right side"))
    assert ratio(y, right, left) > 1.3 * ratio(y0, right, left)
    y = luminance(D.lighting(faces128, "top"))
    assert ratio(y, top, bottom) > 1.3 * ratio(y0, top, bottom)
    y = luminance(D.lighting(faces128, "low light"))
    assert y.mean() < 0.5 * y0.mean()
    y = luminance(D.lighting(faces128, "frontal"))
    centre = (slice(None), slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
    assert y[centre].mean() > y0[centre].mean() * 1.1  # flash: brighter face
    assert ratio(y, centre, (slice(None),)) > ratio(y0, centre, (slice(None),))  # centre-weighted


def test_lighting_strength_zero_is_identity_and_bad_values_raise(faces128):
    for condition in D.LIGHTING_CONDITIONS:
        assert torch.allclose(D.lighting(faces128, condition, 0.0), faces128, atol=1e-5)
    with pytest.raises(ValueError, match="condition"):
        D.lighting(faces128, "disco")
    with pytest.raises(ValueError, match="strength"):
        D.lighting(faces128, "top", 2.0)


def psnr(a, b):
    return (10 * torch.log10(1 / (a - b).pow(2).mean())).item()


@pytest.mark.parametrize(
    "fn,max_psnr",
    [(D.gaussian_noise, 40), (D.jpeg, 45), (D.downscale, 40), (D.mixed, 35), (D.random_lighting, 40)],
)
def test_other_degradations_degrade(faces128, fn, max_psnr):
    out = fn(faces128, gen())
    assert out.shape == faces128.shape and out.min() >= 0 and out.max() <= 1
    assert psnr(out, faces128) < max_psnr


def test_jpeg_quality_matters(faces128):
    low = D.jpeg(faces128, gen(), quality=(30, 30))
    high = D.jpeg(faces128, gen(), quality=(95, 95))
    assert psnr(low, faces128) < psnr(high, faces128) - 3


def test_downscale_factor_matters(faces128):
    x2 = D.downscale(faces128, gen(), factor=(2, 2))
    x8 = D.downscale(faces128, gen(), factor=(8, 8))
    assert psnr(x8, faces128) < psnr(x2, faces128) - 3


def test_downscale_draws_its_resize_kernels(faces128):
    """Each image gets one of the modes asked for: the batch holds area, bilinear and
    bicubic shrinks (each image equals one of the three made by hand), and a bad mode is refused."""
    x = faces128[:1].expand(24, -1, -1, -1)
    out = D.downscale(x, gen(), (4, 4), D.DOWN_MODES, ("bicubic",))
    small = {"area": F.interpolate(x[:1], size=(32, 32), mode="area")}
    for mode in ("bilinear", "bicubic"):
        small[mode] = F.interpolate(x[:1], size=(32, 32), mode=mode, antialias=True, align_corners=False)
    made = {m: F.interpolate(s, size=x.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1) for m, s in small.items()}
    found = {m for o in out for m, ref in made.items() if torch.allclose(o, ref[0], atol=1e-6)}
    assert found == set(D.DOWN_MODES)
    with pytest.raises(ValueError, match="resize modes"):
        D.downscale(x, gen(), (4, 4), ("lanczos",))


def test_same_seed_same_output(faces128):
    a, ma = D.random_degradation(faces128, gen(7))
    b, mb = D.random_degradation(faces128, gen(7))
    c, _ = D.random_degradation(faces128, gen(8))
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert not torch.equal(a, c)


def test_kind_weights_choose_the_degradations(faces128):
    only_occlusion = [0.0, 1.0, 0.0, 0.0, 0.0]  # order of D.TRAINING_KINDS
    assert D.TRAINING_KINDS[1] == "occlusion"
    out, mask = D.random_degradation(faces128, gen(3), weights=only_occlusion)
    assert (mask.flatten(1).amax(1) == 1).all()  # every image occluded...
    assert torch.equal(out * (1 - mask), faces128 * (1 - mask))  # ...and nothing else changed
    _, mask = D.random_degradation(faces128, gen(3), weights=[1.0, 0.0, 1.0, 1.0, 1.0])
    assert mask.sum() == 0
    with pytest.raises(ValueError, match="weights"):
        D.random_degradation(faces128, gen(3), weights=[1.0, 1.0])


def test_always_adds_a_kind_to_every_degraded_image(faces128):
    """An inpainting model's data: every image occluded, and blurred where it drew blur."""
    faces = faces128.repeat(4, 1, 1, 1)  # 32 images
    only_blur = [0.0, 0.0, 1.0, 0.0, 0.0]
    out, mask = D.random_degradation(faces, gen(4), weights=only_blur, always=("occlusion",))
    assert (mask.flatten(1).amax(1) == 1).all()  # every image has a hole...
    outside = (out - faces).abs() * (1 - mask)
    assert (outside.flatten(1).amax(1) > 0.05).all()  # ...and is blurred around it
    out, mask = D.random_degradation(faces, gen(4), weights=only_blur, always=("occlusion",), p_clean=0.5)
    untouched = (out == faces).flatten(1).all(1)
    assert 0 < untouched.sum() < len(faces) and mask[untouched].sum() == 0  # clean images stay clean
    with pytest.raises(ValueError, match="always"):
        D.random_degradation(faces, gen(4), always=("rain",))


def test_p_clean_leaves_that_share_of_images_untouched(faces128):
    faces = faces128.repeat(8, 1, 1, 1)  # 64 images
    out, mask = D.random_degradation(faces, gen(5), p_clean=0.25)
    untouched = (out == faces).flatten(1).all(1)
    assert 6 <= untouched.sum() <= 26  # ~16 of 64 (binomial)
    assert mask[untouched].sum() == 0
    out, _ = D.random_degradation(faces, gen(5))
    assert not (out == faces).flatten(1).all(1).any()  # by default every image is degraded
    with pytest.raises(ValueError, match="p_clean"):
        D.random_degradation(faces128, gen(5), p_clean=1.0)


def test_misalign_moves_faces_off_the_template_within_its_amount(faces128):
    """A dot at the eye of the template lands within the move's reach; about half the faces stay."""
    b, size, amount = 64, 128, 0.1
    (ex, ey) = D.TEMPLATE_EYES[0]
    dots = torch.zeros(b, 3, size, size)
    px, py = round(ex * size), round(ey * size)
    dots[:, :, py, px] = 1.0
    out = D.misalign(F.avg_pool2d(dots, 3, 1, 1) * 9, gen(3), amount)  # a 3x3 dot: bilinear keeps its mass
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    weight = out[:, 0].flatten(1).clamp(min=0)
    cx, cy = (weight * xs.flatten()).sum(1) / weight.sum(1), (weight * ys.flatten()).sum(1) / weight.sum(1)
    moved = torch.hypot(cx - px, cy - py)
    # the furthest a point of the crop can go: the shift, plus the scale and the turn about the centre
    reach = size * (amount * 2**0.5 + math.hypot(ex - 0.5, ey - 0.5) * (1.5 * amount + 1.5 * amount))
    assert moved.max() <= reach and moved.max() > 0.3 * reach
    still = moved < 0.01
    assert 16 <= still.sum() <= 48  # p = 0.5 (binomial)
    assert torch.equal(D.misalign(faces128, gen(3), amount)[still[:8]], faces128[still[:8]])  # untouched, bit for bit
    assert torch.equal(D.misalign(faces128, gen(1), amount), D.misalign(faces128, gen(1), amount))
    assert torch.equal(D.misalign(faces128, gen(1), amount, p=0.0), faces128)
    with pytest.raises(ValueError, match="amount"):
        D.misalign(faces128, gen(), 0.7)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="B,3,H,W"):
        D.motion_blur(torch.zeros(3, 32, 32), gen())
    with pytest.raises(ValueError, match="area"):
        D.occlude(torch.zeros(1, 3, 32, 32), gen(), area=(0.5, 0.1))
