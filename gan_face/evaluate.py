"""Evaluation harness: `python -m gan_face.evaluate [--limit N] [--out docs/results]`.

On the test faces (`../shared/data/faces/test/`, 300 people never used in training), aligned
like the training data, each degradation is applied with a fixed seed and every method is
scored against the clean face:
- PSNR, SSIM and LPIPS (AlexNet) on the whole face, PSNR and LPIPS inside the occlusion mask
  where there is one;
- identity distance to the clean face with dlib's face-recognition ResNet;
- methods: the degraded input, classical restoration (Richardson-Lucy with the true kernel,
  cv2.inpaint, CLAHE, gamma, Lanczos, NL-means), gan-face's models as the pipeline plans them,
  and, where that plan gives DeblurGAN-v2 some faces (only without a detail model), the models
  without it;
- and the models on the clean faces themselves ("none"): what they change in a face that
  needs no restoration.
Writes results.csv, a Markdown table, a bar chart per metric and a contact sheet per
degradation (degraded / best classical / ours / clean) into --out, and --report (Markdown).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from gan_face import baselines, degradations
from gan_face.assess import assess
from gan_face.dataset import AlignedFaces
from gan_face.deblur import DeblurGenerator
from gan_face.generator import UNetGenerator
from gan_face.imageops import batch_from_unit as to_uint8
from gan_face.imageops import batch_to_unit as to_unit
from gan_face.metrics import lpips, masked_psnr, psnr, ssim
from gan_face.pipeline import DEFAULT_DEBLUR, DEFAULT_DETAIL, DEFAULT_GENERATOR, DEFAULT_INPAINT, DEFAULT_INPAINT_DAMAGED, as_pasted, plan, run_models, second_look, unpainted
from gan_face.report import DEGRADATIONS, INPUT, NONE, OURS, OURS_DEBLUR, contact_sheet, sheet_name, target_lines, write_outputs
from gan_face.weights import SHARED

TEST_FACES = SHARED / "data" / "faces" / "test"


def degrade(name: str, clean: torch.Tensor, seed: int) -> dict:
    """{'lq': (N,3,H,W), 'mask': (N,1,H,W) or None, plus what the baselines may use}."""
    g = torch.Generator().manual_seed(seed)
    if name == "motion blur":
        lq, kernels = degradations.motion_blur(clean, g, return_kernels=True)
        return {"lq": lq, "mask": None, "kernels": kernels}
    if name == "occlusion":
        lq, mask = degradations.occlude(clean, g, area=(0.1, 0.3))
        return {"lq": lq, "mask": mask}
    if name in degradations.LIGHTING_CONDITIONS:
        return {"lq": degradations.lighting(clean, name, 1.0), "mask": None}
    if name == "downscale x4":
        small = F.interpolate(clean, scale_factor=0.25, mode="area")
        lq = F.interpolate(small, size=clean.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
        return {"lq": lq, "mask": None, "small": to_uint8(small)}
    if name == "mixed":
        return {"lq": degradations.mixed(clean, g), "mask": None}
    if name == "all":
        lq, mask = degradations.random_degradation(clean, g, everything=True)
        return {"lq": lq, "mask": mask}
    if name == NONE:
        return {"lq": clean, "mask": None}
    raise ValueError(f"unknown degradation {name!r}")


def classical(name: str, d: dict) -> dict[str, np.ndarray]:
    """The classical baselines that apply to a degradation: {method name: (N,H,W,3) uint8}."""
    lq = to_uint8(d["lq"])
    size = lq.shape[2], lq.shape[1]
    if name == "motion blur":
        return {"Richardson-Lucy (true kernel)": np.stack([baselines.richardson_lucy(x, k.numpy()) for x, k in zip(lq, d["kernels"])])}
    if name == "occlusion":
        return {"cv2.inpaint": np.stack([baselines.inpaint(x, m[0].numpy()) for x, m in zip(lq, d["mask"])])}
    if name in degradations.LIGHTING_CONDITIONS:
        return {"CLAHE": np.stack([baselines.clahe(x) for x in lq]), "auto gamma": np.stack([baselines.auto_gamma(x) for x in lq])}
    if name == "downscale x4":
        return {"Lanczos": np.stack([baselines.lanczos_upscale(s, size) for s in d["small"]])}
    if name == "mixed":
        return {"NL-means": np.stack([baselines.denoise(x) for x in lq])}
    if name == "all":
        return {"cv2.inpaint + CLAHE": np.stack([baselines.clahe(baselines.inpaint(x, m[0].numpy())) for x, m in zip(lq, d["mask"])])}
    return {}


@torch.inference_mode()
def run_model(models: dict, lq: torch.Tensor, mask, batch: int = 48) -> tuple[torch.Tensor, Counter]:
    """The pipeline's model stages on every face as the pipeline plans, runs and keeps them
    (`plan` on each face's assessment at 128 px and `second_look`, then `run_models` and
    `as_pasted`: a face whose detail is intact keeps it, relit), in batches. models: stage
    name -> model for the stages there are (`pipeline.STAGES`). Returns the faces and how many
    went through each plan ("inpaint > detail": 12)."""
    faces = to_uint8(lq)
    outs, counts = [], Counter()
    for k in range(0, len(lq), batch):
        part = slice(k, k + batch)
        holes = None if mask is None else (mask[part] > 0.5).float()
        # as the pipeline assesses them: with their holes inpainted
        hole_of = [None] * len(faces[part]) if holes is None else [h[0].numpy() if h.max() > 0 else None for h in holes]
        assessments = [assess(unpainted(f, h), 128.0) for f, h in zip(faces[part], hole_of)]
        assessments, looked = second_look(models, lq[part], assessments, [h is not None for h in hole_of])
        plans = [plan(a, h is not None, set(models)) for a, h in zip(assessments, hole_of)]
        counts.update(" > ".join(p) or "nothing" for p in plans)
        outs.append(as_pasted(run_models(models, lq[part], holes, plans, done=looked), lq[part], holes, assessments))
    return torch.cat(outs), counts


def score(output: torch.Tensor, clean: torch.Tensor, mask, identity, clean_desc) -> dict:
    row = {
        "psnr": psnr(output, clean).mean().item(),
        "ssim": ssim(output, clean).mean().item(),
        "lpips": lpips(output, clean).mean().item(),
        "psnr_mask": masked_psnr(output, clean, mask).mean().item() if mask is not None else math.nan,
        "lpips_mask": lpips(output, clean, mask=mask).mean().item() if mask is not None else math.nan,
        "identity": math.nan,
    }
    if identity is not None:  # on the first len(clean_desc) faces (dlib is slow: ~0.1 s per face)
        dists = [np.linalg.norm(identity.descriptor(x) - c) for x, c in zip(to_uint8(output[: len(clean_desc)]), clean_desc)]
        row["identity"] = float(np.median(dists))
    return row


def evaluate(args) -> list[dict]:
    torch.set_num_threads(args.threads)
    data = AlignedFaces(args.data, args.size, limit=args.limit)
    clean = to_unit(data.images)
    generator = UNetGenerator.from_pretrained(args.generator, strict=True).eval()
    # as in the pipeline, when there is one: faces with holes go to the inpainting generator,
    # those also damaged to the model trained on such faces, and faces with damaged detail to
    # the detail model (then the generator when dark or bright)
    optional = {"inpaint": args.inpaint, "inpaint_damaged": args.inpaint_damaged, "detail": args.detail}
    models = {"generator": generator} | {
        stage: UNetGenerator.from_pretrained(path, strict=True).eval() for stage, path in optional.items() if path and Path(path).exists()
    }
    deblur = DeblurGenerator.from_pretrained(args.deblur, strict=True).eval() if Path(args.deblur).exists() else None
    identity = None
    if not args.no_identity:
        from gan_face.identity import IdentityScorer

        identity = IdentityScorer()
    clean_desc = [identity.descriptor(x) for x in to_uint8(clean[: args.identity_limit])] if identity else None
    identity_for = set(args.identity_on.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for index, name in enumerate(tqdm(DEGRADATIONS, desc="degradations")):
        d = degrade(name, clean, args.seed + index)
        mask = d["mask"]
        methods = {} if name == NONE else {INPUT: d["lq"]}  # the clean input would score infinite PSNR
        methods.update({k: to_unit(v) for k, v in classical(name, d).items()})
        ours, plans = run_model(models if deblur is None else {**models, "deblur": deblur}, d["lq"], mask)
        # where `plan` gave DeblurGAN-v2 no face (with a detail model it never does) that pass is
        # the models' own; else the models alone run too, and "+ deblur" rows compare the two
        if any("deblur" in p.split(" > ") for p in plans):
            methods[OURS], _ = run_model(models, d["lq"], mask)
            methods[OURS_DEBLUR] = ours
        else:
            methods[OURS] = ours
        tqdm.write(f"{name}: plans " + ", ".join(f"{p} {n}" for p, n in plans.most_common()))
        rows = []
        for method, output in methods.items():
            kind = method if method in (INPUT, OURS, OURS_DEBLUR) else "classical"
            scorer = identity if name in identity_for else None
            rows.append({"degradation": name, "method": method, "kind": kind, "n": len(clean), **score(output, clean, mask, scorer, clean_desc)})
        best = max((r for r in rows if r["kind"] == "classical"), key=lambda r: r["psnr"], default=None)
        if best:
            results.append({**best, "kind": "best classical"})
        results += [r for r in rows if r["kind"] != "classical" or r is not best]
        sheet = [("degraded", d["lq"])]
        if best:
            sheet.append((best["method"], methods[best["method"]]))
        shown = OURS_DEBLUR if OURS_DEBLUR in methods else OURS
        sheet += [(shown, methods[shown]), ("clean", clean)]
        contact_sheet(out / sheet_name(name), sheet)
    write_outputs(args, out, results, len(clean), len(data.rejected))
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m gan_face.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(TEST_FACES))
    p.add_argument("--limit", type=int, default=0, help="first N test images only (0 = all 1,440)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--generator", default=str(DEFAULT_GENERATOR))
    p.add_argument("--deblur", default=str(DEFAULT_DEBLUR))
    p.add_argument("--inpaint", default=str(DEFAULT_INPAINT), help="generator for the occluded faces ('' = the generator)")
    p.add_argument("--inpaint-damaged", default=str(DEFAULT_INPAINT_DAMAGED), help="generator for occluded faces that are damaged too ('' = --inpaint)")
    p.add_argument("--detail", default=str(DEFAULT_DETAIL), help="detail model for faces with damaged detail ('' = none)")
    p.add_argument("--out", default="docs/results")
    p.add_argument("--report", default="docs/results.md", help="Markdown report ('' = none)")
    p.add_argument("--card", action="append", default=[], help="model card (README.md) to append the evaluation table to; repeatable")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-identity", action="store_true", help="skip the dlib identity metric")
    p.add_argument("--identity-on", default="mixed,all,motion blur,occlusion", help="degradations scored for identity (comma-separated)")
    p.add_argument("--identity-limit", type=int, default=300, help="faces scored for identity (the first N)")
    args = p.parse_args(argv)
    args.command = "python -m gan_face.evaluate " + " ".join(sys.argv[1:] if argv is None else argv)
    return args


def main(argv=None) -> int:
    results = evaluate(parse_args(argv))
    for line in target_lines(results):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
