"""Scores of a restored image against the clean one: PSNR, SSIM, LPIPS, identity.

The one place these are defined; the evaluation harnesses, training's validation and the
tests import them. Tensors are (N,3,H,W) in [0,1].
"""

from __future__ import annotations

import functools

import kornia
import torch


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image, in dB."""
    mse = (a.clamp(0, 1) - b.clamp(0, 1)).pow(2).flatten(1).mean(1).clamp(min=1e-10)
    return 10 * torch.log10(1 / mse)


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image, inside `mask` (N,1,H,W) only."""
    err = ((a - b).pow(2) * mask).flatten(1).sum(1) / (mask.flatten(1).sum(1) * 3).clamp(min=1)
    return 10 * torch.log10(1 / err.clamp(min=1e-10))


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image, 11 px Gaussian window."""
    return kornia.metrics.ssim(a, b, 11).flatten(1).mean(1)


@functools.cache
def lpips_model(net: str = "alex"):
    from gan_face.perceptual import LPIPS

    return LPIPS(net)


@torch.inference_mode()
def lpips(a: torch.Tensor, b: torch.Tensor, net: str = "alex", batch: int = 32, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, LPIPS v0.1 (0 = identical; about 0.4 between two people's faces); with
    `mask` (N,1,H,W), inside the mask only."""
    model = lpips_model(net)
    part = lambda t, i: None if t is None else t[i : i + batch]  # noqa: E731
    return torch.cat([model(a[i : i + batch], b[i : i + batch], part(mask, i)) for i in range(0, len(a), batch)])
