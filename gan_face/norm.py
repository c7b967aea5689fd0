"""The normalisation layers the three models choose from by name.

Each model allows a subset (its `NORMS`): the generator only batch-independent norms, so a
micro-batch of 1 gives the same gradients as any other split of the batch (gradient
accumulation); the discriminator also batch norm and IBN-Net's mix; DeblurGAN-v2 the layout of
its official checkpoint.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ALL = ("batch", "instance", "batch+instance", "group", "none")


class BatchInstanceNorm(nn.Module):
    """Instance norm on the first half of the channels, batch norm on the rest (IBN-Net)."""

    def __init__(self, channels: int):
        super().__init__()
        self.split = channels // 2
        self.instance = nn.InstanceNorm2d(self.split, affine=True)
        self.batch = nn.BatchNorm2d(channels - self.split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, : self.split], x[:, self.split :]
        return torch.cat([self.instance(a), self.batch(b)], 1)


class CheckpointInstanceNorm(nn.InstanceNorm2d):
    """DeblurGAN-v2's instance norm: no affine, and running-stat buffers that exist only so the
    official checkpoint's keys load; it always normalises with the instance's own statistics."""

    def __init__(self, channels: int):
        super().__init__(channels, affine=False, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, eps=self.eps)


def make_norm(norm: str, channels: int, allowed: tuple[str, ...] = ALL, checkpoint_instance: bool = False) -> nn.Module:
    """The layer named `norm` for `channels` channels; a name outside `allowed` is a ValueError.
    `checkpoint_instance`: "instance" means `CheckpointInstanceNorm` (DeblurGAN-v2's layout)."""
    if norm not in allowed:
        raise ValueError(f"norm must be one of {allowed}, got {norm!r}")
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return CheckpointInstanceNorm(channels) if checkpoint_instance else nn.InstanceNorm2d(channels, affine=True)
    if norm == "batch+instance":
        return BatchInstanceNorm(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    return nn.Identity()
