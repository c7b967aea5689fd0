"""Average the weights of exported generators of one architecture (a model soup).

    python -m train.average OUT A B [C ...]

Fine-tunes that start from the same weights tend to stay in one basin of the loss, where the
mean of their weights keeps much of what each learnt (Wortsman et al. 2022, "Model soups").
The folders must hold the same architecture (equal config.json); OUT gets the mean weights, that
config and a card naming the folders it averaged. Check the result: averaging is not always a gain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from gan_face.generator import UNetGenerator
from train.export import save_folder


def average(folders: list[Path], out: Path) -> None:
    """Write the element-wise mean of the generators in `folders` to `out` (a Hub folder)."""
    if len(folders) < 2:
        raise ValueError("give at least two folders to average")
    configs = [json.loads((Path(f) / "config.json").read_text()) for f in folders]
    if any(c != configs[0] for c in configs[1:]):
        raise ValueError(f"the folders hold different architectures: {configs}")
    models = [UNetGenerator.from_pretrained(str(f)) for f in folders]
    states = [m.state_dict() for m in models]
    mean = {k: torch.stack([s[k].float() for s in states]).mean(0).to(states[0][k].dtype) for k in states[0]}
    models[0].load_state_dict(mean, strict=True)
    sources = ", ".join(f"`{f}`" for f in folders)
    save_folder(models[0], Path(out), f"\n\n## Training\n\n- weights: the element-wise mean of {sources} (`python -m train.average`)\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.average", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder to write the averaged generator to")
    p.add_argument("folders", nargs="+", help="exported generator folders (model.safetensors + config.json)")
    args = p.parse_args(argv)
    try:
        average([Path(f) for f in args.folders], Path(args.out))
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"the mean of {len(args.folders)} generators written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
