"""Training and inference speed on this machine's CPU.

    python bench/train_speed.py [--steps 10] [--micro 4] [--threads 2]

Prints images/s and peak RSS of training steps at 128 px, batch 16 (as `python -m train`
runs them: the PSNR phase, G alone, and the GAN phase, G + D with the gradient penalty at its
configured interval; each in float32 and in bf16 autocast), the
FLOPs per image of G and D, what each optional loss network adds to a step (its forward and backward
for 16 faces at 128 px, bf16 autocast, as `Trainer.generator_terms` runs it), the generator's
inference time per face at 128 and 256 px, and the time to draw one occlusion mask at 128 px per occluder (`degradations.occlusion_mask`, one of the
per-image costs of the degradations).
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_face import UNetGenerator, degradations  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.models import build_discriminator, build_generator  # noqa: E402
from train.trainer import Trainer  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gflops(model, *args) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*args)
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="generator", choices=("generator", "deblur"))
    args = parser.parse_args()
    if args.steps < 3:  # the first two are the allocator's warm-up and are not timed
        parser.error(f"--steps must be at least 3, got {args.steps}")
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(model=args.model, out=out, limit=256, val_count=8, batch=16, micro=args.micro, steps=10**6, threads=args.threads)
        g, d = build_generator(cfg).eval(), build_discriminator(cfg).eval()
        x = torch.zeros(1, 3, 128, 128)
        print(f"G: {sum(p.numel() for p in g.parameters()) / 1e6:.2f} M params, {gflops(g, x):.3f} GFLOPs/image at 128 px")
        print(f"D: {sum(p.numel() for p in d.parameters()) / 1e6:.2f} M params, {gflops(d, x):.3f} GFLOPs/image at 128 px")
        # the PSNR phase (G alone) and the GAN phase (G + D), each in float32 and bf16 autocast
        for phase, gan in (("PSNR phase (G)", False), ("GAN phase (G + D)", True)):
            for bf16 in (False, True):
                trainer = Trainer(dataclasses.replace(cfg, gan=gan, bf16=bf16))
                rss_before = peak_rss_mb()
                times = []
                for _ in range(args.steps):
                    t = time.perf_counter()
                    trainer.train_step(*trainer.sample_batch())
                    times.append(time.perf_counter() - t)
                steady = times[2:]  # skip the allocator warm-up; the rest include gradient-penalty steps
                print(
                    f"{phase}, {'bf16 autocast + channels-last' if bf16 else 'float32'}, 128 px, batch 16 ({cfg.micro} x {cfg.accumulation}), "
                    f"{args.threads} threads: {16 / statistics.mean(steady):.1f} images/s ({statistics.mean(steady):.2f} s/step, "
                    f"sampling and degradation included), peak RSS {peak_rss_mb():.0f} MB (after data load {rss_before:.0f} MB)"
                )

    # the optional loss terms' networks (--perceptual_weight, --lpips_weight, --identity_weight)
    from train.losses import IdentityLoss, LPIPSLoss, PerceptualLoss

    real = torch.rand(16, 3, 128, 128) * 2 - 1
    costs = {}
    for name, term in (("VGG16 perceptual", PerceptualLoss()), ("LPIPS (AlexNet)", LPIPSLoss()), ("dlib identity", IdentityLoss())):
        runs = []
        for _ in range(4):
            fake = (torch.rand_like(real) * 2 - 1).requires_grad_(True)
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                value = term(fake, real)
            value.backward()
            runs.append(time.perf_counter() - t)
        costs[name] = 1000 * statistics.median(runs[1:])
    print(f"loss networks, forward + backward, 16 faces at 128 px, bf16, {args.threads} threads: " + ", ".join(f"{k} {v:.0f} ms" for k, v in costs.items()))

    if args.model == "generator":
        g = UNetGenerator().eval()
        for size in (128, 256):
            x = torch.rand(1, 3, size, size) * 2 - 1
            with torch.inference_mode():
                for _ in range(3):
                    g(x)
                runs = []
                for _ in range(20):
                    t = time.perf_counter()
                    g(x)
                    runs.append(time.perf_counter() - t)
            print(f"generator inference {size} px: {1000 * statistics.median(runs):.1f} ms/face (median of 20)")

    times = {}
    for kind in degradations.OCCLUDERS:  # 32 masks each, fixed seed
        t = time.perf_counter()
        degradations.occlusion_mask(torch.Generator().manual_seed(11), 32, 128, 128, kinds=(kind,))
        times[kind] = 1000 * (time.perf_counter() - t) / 32
    print(f"occlusion mask at 128 px, {args.threads} threads: " + ", ".join(f"{k} {v:.1f} ms" for k, v in times.items()) + f" (mean {statistics.mean(times.values()):.1f} ms)")


if __name__ == "__main__":
    main()
