"""PatchGAN discriminator with the seed's three stabilisers.

1. normalisation: batch, instance, or both ("batch+instance": half the channels of a
   layer get instance norm, half batch norm, as in IBN-Net);
2. noise injection: Gaussian noise on the input and on every hidden feature map while
   training, with a std (`noise_std`) the training loop anneals to 0. One noise value per
   pixel, shared by all channels (StyleGAN's noise inputs): drawing one per channel was half
   of a training step's time;
3. gradient penalty: computed by the training loop (`train/losses.py`), since it needs
   real and fake images.

    image -> [conv4x4/2, LReLU] -> n_layers x [noise, conv4x4/2, norm, LReLU]
          -> [noise, conv4x4/1, norm, LReLU] -> conv4x4/1 -> (B,1,h,w) logits, one per patch
"""

from __future__ import annotations

import torch
from torch import nn

from gan_face.hub import HubModel
from gan_face.modelcard import DISCRIMINATOR_CARD
from gan_face.norm import make_norm

NORMS = ("batch", "instance", "batch+instance", "none")


class PatchDiscriminator(
    nn.Module,
    HubModel,
    library_name="gan_face",
    license="cc-by-nc-4.0",
    tags=["face-restoration", "gan", "discriminator"],
    repo_url="https://github.com/gan-face/gan-face",
    model_card_template=DISCRIMINATOR_CARD,
):
    """PatchGAN discriminator.

    Args:
        in_channels: channels of the judged image (3 for RGB).
        base_channels: width of the first layer; doubles each layer up to `max_channels`.
        max_channels: cap on the width.
        n_layers: stride-2 layers after the first one (receptive field grows with it).
        norm: "instance" (default: independent of the batch, so gradient accumulation gives
            the gradients of one big batch), "batch", "batch+instance" or "none".
        noise_injection: add Gaussian noise of std `self.noise_std` to the input and
            hidden features in training mode (the training loop sets and anneals it).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        base_channels: int = 32,
        max_channels: int = 128,
        n_layers: int = 3,
        norm: str = "instance",
        noise_injection: bool = True,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers!r}")
        make_norm(norm, 8, NORMS)  # validates the name
        self.noise_injection = noise_injection
        self.noise_std = 0.0  # runtime state, not config: annealed by the training loop

        widths = [min(base_channels * 2**i, max_channels) for i in range(n_layers + 1)]
        layers = [nn.Sequential(nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2))]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1  # the last hidden layer keeps the resolution (pix2pix)
            layers.append(
                nn.Sequential(
                    nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=norm == "none"),
                    make_norm(norm, widths[i], NORMS),
                    nn.LeakyReLU(0.2),
                )
            )
        self.layers = nn.ModuleList(layers)
        self.out = nn.Conv2d(widths[-1], 1, 4, 1, 1)

    def add_noise(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise_injection and self.training and self.noise_std > 0:
            return x + torch.randn(x.shape[0], 1, *x.shape[2:], dtype=x.dtype, device=x.device) * self.noise_std
        return x

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """x: (B,C,H,W) in [-1,1]. Returns logits (B,1,h,w), and the hidden features if asked."""
        features = []
        for layer in self.layers:
            x = layer(self.add_noise(x))
            features.append(x)
        logits = self.out(self.add_noise(x))
        return (logits, features) if return_features else logits
