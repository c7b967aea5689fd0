"""Pipeline speed on this machine's CPU, against GFPGAN v1.4's architecture.

    python bench/pipeline_speed.py [--threads 2] [--repeats 5]

Prints per-stage and total times (median of --repeats) for ../shared/data/photos/astronaut.png
(512 px, one face), for a 1024 px portrait with one 400 px face at x1 (sharp, motion-blurred, with
the GFPGAN mix, occluded with its mask given), and for a 1024 px photo with several faces (test faces from
../shared/data/faces/test/ on a grey canvas) with Lanczos background upscaling, and the cost of
Real-ESRGAN x4plus background upscaling on the astronaut at 256 px (in bf16 where the CPU has it,
and then in float32); then the face stages per face (deblur + generator + 2x) against GFPGAN
v1.4's architecture (GFPGANv1Clean through spandrel, random weights, 512 px faces as GFPGAN runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_face.pipeline import FaceRestorer  # noqa: E402
from gan_face.upscale import Upscaler  # noqa: E402
from gan_face.weights import SHARED  # noqa: E402



def group_photo() -> np.ndarray:
    canvas = Image.new("RGB", (1024, 1024), (128, 128, 128))
    faces = sorted((SHARED / "data" / "faces" / "test").glob("*.jpg"))[:8]
    for i, path in enumerate(faces):
        face = Image.open(path).convert("RGB").resize((230, 280))
        canvas.paste(face, (20 + (i % 4) * 250, 120 + (i // 4) * 420))
    return np.asarray(canvas)


def big_portrait() -> np.ndarray:
    """A 768x1024 portrait from ../shared/data/photos/portraits whose face box is 400 px wide."""
    return np.asarray(Image.open(SHARED / "data" / "photos" / "portraits" / "canada_003f.jpg").convert("RGB"))


def median_run(fn, repeats: int):
    results, times = None, []
    for _ in range(repeats):
        t = time.perf_counter()
        results = fn()
        times.append(time.perf_counter() - t)
    return results, statistics.median(times)


def report(name: str, restorer: FaceRestorer, image: np.ndarray, repeats: int, **options) -> None:
    restorer(image, **options)  # warm-up
    runs = [restorer(image, **options) for _ in range(repeats)]
    stages = {k: statistics.median(r.timings[k] for r in runs) for k in runs[0].timings}
    detail = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in stages.items() if k != "total")
    print(f"{name}: {len(runs[0].faces)} face(s), total {stages['total']:.2f} s ({detail})")


@torch.inference_mode()
def face_stage_times(restorer: FaceRestorer, repeats: int) -> tuple[float, float]:
    """Seconds per face: ours (deblur + generator at 128 px) and GFPGAN v1.4's network (512 px)."""
    from spandrel.architectures.GFPGAN import GFPGAN  # noqa: F401 - registers the arch
    from spandrel.architectures.GFPGAN.__arch.gfpganv1_clean_arch import GFPGANv1Clean

    crop = np.array(Image.open(SHARED / "data" / "photos" / "astronaut.png").convert("RGB").resize((128, 128)))  # a writable copy: torch warns on a read-only view
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 127.5 - 1

    def ours():
        y = restorer.deblur(x) if restorer.deblur is not None else x
        return restorer.generator(y)

    ours()
    _, ours_time = median_run(ours, repeats)
    gfpgan = GFPGANv1Clean(out_size=512, num_style_feat=512, channel_multiplier=2, different_w=True, narrow=1, sft_half=True).eval()
    big = torch.rand(1, 3, 512, 512) * 2 - 1
    gfpgan(big)
    _, gfpgan_time = median_run(lambda: gfpgan(big), max(2, repeats // 2))
    return ours_time, gfpgan_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    restorer = FaceRestorer.from_pretrained()
    for note in restorer.notes:
        print("note:", note)
    astronaut = np.asarray(Image.open(SHARED / "data" / "photos" / "astronaut.png").convert("RGB"))
    group = group_photo()
    report("astronaut 512 px, x2, Lanczos background", restorer, astronaut, args.repeats)
    report("group 1024 px, x2, Lanczos background", restorer, group, args.repeats)
    report("astronaut 512 px, x1 (no upscaling)", restorer, astronaut, args.repeats, upscale=1)
    portrait = big_portrait()
    report("portrait 768x1024 px, one 400 px face, x1 (target <= 0.5 s)", restorer, portrait, args.repeats, upscale=1)
    from gan_face import photo_damage

    report("the same portrait motion-blurred (the high-resolution model)", restorer, photo_damage.motion_blur(portrait, 5), args.repeats, upscale=1)
    report("the same portrait with the GFPGAN mix (NL-means + the high-resolution model)", restorer, photo_damage.mixed(portrait, 2033), args.repeats, upscale=1)
    occluded, mask = photo_damage.occluder(portrait, restorer.detector(portrait)[:1], 0.25, 3)
    report("the same portrait with an occluder, its mask given (the inpainting model)", restorer, occluded, args.repeats, upscale=1, mask=mask)
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.LANCZOS))
    report(f"astronaut at 256 px, x2, Real-ESRGAN x4plus background (its cost; bf16: {restorer.background.bf16})", restorer, small, 1, realesrgan_background=True)
    if restorer.background.is_model and restorer.background.bf16:  # what a CPU without native bf16 pays
        bf16, restorer.background = restorer.background, Upscaler.default(bf16=False)
        report("the same in float32", restorer, small, 1, realesrgan_background=True)
        restorer.background = bf16
    ours, gfpgan = face_stage_times(restorer, args.repeats)
    print(f"face stages per face: ours {ours * 1000:.1f} ms (deblur + generator at 128 px), "
          f"GFPGAN v1.4 architecture {gfpgan * 1000:.0f} ms (512 px): {gfpgan / ours:.0f}x faster")


if __name__ == "__main__":
    main()
