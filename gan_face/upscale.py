"""Real-ESRGAN-style upscaling through spandrel, tiled; Lanczos when no weights are present.

spandrel reads the official Real-ESRGAN checkpoints (RealESRGAN_x4plus / x2plus,
realesr-general-x4v3, realesr-animevideov3; .pth or .safetensors) and detects their
architecture, so the `realesrgan`/`basicsr` packages (broken on current torchvision) are
not needed.

Tiling: the image is reflect-padded by `pre_pad` px (as the reference implementation does:
it keeps the borders equal to the official output), cut into tiles of `tile` px, each run
with `tile_pad` px of context on every side, and the context is cropped away after
upscaling. With enough context the tiled result equals the untiled one; memory stays
bounded by the tile size.

Where the CPU computes bf16 natively (AVX-512 BF16, AMX) the model runs in bf16 autocast on
channels-last tensors: on this project's 2-core machine x4plus took 10.0 s instead of 25.7 s on
a 256x256 photo (`python bench/pipeline_speed.py`), its output 53 dB from float32's (a fraction
of a grey level).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_face.cpu import cpu_has_bf16
from gan_face.imageops import from_unit, to_unit
from gan_face.weights import fetch, weights_dir

log = logging.getLogger(__name__)

# Preferred files, best first: (file name, download URL or None, sha256 of the download)
X4PLUS_FP16 = "RealESRGAN_x4plus.fp16.safetensors"
X4PLUS = "RealESRGAN_x4plus.pth"
X4PLUS_URL = "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth"
X4PLUS_SHA256 = "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1"


class Upscaler:
    """Upscale whole (H,W,3) uint8 RGB images.

    Args:
        weights: a Real-ESRGAN checkpoint (any model spandrel loads), or None for Lanczos.
        scale: the Lanczos factor when `weights` is None (ignored otherwise: the model's own).
        tile: tile side in px (0 = whole image at once).
        tile_pad: context around each tile, in input px.
        pre_pad: reflect padding of the whole image, in input px.
        bf16: bf16 autocast + channels-last (None: where the CPU computes bf16 natively).
    """

    def __init__(self, weights: str | Path | None = None, scale: int = 4, tile: int = 192, tile_pad: int = 24, pre_pad: int = 10, bf16: bool | None = None):
        self.tile, self.tile_pad, self.pre_pad = tile, tile_pad, pre_pad
        self.bf16 = cpu_has_bf16(unknown=False) if bf16 is None else bf16
        self.model = None
        if weights is None:
            self.scale, self.name = scale, f"Lanczos x{scale}"
            return
        from spandrel import ImageModelDescriptor, ModelLoader

        try:
            descriptor = ModelLoader().load_from_file(str(weights))
        except Exception as e:  # noqa: BLE001 - spandrel raises many kinds for unknown files
            raise ValueError(f"{weights} is not an upscaling model spandrel can load: {e}") from e
        if not isinstance(descriptor, ImageModelDescriptor) or descriptor.input_channels != 3:
            raise ValueError(f"{weights} is not a 3-channel image-to-image model")
        # fp16 storage is for download size; the CPU computes in float32 (or bf16 autocast: `bf16`)
        self.model = descriptor.model.float().eval().requires_grad_(False)
        if self.bf16:
            self.model.to(memory_format=torch.channels_last)
        self.scale = descriptor.scale
        self.name = f"{descriptor.architecture.name} x{descriptor.scale} ({Path(weights).name})"

    @classmethod
    def default(cls, directory: str | Path | None = None, download: bool = False, **kwargs) -> "Upscaler":
        """RealESRGAN x4plus from the weights folder (or its checked download), else Lanczos x4."""
        directory = Path(directory) if directory else weights_dir()
        if (directory / X4PLUS_FP16).is_file():
            return cls(directory / X4PLUS_FP16, **kwargs)
        try:
            return cls(fetch(X4PLUS, X4PLUS_URL, X4PLUS_SHA256, directory, download), **kwargs)
        except (OSError, ValueError) as e:
            log.warning("no Real-ESRGAN weights (%s); upscaling with Lanczos", e)
            return cls(None, **kwargs)

    @property
    def is_model(self) -> bool:
        return self.model is not None

    def __call__(self, image: np.ndarray, outscale: float | None = None, check=None) -> np.ndarray:
        """Upscale by the model's factor, then resize to `outscale` x the input if given.
        `check` is called between tiles (it may raise to stop, e.g. on a time limit)."""
        h, w = image.shape[:2]
        outscale = outscale or self.scale
        if self.model is None:
            return lanczos(image, outscale)
        out = from_unit(self.upscale_tensor(to_unit(image), check))
        if outscale != self.scale:
            out = np.asarray(Image.fromarray(out).resize((round(w * outscale), round(h * outscale)), Image.LANCZOS))
        return out

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor, check=None) -> torch.Tensor:
        """(1,3,H,W) in [0,1] -> (1,3,sH,sW)."""
        p, s = self.pre_pad, self.scale
        h, w = x.shape[-2:]
        if p:
            x = F.pad(x, (p, p, p, p), mode="reflect" if min(h, w) > p else "replicate")
        out = self.tiled(x, check) if self.tile and max(x.shape[-2:]) > self.tile else self.run(x)
        if p:
            out = out[..., p * s : (p + h) * s, p * s : (p + w) * s]
        return out.clamp(0, 1)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The model on one (1,3,h,w) piece, in float32 out."""
        if not self.bf16:
            return self.model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(x.contiguous(memory_format=torch.channels_last)).float()

    def tiled(self, x: torch.Tensor, check=None) -> torch.Tensor:
        _, c, h, w = x.shape
        t, pad, s = self.tile, self.tile_pad, self.scale
        out = x.new_zeros(1, c, h * s, w * s)
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                # the tile plus its context, clipped to the image
                cy0, cx0, cy1, cx1 = max(y0 - pad, 0), max(x0 - pad, 0), min(y1 + pad, h), min(x1 + pad, w)
                if check is not None:
                    check()
                result = self.run(x[..., cy0:cy1, cx0:cx1])
                out[..., y0 * s : y1 * s, x0 * s : x1 * s] = result[
                    ..., (y0 - cy0) * s : (y1 - cy0) * s, (x0 - cx0) * s : (x1 - cx0) * s
                ]
        return out


def lanczos(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((round(w * factor), round(h * factor)), Image.LANCZOS))
