"""Training state on disk (`checkpoint.pt`, resumable) and the exported Hub folder (EMA G).

A checkpoint holds everything a resumed run needs to continue exactly: G, D, the EMA of G,
both optimisers and schedulers, the step, the config and the data and degradation random
generators' states (torch's global generators restart from the seed and step at every step).
It is written to a temporary file and renamed, so a crash or kill during a save leaves the
previous checkpoint intact. It is read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from gan_face.atomic import atomic_write
from gan_face.degradations import MOTION_LENGTH, TRAINING_KINDS
from train.config import KIND_WEIGHT_FLAGS, command_line

# Fields that change the networks: a checkpoint only resumes into the same values.
ARCHITECTURE_FIELDS = ("model", "size", "g_channels", "g_blocks", "g_norm", "g_relight", "g_out_scale", "g_mirror", "d_channels", "d_max_channels", "d_layers", "d_norm")


def save(state: dict, path: Path) -> None:
    path = Path(path)
    try:
        with atomic_write(path) as tmp:  # a crash or kill mid-save leaves the previous checkpoint
            torch.save(state, tmp)
    except OSError as e:
        raise OSError(f"could not write checkpoint {path} ({e.strerror or e}); is the disk full? The previous checkpoint is intact") from e


def load(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle/zip errors of many kinds
        raise ValueError(f"{path} is not a readable gan-face checkpoint: {e}") from e
    missing = {"step", "config", "g", "d", "ema", "opt_g", "opt_d", "rng"} - set(state)
    if missing:
        raise ValueError(f"{path} is not a gan-face checkpoint: missing {sorted(missing)}")
    return state


def from_exported(folder: Path, generator: torch.nn.Module) -> dict:
    """The generator weights of an exported Hub folder, and how long they were trained (read
    from its card's "steps:" and "wall time:" lines, which `export` writes) so that a
    fine-tune's card counts them: {"g": state_dict, "init": {"step", "wall"}, "missing": the
    generator's layers the folder lacked}."""
    import re

    from safetensors.torch import load_file

    folder = Path(folder)
    weights, card = folder / "model.safetensors", folder / "README.md"
    if not weights.is_file():
        raise FileNotFoundError(f"no model.safetensors in {folder}")
    state = load_file(weights)
    missing, unexpected = generator.load_state_dict(state, strict=False)
    if unexpected:  # missing ones are layers the folder's model lacked: they keep their init
        raise ValueError(f"{weights} does not fit this generator: it has weights the generator lacks: {unexpected}")
    text = card.read_text() if card.is_file() else ""
    steps = re.search(r"^- steps: (\d+)", text, re.M)
    hours = re.search(r"^- wall time: ([\d.]+) h", text, re.M)
    init = {"step": int(steps[1]) if steps else 0, "wall": float(hours[1]) * 3600 if hours else 0.0}
    return {"g": generator.state_dict(), "step": init["step"], "init": init, "missing": missing}


# fields added after checkpoints were written with them missing, and what those checkpoints used
LEGACY = {"g_relight": False, **dict.fromkeys(KIND_WEIGHT_FLAGS, 1.0), "clean_fraction": 0.0, "gan": True, "perceptual_weight": 0.0, "lpips_weight": 0.0, "mask_lpips_weight": 0.0, "identity_weight": 0.0, "bf16": False,
          "patch": 0, "motion_length": list(MOTION_LENGTH), "data_aligned": False, "g_mirror": False}


def config_of(state: dict) -> dict:
    """A checkpoint's training config, with the values that older checkpoints implied."""
    return {**LEGACY, **state["config"]}


def check_compatible(saved: dict, current: dict, path: Path) -> None:
    """Refuse to resume into a different architecture, naming what differs."""
    diff = [f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}" for k in ARCHITECTURE_FIELDS if saved.get(k) != current.get(k)]
    if diff:
        raise ValueError(f"checkpoint {path} was trained with a different architecture ({'; '.join(diff)})")


def _kind_mix(cfg: dict) -> str:
    mix = ", ".join(f"{kind} {cfg[flag]:g}" for kind, flag in zip(TRAINING_KINDS, KIND_WEIGHT_FLAGS))
    if cfg.get("occlude_always"):
        mix += " (and an occluder on every degraded image)"
    if cfg.get("misalign"):
        mix += f" (half the faces moved off the template by up to {cfg['misalign']:g} of the crop)"
    return mix


def _losses(cfg: dict) -> str:
    terms = f"L1 {cfg['l1_weight']} + masked L1 {cfg['mask_l1_weight']}"
    if cfg["perceptual_weight"]:
        terms += f" + VGG16 perceptual {cfg['perceptual_weight']}"
    if cfg["lpips_weight"]:
        terms += f" + LPIPS (AlexNet) {cfg['lpips_weight']}"
    if cfg["mask_lpips_weight"]:
        terms += f" + masked LPIPS {cfg['mask_lpips_weight']}"
    if cfg.get("identity_weight"):
        terms += f" + dlib identity {cfg['identity_weight']}"
    if not cfg["gan"]:
        return terms + " (PSNR phase: no discriminator)"
    return terms + f" + adversarial {cfg['adv_weight']} + feature matching {cfg['fm_weight']} + {cfg['gp']} penalty {cfg['gp_weight']}"


def hardware() -> str:
    """What this process trains on (accelerate picks the GPU when there is one), with torch's version."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} GPU, torch {torch.__version__}"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def training_card(
    cfg: dict, step: int, wall_seconds: float, extra: str = "", command: str | None = None, init: dict | None = None, trained_on: str | None = None
) -> str:
    """The measured part of an exported model card: how these weights were made. `trained_on`:
    the hardware the checkpoint recorded (default: this machine's, for checkpoints from before it was)."""
    steps = f"{step} at batch {cfg['batch']} ({cfg['micro']} x {cfg['batch'] // cfg['micro']} accumulation)"
    if init:  # fine-tuned: count the run it started from too (its batch may have differed)
        extra = f"- initialised from: `{init['from']}` (step {init['step']}, {init['wall'] / 3600:.2f} h; steps and wall time above include it)\n" + extra
        steps = f"{step + init['step']}: {init['step']} before, then {steps}"
        wall_seconds += init["wall"]
    command = command or command_line(cfg)
    return f"""

## Training

- command: `{command}`
- data: `{cfg['data']}` ({"already aligned crops, resized" if cfg.get('data_aligned') else "aligned"} to the FFHQ 5-point template at {cfg['size']} px{f", trained on random {cfg['patch']} px windows" if cfg['patch'] else ""}), {cfg.get('limit') or 'all'} images
- steps: {steps}
- wall time: {wall_seconds / 3600:.2f} h
- hardware: {trained_on or hardware()}
- degradations: `gan_face.degradations.random_degradation`, drawn in proportion {_kind_mix(cfg)}; {cfg['clean_fraction']:.0%} of images left clean; motion blur {cfg['motion_length'][0]:g}-{cfg['motion_length'][1]:g} px per 128 px of crop
- losses: {_losses(cfg)}
- exported: the EMA of the generator (decay {cfg['ema_decay']})
{extra}"""
