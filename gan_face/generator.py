"""U-Net generator that reconstructs an aligned face from a degraded one.

    face (3) + occlusion mask (1)
        |  pixel-unshuffle x2  (space-to-depth: full-res detail for free, 4x fewer FLOPs)
      stem (+ mirror stem: the same input flipped left-right, optional) -- head -> pixel-shuffle -> + relit input (global residual)
        |                                                             gain -> x2 -> exp -> x input (relighting)
        | level 0  (H/2, channels[0])  ----- skip ----->  merge(cat) -|
        |  down                                                        ^ up
        | level 1  (H/4, channels[1])  ----- skip ----->  merge(cat) -|
        |  ...                                                          ...
        | bottleneck (H/2^L, channels[-1])  ----------------------------|

Every level of the encoder hands its features to the decoder level of the same
size (the U-Net skip connections); the decoder merges them by concatenation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan_face.hub import HubModel
from gan_face.modelcard import GENERATOR_CARD
from gan_face.norm import make_norm

# batch-independent norms only (see gan_face/norm.py)
NORMS = ("group", "instance", "none")


class ConvBlock(nn.Sequential):
    """3x3 conv -> norm -> SiLU."""

    def __init__(self, cin: int, cout: int, norm: str, stride: int = 1):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1), make_norm(norm, cout, NORMS), nn.SiLU())


class ResBlock(nn.Module):
    """x + conv(SiLU(norm(conv(x)))): the identity path carries the input's absolute
    brightness through the whole network (a normalised plain stack would discard it,
    and with it what the lighting correction needs). It starts as the identity (last conv
    zero, as in Fixup): a model grown deeper (`blocks`) from a trained one begins as that model."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(channels, channels, norm), nn.Conv2d(channels, channels, 3, 1, 1))
        nn.init.zeros_(self.body[1].weight)
        nn.init.zeros_(self.body[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UNetGenerator(
    nn.Module,
    HubModel,
    library_name="gan_face",
    license="cc-by-nc-4.0",
    pipeline_tag="image-to-image",
    tags=["face-restoration", "gan", "unet"],
    repo_url="https://github.com/gan-face/gan-face",
    model_card_template=GENERATOR_CARD,
):
    """Face restoration U-Net with skip connections and an occlusion-mask input.

    Args:
        image_channels: colour channels of the face in and out (3 for RGB).
        channels: width of each U-Net level, from the highest resolution down.
        blocks: residual blocks per level, in the encoder and after each decoder merge.
        norm: "none" (default: normalisation hurts restoration, as EDSR found for
            super-resolution), "group" or "instance"; never batch norm (see `make_norm`).
        out_scale: 1 returns the face at input size, 2 at twice the size.
        relight: also predict a per-pixel, per-channel gain that multiplies the input
            before the residual is added. Lighting is multiplicative: an additive residual
            would have to redraw every detail of a dark face brighter, a gain scales it.
        mirror: also read the face and mask flipped left-right, through a second stem added
            to the first. Under a one-sided occluder (a hand over one eye) the other half of
            an aligned face is the best clue to what is hidden; the deepest level of the
            U-Net sees both halves too, but only at 1/16 of the resolution.
    """

    def __init__(
        self,
        *,
        image_channels: int = 3,
        channels: tuple[int, ...] | list[int] = (16, 32, 64, 128, 256),
        blocks: int = 1,
        norm: str = "none",
        out_scale: int = 1,
        relight: bool = True,
        mirror: bool = False,
    ):
        super().__init__()
        if out_scale not in (1, 2):
            raise ValueError(f"out_scale must be 1 or 2, got {out_scale!r}")
        if len(channels) < 2 or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels needs at least two positive widths, got {channels!r}")
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks!r}")
        make_norm(norm, 8, NORMS)  # validates the name before any layer is built
        channels = [int(c) for c in channels]
        self.image_channels, self.out_scale = image_channels, out_scale
        self.depth = len(channels)

        # +1 input channel: the occlusion mask (1 = unknown pixel). x4 from the pixel-unshuffle.
        self.stem = nn.Conv2d((image_channels + 1) * 4, channels[0], 3, 1, 1)
        self.mirror_stem = nn.Conv2d((image_channels + 1) * 4, channels[0], 3, 1, 1) if mirror else None
        self.encoder = nn.ModuleList(nn.Sequential(*[ResBlock(c, norm) for _ in range(blocks)]) for c in channels)
        self.down = nn.ModuleList(ConvBlock(a, b, norm, stride=2) for a, b in zip(channels[:-1], channels[1:]))
        self.merge = nn.ModuleList(
            nn.Sequential(ConvBlock(a + b, a, norm), *[ResBlock(a, norm) for _ in range(blocks)])
            for a, b in zip(channels[:-1], channels[1:])
        )
        shuffle = 2 * out_scale  # undo the unshuffle, and upscale once more for out_scale=2
        self.head = nn.Conv2d(channels[0], image_channels * shuffle * shuffle, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(shuffle)
        # log-gain at half resolution (upsampled: shading is smooth), None without relighting
        self.gain = nn.Conv2d(channels[0], image_channels, 3, 1, 1) if relight else None
        # start as the identity (a stable GAN start); the mirror stem starts silent, so a model
        # fine-tuned with it begins as the model it was initialised from
        for conv in (self.head, self.gain, self.mirror_stem):
            if conv is not None:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B,3,H,W) in [-1,1]; mask: (B,1,H,W), 1 = occluded, or None (nothing occluded).

        Returns (B,3,H*out_scale,W*out_scale), roughly in [-1,1] (clamp before display).
        """
        b, _, h, w = x.shape
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"height and width must be multiples of {self.multiple}, got {h}x{w}")
        if mask is None:
            mask = x.new_zeros(b, 1, h, w)
        else:
            # occluded pixels carry no information about the face (noise, a hand, a scratch):
            # blank them (mid-grey), so the network fills them instead of learning to ignore them
            x = x * (1 - mask)
        # 1. space-to-depth and stem
        face = torch.cat([x, mask], 1)
        feat = self.stem(F.pixel_unshuffle(face, 2))
        if self.mirror_stem is not None:
            feat = feat + self.mirror_stem(F.pixel_unshuffle(face.flip(-1), 2))
        # 2. encoder: keep each level's output for the skip connections
        skips = []
        for i, level in enumerate(self.encoder):
            feat = level(feat)
            if i < len(self.down):
                skips.append(feat)
                feat = self.down[i](feat)
        # 3. decoder: upsample, concatenate the skip, merge
        for i in reversed(range(len(self.merge))):
            feat = F.interpolate(feat, scale_factor=2.0, mode="bilinear", align_corners=False)
            feat = self.merge[i](torch.cat([feat, skips[i]], 1))
        # 4. relit input + residual (the head)
        base = x
        if self.gain is not None:
            # 3 channels: bilinear upsampling (and its backward) is 1.5x faster in the contiguous layout than channels-last
            log_gain = F.interpolate(self.gain(feat).contiguous(), scale_factor=2.0, mode="bilinear", align_corners=False)
            base = (x + 1) * torch.exp(log_gain.clamp(-4, 4)) - 1  # gain on [0,1] intensities
        if self.out_scale == 2:
            base = F.interpolate(base, scale_factor=2.0, mode="bilinear", align_corners=False)
        return base + self.shuffle(self.head(feat))
