"""Compare 128 px detail models side by side on aligned test faces (a quicker check than the
harness, for choosing between training runs).

    python bench/compare_models.py old=path/to/model new=pretrained/gan-face-detail [--limit 240] [--identity-limit 100]

Each model runs alone (`pipeline.run_stage`, no planning) on the first --limit test faces with
motion blur, x4 downscaling (enlarged bicubically, and as `align` enlarges a small face:
bilinearly), the GFPGAN mix (fixed seed 7) and on the clean faces; prints PSNR / LPIPS (AlexNet)
per damage (with --vgg also LPIPS with VGG16: a check that shares no network with a model trained
on the AlexNet LPIPS, `train --lpips_weight`); then PSNR / LPIPS inside the mask of the harness's
occlusions (seed 7, the models given the mask) beside `cv2.inpaint`; then the median dlib identity
distance on the first --identity-limit faces, damaged as the harness damages them
(`evaluate.degrade`, seed 5). With --misalign A, every test face is first moved off the FFHQ
template by up to A of the crop (`degradations.misalign`), the clean target with it: the
models as they meet a face the detector aligned badly (under a large occluder). With
--lighting, first the harness's five lighting conditions, each model's whole output and its lighting gain alone (`transfer.split`: what the pipeline keeps of
the generator on a face whose detail is intact, except on its clipped pixels, where
`pipeline.detail_kept` keeps the whole output: the harness's lighting rows score both).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_face import baselines, degradations, transfer  # noqa: E402
from gan_face.dataset import AlignedFaces  # noqa: E402
from gan_face.evaluate import TEST_FACES, degrade  # noqa: E402
from gan_face.generator import UNetGenerator  # noqa: E402
from gan_face.imageops import batch_from_unit, batch_to_unit  # noqa: E402
from gan_face.metrics import lpips, masked_psnr, psnr  # noqa: E402
from gan_face.pipeline import run_stage  # noqa: E402

DAMAGES = {
    "motion": lambda x, g: degradations.motion_blur(x, g),
    "x4": lambda x, g: degradations.downscale(x, g, (4, 4)),
    # a face 32 px wide in a photo, as `align` brings it to 128 px: bilinear (and the harness's
    # area shrink); the row above enlarges bicubically, as the harness's x4 row does
    "x4 aligned": lambda x, g: degradations.downscale(x, g, (4, 4), ("area",), ("bilinear",)),
    "mixed": lambda x, g: degradations.mixed(x, g),
    "clean": lambda x, g: x.clone(),
}


def restore(model, faces: torch.Tensor, masks: torch.Tensor | None = None, batch: int = 48) -> torch.Tensor:
    with torch.no_grad():
        part = lambda t, i: None if t is None else t[i : i + batch]  # noqa: E731
        return torch.cat([run_stage(model, faces[i : i + batch], part(masks, i)) for i in range(0, len(faces), batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="NAME=PATH of an exported generator folder")
    parser.add_argument("--limit", type=int, default=240)
    parser.add_argument("--identity-limit", type=int, default=100, help="0 = skip the dlib identity distance")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vgg", action="store_true", help="also LPIPS with VGG16 (PSNR/LPIPS alex/LPIPS vgg)")
    parser.add_argument("--lighting", action="store_true", help="also the five lighting conditions (output / its gain alone)")
    parser.add_argument("--misalign", type=float, default=0.0, help="move every test face off the template first (degradations.misalign, seed 11): the models under the detector's landmark errors")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if any("=" not in m for m in args.models):
        parser.error("each model must be NAME=PATH")
    if not 0 <= args.misalign <= 0.5:
        parser.error(f"--misalign must be in [0, 0.5], got {args.misalign}")
    models = {name: UNetGenerator.from_pretrained(path, strict=True).eval() for name, path in (m.split("=", 1) for m in args.models)}
    clean = batch_to_unit(AlignedFaces(TEST_FACES, 128, limit=max(args.limit, args.identity_limit)).images)
    if args.misalign:
        clean = degradations.misalign(clean, torch.Generator().manual_seed(11), args.misalign, p=1.0)
    faces = clean[: args.limit]

    def scores(x: torch.Tensor) -> str:
        vgg = f"/{lpips(x, faces, net='vgg').mean():.3f}" if args.vgg else ""
        return f"{psnr(x, faces).mean():.2f}/{lpips(x, faces).mean():.3f}{vgg}"

    if args.lighting:
        for condition in degradations.LIGHTING_CONDITIONS:
            lq = degradations.lighting(faces, condition, 1.0)
            outs = {name: restore(model, lq) for name, model in models.items()}
            gained = {name: (torch.exp(transfer.split(out, lq)[0]) * lq).clamp(0, 1) for name, out in outs.items()}
            row = [f"{condition:10s} input {scores(lq)}"] + [f"{name} {scores(outs[name])} / gain {scores(gained[name])}" for name in models]
            print(("PSNR/LPIPS/LPIPS-vgg " if args.vgg else "PSNR/LPIPS ") + " | ".join(row), flush=True)

    for damage, make in DAMAGES.items():
        lq = make(faces, torch.Generator().manual_seed(7))
        row = [f"{damage:7s} input {scores(lq)}"] + [f"{name} {scores(restore(model, lq))}" for name, model in models.items()]
        print(("PSNR/LPIPS/LPIPS-vgg " if args.vgg else "PSNR/LPIPS ") + " | ".join(row), flush=True)

    d = degrade("occlusion", faces, 7)
    lq, mask = d["lq"], d["mask"]
    inpainted = batch_to_unit(np.stack([baselines.inpaint(x, m[0].numpy()) for x, m in zip(batch_from_unit(lq), mask)]))
    scored = {"input": lq, "cv2.inpaint": inpainted, **{name: restore(m, lq, mask) for name, m in models.items()}}
    row = [f"{name} {masked_psnr(out, faces, mask).mean():.2f}/{lpips(out, faces, mask=mask).mean():.3f}" for name, out in scored.items()]
    print("in the mask, occlusion: " + " | ".join(row), flush=True)

    if args.identity_limit:
        from gan_face.identity import IdentityScorer

        scorer = IdentityScorer()
        few = clean[: args.identity_limit]
        reference = [scorer.descriptor(x) for x in batch_from_unit(few)]

        def median_distance(x: torch.Tensor) -> float:
            return float(np.median([np.linalg.norm(scorer.descriptor(y) - r) for y, r in zip(batch_from_unit(x), reference)]))

        for damage in ("mixed", "motion blur"):
            lq = degrade(damage, few, 5)["lq"]
            row = [f"input {median_distance(lq):.3f}"] + [f"{name} {median_distance(restore(m, lq)):.3f}" for name, m in models.items()]
            print(f"identity {damage}: " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
