"""Synthetic face degradations: blur, occlusion, lighting, noise, JPEG, downscaling.

Training, the evaluation harness and the app's "simulate this damage" controls all call
these functions, so what the model learns is what it is measured and demonstrated on.

Conventions: images are (B,3,H,W) float tensors in [0,1]; masks are (B,1,H,W) with
1 = occluded. Every random choice is drawn from the `generator` argument (a
`torch.Generator`), so the same seed gives the same output. Sizes that the literature
gives "at 128 px" scale with the image height.
"""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F

from gan_face.face import FFHQ_TEMPLATE_512

LIGHTING_CONDITIONS = ("frontal", "left side", "right side", "top", "low light")
OCCLUDERS = ("rectangle", "ellipse", "strokes", "sunglasses", "hand")
FILLS = ("noise", "flat", "texture")
# the eyes of the FFHQ template as fractions of the aligned crop (the synthetic sunglasses go there)
TEMPLATE_EYES = tuple(tuple(eye) for eye in (FFHQ_TEMPLATE_512[:2] / 512).tolist())


def _uniform(generator: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def _check(img: torch.Tensor) -> None:
    if img.ndim != 4 or img.shape[1] != 3 or not img.is_floating_point():
        raise ValueError(f"expected a (B,3,H,W) float image in [0,1], got {tuple(img.shape)} {img.dtype}")


# ----------------------------------------------------------------------------- blur


def _odd(n: float) -> int:
    n = max(3, int(round(n)))
    return n if n % 2 else n + 1


def _center_pad(kernels: list[torch.Tensor]) -> torch.Tensor:
    size = max(k.shape[-1] for k in kernels)
    out = []
    for k in kernels:
        p = (size - k.shape[-1]) // 2
        out.append(F.pad(k, (p, p, p, p)))
    return torch.stack(out)


def linear_motion_kernels(lengths: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """(B,) lengths in px and angles in degrees -> (B,k,k) normalised line kernels."""
    kernels = [
        kornia.filters.get_motion_kernel2d(_odd(length), float(angle), 0.0, mode="bilinear")[0]
        for length, angle in zip(lengths.tolist(), angles.tolist())
    ]
    return _center_pad(kernels)


def shake_kernels(generator: torch.Generator, n: int, size: int, steps: int = 64) -> torch.Tensor:
    """Random camera-shake trajectories (a random walk with inertia, as in DeblurGAN's
    trajectory model), splatted bilinearly onto (n,size,size) normalised kernels."""
    kernels = torch.zeros(n, size * size)
    for b in range(n):
        velocity = torch.randn(2, generator=generator)
        pos = torch.zeros(steps, 2)
        for t in range(1, steps):
            velocity = 0.8 * velocity + 0.6 * torch.randn(2, generator=generator)
            pos[t] = pos[t - 1] + velocity
        pos = pos - pos.mean(0)
        extent = pos.abs().max().clamp(min=1e-6)
        pos = pos / extent * (size - 1) / 2 * float(_uniform(generator, 1, 0.3, 1.0)) + (size - 1) / 2
        x0, y0 = pos[:, 0].floor().long(), pos[:, 1].floor().long()
        fx, fy = pos[:, 0] - x0, pos[:, 1] - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            xs, ys = (x0 + dx).clamp(0, size - 1), (y0 + dy).clamp(0, size - 1)
            kernels[b].index_add_(0, ys * size + xs, w)
    kernels = kernels.view(n, size, size)
    return kernels / kernels.sum((1, 2), keepdim=True)


MOTION_LENGTH = (3, 31)  # px at 128 px: training and the 128 px harness draw blur lengths from this range


def motion_blur(
    img: torch.Tensor,
    generator: torch.Generator,
    length: tuple[float, float] = MOTION_LENGTH,
    shake_prob: float = 0.3,
    angle: tuple[float, float] = (0, 180),
    return_kernels: bool = False,
):
    """Linear motion blur of random length (px at 128 px) and angle (degrees); with
    probability `shake_prob` a random camera-shake trajectory instead."""
    _check(img)
    b, _, h, _ = img.shape
    scale = h / 128
    lengths = _uniform(generator, b, *length) * scale
    angles = _uniform(generator, b, *angle)
    shake = torch.rand(b, generator=generator) < shake_prob
    kernels = list(linear_motion_kernels(lengths, angles))
    for i in torch.nonzero(shake).flatten().tolist():
        kernels[i] = shake_kernels(generator, 1, _odd(float(lengths[i])))[0]
    kernels = _center_pad(kernels).to(img)
    out = kornia.filters.filter2d(img, kernels, border_type="reflect")
    return (out, kernels) if return_kernels else out


def gaussian_blur(img: torch.Tensor, generator: torch.Generator, sigma: tuple[float, float] = (0.1, 3.0)):
    """Isotropic Gaussian blur, sigma in px at 128 px."""
    _check(img)
    b, _, h, _ = img.shape
    s = _uniform(generator, b, *sigma) * h / 128
    return _gaussian(img, s)


def _gaussian(img: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    ksize = _odd(float(sigma.max()) * 6 + 1)
    ksize = min(ksize, 2 * (min(img.shape[-2:]) // 2) - 1)
    return kornia.filters.gaussian_blur2d(img, ksize, sigma[:, None].repeat(1, 2).to(img))


def defocus_blur(img: torch.Tensor, generator: torch.Generator, radius: tuple[float, float] = (1.0, 6.0)):
    """Out-of-focus blur: a uniform disk kernel, radius in px at 128 px."""
    _check(img)
    b, _, h, _ = img.shape
    radii = _uniform(generator, b, *radius) * h / 128
    kernels = []
    for r in radii.tolist():
        size = _odd(2 * r + 1)
        yy, xx = torch.meshgrid(torch.arange(size) - size // 2, torch.arange(size) - size // 2, indexing="ij")
        # soft edge: 1 inside the radius, linear fall-off over one pixel
        disk = (r + 0.5 - (xx**2 + yy**2).float().sqrt()).clamp(0, 1)
        kernels.append(disk / disk.sum())
    return kornia.filters.filter2d(img, _center_pad(kernels).to(img), border_type="reflect")


# ------------------------------------------------------------------------- occlusion


def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
    return xs, ys


def _rotated(xs, ys, cx, cy, angle):
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = xs - cx, ys - cy
    return c * dx + s * dy, -s * dx + c * dy


# Each shape is measured as a squared "radius" per pixel: the pixel lies in the shape scaled by
# s about its centre (or line) exactly when radius**2 <= s**2. An occluder's mask at scale s is
# then one comparison, and the scale that covers a given area an order statistic (`occlusion_mask`).
def _ellipse_radius2(xs, ys, cx, cy, rx, ry, angle=0.0):
    u, v = _rotated(xs, ys, cx, cy, angle)
    return (u / rx) ** 2 + (v / ry) ** 2


def _box_radius2(xs, ys, cx, cy, hw, hh, angle=0.0):
    u, v = _rotated(xs, ys, cx, cy, angle)
    return torch.maximum((u / hw) ** 2, (v / hh) ** 2)


def _segment_distance2(xs, ys, p0, p1):
    """Squared distance to a line segment (a brush stroke is the pixels within its radius)."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    return _offset_distance2(xs, ys, x0, y0, dx, dy, max(dx * dx + dy * dy, 1e-9))


def _offset_distance2(xs, ys, x0, y0, dx, dy, length2):
    """Squared distance to the segment from (x0, y0) to (x0 + dx, y0 + dy), length2 its squared
    length (> 0): numbers, or tensors that broadcast against xs (several segments at once)."""
    t = (((xs - x0) * dx + (ys - y0) * dy) / length2).clamp(0, 1)
    return (xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2


def _shape_params(kind: str, generator: torch.Generator) -> dict:
    """Random position/orientation of one occluder; its size is set later by a scale s."""
    u = lambda lo, hi: float(_uniform(generator, 1, lo, hi))  # noqa: E731
    if kind in ("rectangle", "ellipse"):
        return dict(cx=u(0.2, 0.8), cy=u(0.2, 0.8), aspect=u(0.4, 2.5), angle=u(0, math.pi))
    if kind == "strokes":
        n = int(torch.randint(2, 6, (1,), generator=generator))
        points = [(u(0.1, 0.9), u(0.1, 0.9))]
        for _ in range(n):
            a = u(0, 2 * math.pi)
            x, y = points[-1]
            points.append((min(max(x + 0.3 * math.cos(a), 0), 1), min(max(y + 0.3 * math.sin(a), 0), 1)))
        return dict(points=points)
    if kind == "sunglasses":
        return dict(dy=u(-0.04, 0.04), tilt=u(-0.15, 0.15))
    if kind == "hand":
        return dict(cx=u(0.25, 0.75), cy=u(0.35, 0.9), angle=u(-1.2, 1.2))
    raise ValueError(f"occluder must be one of {OCCLUDERS}, got {kind!r}")


def _entry_scale(kind: str, p: dict, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Per pixel, the smallest scale s at which the occluder covers it (inf: never): its mask at
    s is `entry <= s`. Every occluder but the hand grows by scaling about fixed centres or lines,
    so a pixel once covered stays covered."""
    if kind == "rectangle":
        r2 = _box_radius2(xs, ys, p["cx"], p["cy"], p["aspect"] ** 0.5, p["aspect"] ** -0.5, p["angle"])
    elif kind == "ellipse":
        r2 = _ellipse_radius2(xs, ys, p["cx"], p["cy"], p["aspect"] ** 0.5, p["aspect"] ** -0.5, p["angle"])
    elif kind == "strokes":  # brush radius 0.25 s
        r2 = torch.stack([_segment_distance2(xs, ys, a, b) for a, b in zip(p["points"][:-1], p["points"][1:])]).amin(0) / 0.25**2
    elif kind == "sunglasses":
        (lx, ly), (rx, ry) = TEMPLATE_EYES
        cy = (ly + ry) / 2 + p["dy"]
        left = _ellipse_radius2(xs, ys, lx, cy - p["tilt"] * (rx - lx) / 2, 1.1, 0.8)
        right = _ellipse_radius2(xs, ys, rx, cy + p["tilt"] * (rx - lx) / 2, 1.1, 0.8)
        # the bridge: as wide as the eyes are apart at every scale, 0.24 s high
        bridge = torch.where((xs - 0.5).abs() <= (rx - lx) / 2, ((ys - cy) / 0.12) ** 2, torch.inf)
        r2 = torch.minimum(torch.minimum(left, right), bridge)
    else:
        raise ValueError(f"occluder must be one of {OCCLUDERS[:-1]} here, got {kind!r}")
    return r2.sqrt()


# the hand's fingers, from the little finger to the thumb: (base x, length) in the hand's frame
FINGERS = ((-0.6, 1.5), (-0.2, 1.8), (0.2, 1.7), (0.6, 1.4), (1.0, 1.0))


def _hand(p: dict, xs: torch.Tensor, ys: torch.Tensor):
    """The hand's boolean (H,W) mask as a function of its scale s: a palm (ellipse) and four
    fingers and a thumb (strokes), rotated together. The fingers move outwards as s grows, so
    a pixel can leave a finger again: no entry scale, and `occlusion_mask` bisects on the area,
    calling this some 30 times per hand: what does not change with s is computed once, and the
    five fingers are one batched distance."""
    palm = _ellipse_radius2(xs, ys, p["cx"], p["cy"], 0.9, 1.0, p["angle"])
    c, si = math.cos(p["angle"]), math.sin(p["angle"])

    def mask(s: float) -> torch.Tensor:
        rows = []
        for k, (fx, length) in enumerate(FINGERS):
            tilt = -0.9 if k == 4 else 0.0  # the thumb points sideways
            bx, by = fx * s, -0.6 * s
            tx, ty = bx + length * s * math.sin(-tilt) * (1 if k < 4 else -1), by - length * s * math.cos(tilt)
            (x0, y0), (x1, y1) = (p["cx"] + c * bx - si * by, p["cy"] + si * bx + c * by), (p["cx"] + c * tx - si * ty, p["cy"] + si * tx + c * ty)
            dx, dy = x1 - x0, y1 - y0
            rows.append((x0, y0, dx, dy, max(dx * dx + dy * dy, 1e-9)))
        # (5,1,1) each: the five fingers' segments at once
        fingers = _offset_distance2(xs, ys, *torch.tensor(rows, dtype=xs.dtype).T[..., None, None]) <= (0.17 * s) ** 2
        return fingers.any(0) | (palm <= s * s)

    return mask


def _shape_mask(kind: str, p: dict, s: float, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Boolean (H,W) mask of one occluder at scale s (area grows monotonically with s)."""
    if kind in OCCLUDERS and kind != "hand":
        return _entry_scale(kind, p, xs, ys) <= s
    if kind == "hand":
        return _hand(p, xs, ys)(s)
    raise ValueError(f"occluder must be one of {OCCLUDERS}, got {kind!r}")


def occlusion_mask(
    generator: torch.Generator, n: int, h: int, w: int, area: tuple[float, float] = (0.0, 0.4), kinds=OCCLUDERS
) -> torch.Tensor:
    """(n,1,h,w) masks, one random occluder each, covering a uniform random fraction of
    the image in `area`: the smallest scale that covers it (the order statistic of the pixels'
    entry scales; for the hand, found by bisection on its area, up to scale 4)."""
    lo, hi = area
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"area must be 0 <= min <= max <= 1, got {area!r}")
    xs, ys = _grid(h, w)
    masks = torch.zeros(n, 1, h, w)
    for i in range(n):
        kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
        target = float(_uniform(generator, 1, lo, hi))
        if target * h * w < 1:
            continue
        p = _shape_params(kind, generator)
        if kind != "hand":
            entry = _entry_scale(kind, p, xs, ys)
            k = math.ceil(target * h * w - 1e-9)  # pixels the target area needs
            s = min(float(entry.flatten().kthvalue(k).values), 4.0)
            m = entry <= s
            if m.float().mean() > hi:  # a jump in area at one scale (symmetric pixels): take the smaller side
                m = entry < s
        else:
            hand, a, b = _hand(p, xs, ys), 0.0, 4.0
            for _ in range(30):  # bisection: the hand's area grows with s (its pixels need not)
                s = (a + b) / 2
                if hand(s).float().mean() < target:
                    a = s
                else:
                    b = s
            m = hand(b)
            if m.float().mean() > hi:  # a jump in area at one pixel: take the smaller side
                m = hand(a)
        masks[i, 0] = m.float()
    return masks


def occlude(
    img: torch.Tensor,
    generator: torch.Generator,
    area: tuple[float, float] = (0.0, 0.4),
    kinds=OCCLUDERS,
    fills=FILLS,
    texture: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint random occluders (rectangles, ellipses, brush strokes, sunglasses, hands)
    filled with noise, a flat colour or a texture cut from another image.

    texture: (B,3,H,W) source of the "texture" fill; by default the batch shifted by one
    (another face), or the image upside down when the batch has one image.
    Returns (occluded image, mask); pixels outside the mask are unchanged.
    """
    _check(img)
    b, _, h, w = img.shape
    mask = occlusion_mask(generator, b, h, w, area, kinds).to(img)
    if texture is None:
        texture = img.roll(1, 0) if b > 1 else img.flip(-2)
    fill = torch.empty_like(img)
    for i in range(b):
        kind = fills[int(torch.randint(len(fills), (1,), generator=generator))]
        if kind == "noise":
            fill[i] = torch.rand(3, h, w, generator=generator)
        elif kind == "flat":
            fill[i] = torch.rand(3, 1, 1, generator=generator).expand(3, h, w)
        elif kind == "texture":
            fill[i] = texture[i].roll(
                (int(torch.randint(h, (1,), generator=generator)), int(torch.randint(w, (1,), generator=generator))),
                (-2, -1),
            )
        else:
            raise ValueError(f"fill must be one of {FILLS}, got {kind!r}")
    return torch.where(mask > 0, fill, img), mask


# -------------------------------------------------------------------------- lighting


def _luminance(img: torch.Tensor) -> torch.Tensor:
    return (0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2])[:, None]


def relight(
    img: torch.Tensor, shade: torch.Tensor, gain: float | torch.Tensor = 1.0, gamma=1.0, temperature=0.0
) -> torch.Tensor:
    """Multiply the image in linear light by a shading map (B or 1,1,H,W) and a gain,
    apply a display gamma and a colour-temperature shift (>0 warmer, <0 cooler)."""
    # on img's device: training degrades its batches on the GPU, drawing the random numbers on the CPU
    as_col = lambda v: torch.as_tensor(v, dtype=img.dtype).to(img.device).reshape(-1, 1, 1, 1)  # noqa: E731
    linear = img.clamp(0, 1) ** 2.2
    linear = linear * shade.to(img) * as_col(gain)
    t = as_col(temperature)
    tint = torch.cat([1 + 0.25 * t, torch.ones_like(t), 1 - 0.25 * t], 1)
    linear = linear * tint
    out = linear.clamp(0, 1) ** (1 / 2.2)
    return out.clamp(0, 1) ** as_col(gamma)


def _directional_shade(h: int, w: int, direction: float, strength: float) -> torch.Tensor:
    """Shading of a light from `direction` (radians, 0 = from the image's left, pi/2 =
    from the top): lambertian-like ramp across the face, from 1+strength to 1-0.9*strength."""
    xs, ys = _grid(h, w)
    along = (0.5 - xs) * math.cos(direction) + (0.5 - ys) * math.sin(direction)  # +0.5 at the lit side
    ramp = (along * 2).clamp(-1, 1)
    return torch.where(ramp > 0, 1 + strength * ramp, 1 + 0.9 * strength * ramp)[None, None]


def lighting(img: torch.Tensor, condition: str, strength: float = 1.0) -> torch.Tensor:
    """One of the named LIGHTING_CONDITIONS, at `strength` in [0,1] (0 = unchanged):
    - "frontal": on-camera flash: bright centre, darker edges, slight overexposure, cool;
    - "left side" / "right side": light from that side of the image, the other half in shadow, warm;
    - "top": overhead light, chin and lower face in shadow;
    - "low light": underexposed and cool, crushed shadows.
    """
    _check(img)
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    _, _, h, w = img.shape
    s = strength
    if condition == "frontal":
        xs, ys = _grid(h, w)
        r2 = ((xs - 0.5) ** 2 + (ys - 0.45) ** 2) / 0.5
        shade = (1 + 0.8 * s - 1.6 * s * r2).clamp(min=0.1)[None, None]
        return relight(img, shade, gain=1 + 0.3 * s, temperature=-0.3 * s)
    if condition in ("left side", "right side", "top"):
        direction = {"left side": 0.0, "right side": math.pi, "top": math.pi / 2}[condition]
        return relight(img, _directional_shade(h, w, direction, s), temperature=0.4 * s)
    if condition == "low light":
        return relight(img, torch.ones(1, 1, h, w), gain=1 - 0.85 * s, gamma=1 + 0.3 * s, temperature=-0.4 * s)
    raise ValueError(f"condition must be one of {LIGHTING_CONDITIONS}, got {condition!r}")


def random_lighting(img: torch.Tensor, generator: torch.Generator, p_named: float = 0.5) -> torch.Tensor:
    """Random lighting per image: with probability `p_named` one of the named conditions at a
    random strength in [0.3, 1], else the continuous mode: any light direction and strength,
    gain, gamma and colour temperature."""
    _check(img)
    b, _, h, w = img.shape
    out = torch.empty_like(img)
    named = torch.rand(b, generator=generator) < p_named
    conditions = torch.randint(len(LIGHTING_CONDITIONS), (b,), generator=generator)
    strengths = _uniform(generator, b, 0.3, 1.0)
    directions, shade_strengths = _uniform(generator, b, 0, 2 * math.pi), _uniform(generator, b, 0, 1.0)
    gains = torch.exp(_uniform(generator, b, math.log(0.2), math.log(1.5)))
    gammas, temperatures = _uniform(generator, b, 0.8, 1.3), _uniform(generator, b, -0.5, 0.5)
    for i in range(b):
        if named[i]:
            out[i] = lighting(img[i : i + 1], LIGHTING_CONDITIONS[int(conditions[i])], float(strengths[i]))[0]
        else:
            shade = _directional_shade(h, w, float(directions[i]), float(shade_strengths[i])).to(img)
            out[i] = relight(img[i : i + 1], shade, gains[i], gammas[i], temperatures[i])[0]
    return out


# ------------------------------------------------------------- noise, JPEG, resolution


def gaussian_noise(img: torch.Tensor, generator: torch.Generator, sigma: tuple[float, float] = (0, 20)):
    """Additive Gaussian noise, std in grey levels of 255; colour or (30 %) grey noise."""
    _check(img)
    b, _, h, w = img.shape
    std = _uniform(generator, b, *sigma).view(b, 1, 1, 1) / 255
    grey = (torch.rand(b, generator=generator) < 0.3).view(b, 1, 1, 1)
    noise = torch.randn(b, 3, h, w, generator=generator)
    noise = torch.where(grey, noise[:, :1].expand(-1, 3, -1, -1), noise)
    return (img + noise.to(img) * std.to(img)).clamp(0, 1)


def jpeg(img: torch.Tensor, generator: torch.Generator, quality: tuple[float, float] = (30, 95)):
    """JPEG compression at a random quality (kornia's differentiable codec)."""
    _check(img)
    q = _uniform(generator, img.shape[0], *quality).to(img)
    return kornia.enhance.jpeg_codec_differentiable(img.clamp(0, 1), q).clamp(0, 1)


# How a face came to be small and was brought back to size: a camera or an editor shrinks with
# an area, bilinear or bicubic filter, and the aligner enlarges a small face bilinearly
# (`face.py`'s warpAffine); the detail model had trained on bicubic alone. 8,000 L1 steps with the
# kernels drawn, then 3,000 with LPIPS and identity (runs/detail_za, not shipped), against the
# shipped model, `python bench/compare_models.py ... --vgg`: "x4 aligned" (area shrink, bilinear
# enlargement) 29.66 -> 29.83 dB, "x4" (bicubic both ways) 30.49 -> 30.33; the harness's x4 (area,
# bicubic) 29.99 -> 29.90: robustness to the kernel, paid for by the bicubic case.
DOWN_MODES = ("area", "bilinear", "bicubic")
UP_MODES = ("bilinear", "bicubic")


def downscale(
    img: torch.Tensor,
    generator: torch.Generator,
    factor: tuple[float, float] = (1, 8),
    down_modes: tuple[str, ...] = ("bicubic",),
    up_modes: tuple[str, ...] = ("bicubic",),
):
    """Downscale by a random factor and back to the input size, each image with a kernel
    drawn from `down_modes` (bilinear and bicubic antialiased) and one from `up_modes`
    (Real-ESRGAN draws its resize modes the same way). A single mode draws nothing."""
    _check(img)
    for mode in (*down_modes, *up_modes):
        if mode not in DOWN_MODES:
            raise ValueError(f"resize modes must be among {DOWN_MODES}, got {mode!r}")
    b, _, h, w = img.shape
    fs = _uniform(generator, b, *factor).tolist()

    def draw(modes):
        return [modes[0]] * b if len(modes) == 1 else [modes[k] for k in torch.randint(len(modes), (b,), generator=generator).tolist()]

    downs, ups = draw(down_modes), draw(up_modes)
    out = []
    for i, (f, down, up) in enumerate(zip(fs, downs, ups)):
        small = (max(1, round(h / f)), max(1, round(w / f)))
        aa = {} if down == "area" else {"antialias": True, "align_corners": False}
        lo = F.interpolate(img[i : i + 1], size=small, mode=down, **aa)
        back = {} if up == "area" else {"align_corners": False}
        out.append(F.interpolate(lo, size=(h, w), mode=up, **back))
    return torch.cat(out).clamp(0, 1)


def mixed(img: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The GFPGAN degradation recipe: Gaussian blur (sigma 0.1-10), downsample
    (x0.8-x8), noise (0-20), JPEG (60-100), back to the input size."""
    _check(img)
    sigma = _uniform(generator, img.shape[0], 0.1, 10) * img.shape[-2] / 512  # GFPGAN's sigmas are at 512 px
    out = _gaussian(img, sigma.clamp(min=0.1))
    b, _, h, w = img.shape
    factors = _uniform(generator, b, 0.8, 8).tolist()
    small = []
    for i, f in enumerate(factors):
        size = (max(1, round(h / f)), max(1, round(w / f)))
        small.append(F.interpolate(out[i : i + 1], size=size, mode="bilinear", antialias=True, align_corners=False))
    out = torch.cat([F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False) for s in small])
    out = gaussian_noise(out.clamp(0, 1), generator, (0, 20))
    return jpeg(out, generator, (60, 100))


def misalign(img: torch.Tensor, generator: torch.Generator, amount: float, p: float = 0.5) -> torch.Tensor:
    """Each aligned face with probability `p` moved off the FFHQ template by a random similarity:
    a shift of up to `amount` of the crop on each axis, a scale of 1 / (1 + 1.5 amount) to
    1 + 1.5 amount and a turn of up to 1.5 amount radians (mirrored at the borders). Under a
    large occluder the detector's landmarks are off by about this much (0.1 moves an eye by 0.32
    of the eye distance on average, at most 0.66), and a model trained on perfectly aligned faces
    draws the hidden features where the template has them, not where the visible face says they are."""
    _check(img)
    if not 0 <= amount <= 0.5 or not 0 <= p <= 1:
        raise ValueError(f"amount must be in [0, 0.5] and p in [0, 1], got {amount} and {p}")
    b = img.shape[0]
    moved = torch.nonzero(torch.rand(b, generator=generator) < p).flatten()
    shift = _uniform(generator, 2 * b, -amount, amount).view(b, 2)[moved] * 2  # affine_grid's units: half the crop
    s = torch.exp(_uniform(generator, b, -1, 1)[moved] * -math.log1p(1.5 * amount))  # the grid maps output to input pixels: the inverse move
    turn = _uniform(generator, b, -1.5 * amount, 1.5 * amount)[moved]
    c, r = s * torch.cos(turn), s * torch.sin(turn)
    theta = torch.stack([torch.stack([c, -r, shift[:, 0]], 1), torch.stack([r, c, shift[:, 1]], 1)], 1).to(img)
    out = img.clone()
    if len(moved):
        grid = F.affine_grid(theta, [len(moved), *img.shape[1:]], align_corners=False)
        out[moved] = F.grid_sample(img[moved], grid, mode="bilinear", padding_mode="reflection", align_corners=False).clamp(0, 1)
    return out


# ----------------------------------------------------------------------- composition


TRAINING_KINDS = ("lighting", "occlusion", "motion blur", "downscale", "mixed")


def random_degradation(
    img: torch.Tensor,
    generator: torch.Generator,
    p_second: float = 0.3,
    everything: bool = False,
    weights: list[float] | None = None,
    p_clean: float = 0.0,
    motion_length: tuple[float, float] = MOTION_LENGTH,
    always: tuple[str, ...] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training degradation: each image gets one of TRAINING_KINDS (uniformly, or in
    proportion to `weights`), and with probability `p_second` a second one (`everything`:
    all of them), applied in the order lighting -> occluder -> motion blur -> downscale ->
    GFPGAN mix. Mostly single degradations, so the model learns to undo each one, plus
    combinations. With probability `p_clean` an image is left as it is: without clean
    inputs a model never learns that a naturally lit face needs no relighting. `motion_length`:
    see `motion_blur`. `always`: kinds every image that is not left clean gets on top of its
    draw (an inpainting model that meets holes in blurred or noisy faces too). Returns
    (degraded, mask)."""
    _check(img)
    if not 0 <= p_clean < 1:
        raise ValueError(f"p_clean must be in [0, 1), got {p_clean}")
    b, n = img.shape[0], len(TRAINING_KINDS)

    def pick() -> torch.Tensor:
        if weights is None:
            return torch.randint(n, (b,), generator=generator)
        if len(weights) != n or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"weights must be {n} non-negative numbers (one per {TRAINING_KINDS}), got {weights!r}")
        return torch.multinomial(torch.tensor(weights, dtype=torch.float), b, replacement=True, generator=generator)

    chosen = torch.zeros(b, n, dtype=torch.bool)
    chosen[torch.arange(b), pick()] = True
    second = pick()
    add = torch.rand(b, generator=generator) < p_second
    chosen[torch.arange(b)[add], second[add]] = True
    if everything:
        chosen[:] = True
    for kind in always:
        if kind not in TRAINING_KINDS:
            raise ValueError(f"always must name kinds of {TRAINING_KINDS}, got {kind!r}")
        chosen[:, TRAINING_KINDS.index(kind)] = True
    if p_clean > 0:  # no extra draw otherwise: runs without it keep their random stream
        chosen[torch.rand(b, generator=generator) < p_clean] = False
    out, mask = img.clone(), img.new_zeros(b, 1, *img.shape[-2:])

    def rows(kind):
        return torch.nonzero(chosen[:, TRAINING_KINDS.index(kind)]).flatten()

    if len(i := rows("lighting")):
        out[i] = random_lighting(out[i], generator)
    if len(i := rows("occlusion")):
        out[i], mask[i] = occlude(out[i], generator, texture=img.roll(1, 0)[i])
    if len(i := rows("motion blur")):
        out[i] = motion_blur(out[i], generator, tuple(motion_length))
    if len(i := rows("downscale")):
        out[i] = downscale(out[i], generator, (2, 8), DOWN_MODES, UP_MODES)
    if len(i := rows("mixed")):
        out[i] = mixed(out[i], generator)
    return out.clamp(0, 1), mask
