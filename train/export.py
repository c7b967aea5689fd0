"""Export the EMA generator of a checkpoint as a Hub folder, without touching the run.

    python -m train.export runs/generator/checkpoint.pt pretrained/gan-face-generator [--push-to-hub REPO_ID]
        [--discriminator pretrained/gan-face-discriminator]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from train import checkpoint
from train.config import TrainConfig
from train.models import build_discriminator, ema_model


def save_folder(model, directory: Path, card_text: str) -> None:
    """model.safetensors + config.json + README.md (the model's card with `card_text` appended).

    The files are written to a temporary folder beside `directory` and then moved in one by
    one, so an interrupted export leaves no half-written file, and an existing card is
    replaced rather than kept (save_pretrained keeps an existing README.md)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=f".{directory.name}-") as tmp:
        model.save_pretrained(tmp)
        card = Path(tmp) / "README.md"
        card.write_text(card.read_text() + card_text)
        for name in ("model.safetensors", "config.json", "README.md"):  # the card last: it describes the weights
            os.replace(Path(tmp) / name, directory / name)


def export_generator(state: dict, directory: Path, command: str | None = None) -> None:
    """The EMA generator as a Hub folder, its card saying how these weights were made."""
    card = checkpoint.training_card(checkpoint.config_of(state), state["step"], state.get("wall", 0.0), command=command, init=state.get("init"), trained_on=state.get("hardware"))
    save_folder(ema_model(state), directory, card)


def export_discriminator(state: dict, directory: Path) -> None:
    """The discriminator as its own Hub folder (from_pretrained has no subfolder), to continue training."""
    with torch.random.fork_rng(devices=[]):
        d = build_discriminator(TrainConfig(**checkpoint.config_of(state)))
    d.load_state_dict(state["d"])
    d.save_pretrained(directory)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out", nargs="?", help="folder to write")
    p.add_argument("--push-to-hub", default="", help="Hub repo id to push to (needs network and a token)")
    p.add_argument("--command", default=None, help="the training command to record in the model card (default: the `python -m train` line of the checkpoint's config)")
    p.add_argument("--discriminator", default="", help="also write the discriminator to this folder")
    args = p.parse_args(argv)
    try:
        state = checkpoint.load(Path(args.checkpoint))
        if args.out:
            export_generator(state, Path(args.out), args.command)
        if args.discriminator:
            export_discriminator(state, Path(args.discriminator))
        if args.push_to_hub:
            ema_model(state).push_to_hub(args.push_to_hub)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
