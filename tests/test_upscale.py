"""Real Real-ESRGAN files from ../shared/weights through spandrel."""

import numpy as np
import pytest
import torch

from gan_face.upscale import Upscaler

from .conftest import SHARED

WEIGHTS = SHARED / "weights"


def test_loads_x4plus_and_upscales(astronaut):
    up = Upscaler(WEIGHTS / "RealESRGAN_x4plus.fp16.safetensors")
    assert up.is_model and up.scale == 4 and "ESRGAN" in up.name
    small = astronaut[60:92, 180:212].copy()  # a 32 px patch of the face
    out = up(small)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    # a real super-resolution of this patch: area-downscaled back, it matches the input
    back = torch.nn.functional.interpolate(torch.from_numpy(out).permute(2, 0, 1)[None].float(), scale_factor=0.25, mode="area")
    mse = (back[0].permute(1, 2, 0).numpy() - small).astype(np.float64) ** 2
    assert 10 * np.log10(255**2 / mse.mean()) > 28


def test_bf16_gives_the_float32_result(astronaut):
    """bf16 autocast (the default where the CPU has it) changes the upscaled face by a fraction of a grey level."""
    small = astronaut[60:108, 180:228].copy()
    exact = Upscaler(WEIGHTS / "RealESRGAN_x4plus.fp16.safetensors", bf16=False)(small).astype(np.float64)
    fast = Upscaler(WEIGHTS / "RealESRGAN_x4plus.fp16.safetensors", bf16=True)(small).astype(np.float64)
    assert fast.shape == exact.shape == (192, 192, 3)
    assert 0 < np.abs(fast - exact).mean() < 0.5
    assert 10 * np.log10(255**2 / ((fast - exact) ** 2).mean()) > 45


def test_tiled_equals_untiled_on_a_256px_image(astronaut):
    image = astronaut[128:384, 128:384].copy()
    whole = Upscaler(WEIGHTS / "realesr-animevideov3.pth", tile=0, bf16=False)  # the tiling's arithmetic, in float32
    tiled = Upscaler(WEIGHTS / "realesr-animevideov3.pth", tile=96, tile_pad=24, bf16=False)
    assert whole.scale == tiled.scale == 4
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    a, b = whole.upscale_tensor(x), tiled.upscale_tensor(x)
    assert a.shape == (1, 3, 1024, 1024)
    assert (a - b).abs().max() < 1e-3


def test_lanczos_fallback_and_outscale(astronaut):
    up = Upscaler(None, scale=2)
    assert not up.is_model
    assert up(astronaut).shape == (1024, 1024, 3)
    assert up(astronaut, outscale=1.5).shape == (768, 768, 3)


def test_default_finds_x4plus_or_falls_back(tmp_path):
    assert Upscaler.default(WEIGHTS).is_model
    assert not Upscaler.default(tmp_path, download=False).is_model  # empty folder, offline


def test_rejects_a_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not an upscaling model"):
        Upscaler(bad)
