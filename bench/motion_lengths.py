"""Which motion-blur lengths the detail model restores, on aligned test faces at 128 px.

    python bench/motion_lengths.py [--limit 96] [--detail pretrained/gan-face-detail]

Prints, per band of blur lengths (px at 128 px; the harness draws 3-31), the PSNR of the
blurred input, of Richardson-Lucy with the true kernel (what a known kernel allows) and of
the detail model (blind).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_face import baselines, degradations  # noqa: E402
from gan_face.dataset import AlignedFaces  # noqa: E402
from gan_face.evaluate import TEST_FACES  # noqa: E402
from gan_face.generator import UNetGenerator  # noqa: E402
from gan_face.imageops import batch_from_unit, batch_to_unit  # noqa: E402
from gan_face.metrics import psnr  # noqa: E402
from gan_face.pipeline import DEFAULT_DETAIL, run_stage  # noqa: E402

BANDS = ((3, 7), (7, 11), (11, 15), (15, 19), (19, 25), (25, 31))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=96)
    parser.add_argument("--detail", default=str(DEFAULT_DETAIL))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clean = batch_to_unit(AlignedFaces(TEST_FACES, 128, limit=args.limit).images)
    model = UNetGenerator.from_pretrained(args.detail, strict=True).eval()
    print("| blur length (px at 128) | input (dB) | Richardson-Lucy, true kernel | detail model | model gain |\n|---|---|---|---|---|")
    for lo, hi in BANDS:
        blurred, kernels = degradations.motion_blur(clean, torch.Generator().manual_seed(7), (lo, hi), return_kernels=True)
        deconvolved = np.stack([baselines.richardson_lucy(x, k.numpy()) for x, k in zip(batch_from_unit(blurred), kernels)])
        with torch.inference_mode():
            restored = run_stage(model, blurred)
        given, rl, ours = (psnr(x, clean).mean().item() for x in (blurred, batch_to_unit(deconvolved), restored))
        print(f"| {lo}-{hi} | {given:.2f} | {rl:.2f} | {ours:.2f} | {ours - given:+.2f} |")


if __name__ == "__main__":
    main()
