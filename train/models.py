"""The networks a training config describes, and the EMA generator of a checkpoint: what
the training loop and the exporter both build (so neither imports the other)."""

from __future__ import annotations

import torch

from gan_face.deblur import DeblurGenerator
from gan_face.discriminator import PatchDiscriminator
from gan_face.generator import UNetGenerator
from train import checkpoint
from train.config import TrainConfig


def build_generator(cfg: TrainConfig):
    if cfg.model == "deblur":
        return DeblurGenerator()
    return UNetGenerator(channels=cfg.g_channels, blocks=cfg.g_blocks, norm=cfg.g_norm, out_scale=cfg.g_out_scale, relight=cfg.g_relight,
                         mirror=cfg.g_mirror)


def build_discriminator(cfg: TrainConfig) -> PatchDiscriminator:
    return PatchDiscriminator(base_channels=cfg.d_channels, max_channels=cfg.d_max_channels, n_layers=cfg.d_layers, norm=cfg.d_norm)


def ema_model(state: dict):
    """The generator of a checkpoint with its EMA weights (buffers from the trained model)."""
    cfg = TrainConfig(**checkpoint.config_of(state))
    with torch.random.fork_rng(devices=[]):  # model construction must not move the caller's RNG
        g = build_generator(cfg)
    g.load_state_dict(state["g"])
    for param, shadow in zip(g.parameters(), state["ema"]["shadow_params"]):
        param.data.copy_(shadow)
    return g.eval()
