"""DeblurGAN-v2 generator (Kupyn et al., ICCV 2019): FPN on a MobileNetV2 backbone.

    x -> MobileNetV2 encoder: enc0 (1/2, 16) enc1 (1/4, 24) enc2 (1/8, 32) enc3 (1/16, 64) enc4 (1/32, 160)
      -> FPN top-down with 1x1 laterals: map4 -> map3 -> map2 -> map1 (all num_filters_fpn)
      -> a head per level, upsampled to 1/4, concatenated -> smooth -> x2 (+ lateral0) -> smooth2 -> x2
      -> conv -> tanh -> + x (global residual) -> clamp to [-1, 1]

Module and parameter names follow the official `models/fpn_mobilenet.py`, so the official
`fpn_mobilenet.h5` checkpoint (a torch state dict under "model", "module."-prefixed) loads
strictly with `DeblurGenerator.from_official`, after dropping its aliases: the official FPN
registers its MobileNetV2 layers twice (`fpn.features.N` and `fpn.encE.M`, the same
tensors) and keeps three layers it never runs (`fpn.features.16-18`). One deliberate difference: the official
instance norm has `track_running_stats=True` and the official code runs inference in
train mode to avoid those stale running statistics; here the norm always uses the
instance's own statistics (the buffers are kept only so the official keys load), so the
model runs in eval mode like any other.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_face.hub import HubModel
from gan_face.modelcard import DEBLUR_CARD
from gan_face.norm import make_norm

# MobileNetV2 inverted-residual settings: expansion t, channels c, repeats n, stride s.
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


NORMS = ("instance", "batch")


def conv_bn(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers = [] if expand == 1 else [nn.Conv2d(cin, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),  # depthwise
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),  # pointwise, linear
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_v2_features() -> list[nn.Module]:
    """The 16 MobileNetV2 layers the FPN uses (the official `features[0:16]`)."""
    layers, cin = [conv_bn(3, 32, 3, 2)], 32
    for t, c, n, s in MOBILENET_V2:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    return layers[:16]


# official `fpn.features.N` is the same module as `fpn.enc{E}.{N - start}`
ENCODER_SLICES = ((0, 2), (2, 4), (4, 7), (7, 11), (11, 16))


def conv_norm_relu(cin: int, cout: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), make_norm(norm, cout, NORMS, checkpoint_instance=True), nn.ReLU(inplace=True))


class FPN(nn.Module):
    def __init__(self, num_filters: int, norm: str):
        super().__init__()
        features = mobilenet_v2_features()
        # The official code also registers these modules as `features` (a second name for
        # the same weights) plus three unused layers; `from_official` maps those keys.
        self.enc0, self.enc1, self.enc2, self.enc3, self.enc4 = (nn.Sequential(*features[a:b]) for a, b in ENCODER_SLICES)
        self.td1 = conv_norm_relu(num_filters, num_filters, norm)
        self.td2 = conv_norm_relu(num_filters, num_filters, norm)
        self.td3 = conv_norm_relu(num_filters, num_filters, norm)
        self.lateral4 = nn.Conv2d(160, num_filters, 1, bias=False)
        self.lateral3 = nn.Conv2d(64, num_filters, 1, bias=False)
        self.lateral2 = nn.Conv2d(32, num_filters, 1, bias=False)
        self.lateral1 = nn.Conv2d(24, num_filters, 1, bias=False)
        self.lateral0 = nn.Conv2d(16, num_filters // 2, 1, bias=False)

    def forward(self, x: torch.Tensor):
        enc0 = self.enc0(x)
        enc1 = self.enc1(enc0)
        enc2 = self.enc2(enc1)
        enc3 = self.enc3(enc2)
        enc4 = self.enc4(enc3)
        map4 = self.lateral4(enc4)
        map3 = self.td1(self.lateral3(enc3) + F.interpolate(map4, scale_factor=2.0, mode="nearest"))
        map2 = self.td2(self.lateral2(enc2) + F.interpolate(map3, scale_factor=2.0, mode="nearest"))
        map1 = self.td3(self.lateral1(enc1) + F.interpolate(map2, scale_factor=2.0, mode="nearest"))
        return self.lateral0(enc0), map1, map2, map3, map4


class FPNHead(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.block0 = nn.Conv2d(cin, mid, 3, padding=1, bias=False)
        self.block1 = nn.Conv2d(mid, cout, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.block1(F.relu(self.block0(x))))


class DeblurGenerator(
    nn.Module,
    HubModel,
    library_name="gan_face",
    license="cc-by-nc-4.0",
    pipeline_tag="image-to-image",
    tags=["deblurring", "gan", "deblurgan-v2"],
    repo_url="https://github.com/gan-face/gan-face",
    model_card_template=DEBLUR_CARD,
):
    """DeblurGAN-v2 FPN-MobileNetV2 generator.

    Args:
        num_filters: width of the segmentation heads (official: 64).
        num_filters_fpn: width of the FPN levels (official: 128; must be 2 x num_filters).
        norm: "instance" (official) or "batch" for the FPN and smoothing layers.
    """

    def __init__(self, *, num_filters: int = 64, num_filters_fpn: int = 128, norm: str = "instance"):
        super().__init__()
        if num_filters_fpn != 2 * num_filters:
            raise ValueError(f"num_filters_fpn must be 2 x num_filters (lateral0 is added to the smoothed map), got {num_filters_fpn} and {num_filters}")
        make_norm(norm, 8, NORMS, checkpoint_instance=True)
        self.fpn = FPN(num_filters_fpn, norm)
        self.head1 = FPNHead(num_filters_fpn, num_filters, num_filters)
        self.head2 = FPNHead(num_filters_fpn, num_filters, num_filters)
        self.head3 = FPNHead(num_filters_fpn, num_filters, num_filters)
        self.head4 = FPNHead(num_filters_fpn, num_filters, num_filters)
        self.smooth = conv_norm_relu(4 * num_filters, num_filters, norm)
        self.smooth2 = conv_norm_relu(num_filters, num_filters // 2, norm)
        self.final = nn.Conv2d(num_filters // 2, 3, 3, padding=1)

    multiple = 32  # input height and width must be multiples of this

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,3,H,W) in [-1,1], H and W multiples of 32. Returns the deblurred image in [-1,1]."""
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"height and width must be multiples of {self.multiple}, got {h}x{w}")
        map0, map1, map2, map3, map4 = self.fpn(x)
        up = lambda t, s: F.interpolate(t, scale_factor=float(s), mode="nearest")  # noqa: E731
        maps = [up(self.head4(map4), 8), up(self.head3(map3), 4), up(self.head2(map2), 2), self.head1(map1)]
        smoothed = up(self.smooth(torch.cat(maps, 1)), 2)
        smoothed = up(self.smooth2(smoothed + map0), 2)
        return torch.clamp(torch.tanh(self.final(smoothed)) + x, -1, 1)

    @classmethod
    def from_official(cls, path: str | Path) -> "DeblurGenerator":
        """Load an official DeblurGAN-v2 `fpn_mobilenet.h5` (a torch state dict) strictly."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path} is not a readable torch checkpoint: {e}") from e
        return cls.from_official_state_dict(state.get("model", state), str(path))

    @classmethod
    def from_official_state_dict(cls, state: dict, path: str = "state dict") -> "DeblurGenerator":
        state = {k.removeprefix("module."): v for k, v in state.items()}
        if any(k.startswith("fpn.inception") or "conv2d_1a" in k for k in state):
            raise ValueError(f"{path} is an fpn_inception checkpoint; only fpn_mobilenet is supported")
        for key in [k for k in state if k.startswith("fpn.features.")]:
            index, rest = key.removeprefix("fpn.features.").split(".", 1)
            alias = next((f"fpn.enc{e}.{int(index) - a}.{rest}" for e, (a, b) in enumerate(ENCODER_SLICES) if a <= int(index) < b), None)
            value = state.pop(key)
            if alias is not None and alias in state and not torch.equal(state[alias], value):
                raise ValueError(f"{path}: {key} and {alias} should be the same tensor but differ")
        model = cls()
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{path} does not match the DeblurGAN-v2 FPN-MobileNetV2 layout: {e}") from e
        return model.eval()
