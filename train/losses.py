"""GAN losses: non-saturating adversarial loss, gradient penalties, feature matching, and the
terms from pretrained networks: the VGG16 perceptual loss and LPIPS (ImageNet weights converted
offline by `gan_face.perceptual`), and dlib's identity distance (`gan_face.dlib_resnet`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan_face.imageops import signed_to_unit

GRADIENT_PENALTIES = ("r1", "wgan-gp", "none")  # the ones train.py knows: one place for the list



def d_adversarial(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating discriminator loss: softplus(-D(real)) + softplus(D(fake))."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_adversarial(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: softplus(-D(fake))."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean squared gradient norm of D at real images."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def wgan_gp_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (|grad D(x_hat)| - 1)^2 at random interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    logits = discriminator(x_hat)
    (grad,) = torch.autograd.grad(logits.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def feature_matching(fake_features: list[torch.Tensor], real_features: list[torch.Tensor]) -> torch.Tensor:
    """L1 between D's hidden features of fake and (detached) real images (pix2pixHD)."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_features, real_features)) / len(fake_features)


def masked_l1(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over images of the L1 inside each image's occlusion mask (0 for unmasked images).

    Normalised per image, not per batch, so that splitting a batch into micro-batches
    (gradient accumulation) gives the same loss and gradients."""
    per_image = ((fake - real).abs() * mask).flatten(1).sum(1) / (mask.flatten(1).sum(1) * fake.shape[1]).clamp(min=1)
    return per_image.mean()


class PerceptualLoss(nn.Module):
    """L1 between frozen ImageNet VGG16 features (relu1_2, relu2_2, relu3_3, relu4_3) of the
    restored and the clean face, as ESRGAN and GFPGAN use; inputs (B,3,H,W) in [-1,1]."""

    def __init__(self, folder=None):
        super().__init__()
        from gan_face.perceptual import vgg_features

        self.vgg = vgg_features(depth=4, folder=folder)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        from gan_face.perceptual import imagenet_normalise

        a = self.vgg(imagenet_normalise(signed_to_unit(fake)))
        with torch.no_grad():
            b = self.vgg(imagenet_normalise(signed_to_unit(real)))
        return sum(F.l1_loss(x, y) for x, y in zip(a, b)) / len(a)


class LPIPSLoss(nn.Module):
    """Mean LPIPS (AlexNet, v0.1 heads) between the restored and the clean face; inputs
    (B,3,H,W) in [-1,1]. With a mask (B,1,H,W): inside it only (an image without one counts 0,
    as in `masked_l1`). `several` gives the loss for each of several masks for one AlexNet pass."""

    def __init__(self):
        super().__init__()
        from gan_face.perceptual import LPIPS

        self.lpips = LPIPS("alex")

    def forward(self, fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.lpips(signed_to_unit(fake), signed_to_unit(real), mask).float().mean()

    def several(self, fake: torch.Tensor, real: torch.Tensor, masks: list[torch.Tensor | None]) -> list[torch.Tensor]:
        return [d.float().mean() for d in self.lpips.distances(signed_to_unit(fake), signed_to_unit(real), masks)]


class IdentityLoss(nn.Module):
    """Mean dlib face-recognition distance between the restored and the clean face; inputs
    (B,3,H,W) aligned faces in [-1,1] (the restored one clamped: dlib never saw pixels outside)."""

    def __init__(self):
        super().__init__()
        from gan_face.dlib_resnet import IdentityDistance

        self.distance = IdentityDistance()

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return self.distance(signed_to_unit(fake).clamp(0, 1), signed_to_unit(real)).mean()
