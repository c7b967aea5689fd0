"""The evaluation harness's report: CSV, Markdown tables, bar charts, contact sheets and the
model cards' evaluation section. Scoring lives in `gan_face.evaluate` and `gan_face.metrics`."""

from __future__ import annotations

import csv
import math
import os
import re
import time
from pathlib import Path

import numpy as np
import torch

from gan_face import degradations
from gan_face.imageops import batch_from_unit as to_uint8

REPO = Path(__file__).resolve().parents[1]

# "none" last (the seeds of the others stay): what the models do to a face that needs nothing
NONE = "none (clean input)"
DEGRADATIONS = ("motion blur", "occlusion", *degradations.LIGHTING_CONDITIONS, "downscale x4", "mixed", "all", NONE)
INPUT, OURS, OURS_DEBLUR = "degraded input", "ours: models", "ours: models + deblur"


def sheet_name(degradation: str, suffix: str = ".png") -> str:
    """File name of a degradation's contact sheet: no spaces or brackets, which break Markdown
    links. `suffix` ".jpg" for sheets of photos (a tenth of the PNG's size)."""
    return "contact_" + re.sub(r"[^a-z0-9]+", "_", degradation.lower()).strip("_") + suffix


def contact_sheet(path: Path, rows: list[tuple[str, torch.Tensor]], n: int = 16) -> None:
    """One row per method (degraded / baseline / ours / clean), n faces each, labelled."""
    from PIL import Image, ImageDraw

    tiles = [to_uint8(t[:n]) for _, t in rows]
    size = tiles[0].shape[1]
    label_w = 170
    sheet = Image.new("RGB", (label_w + size * len(tiles[0]), size * len(tiles)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, ((name, _), faces) in enumerate(zip(rows, tiles)):
        draw.text((6, r * size + size // 2 - 6), name, fill="black")
        for c, face in enumerate(faces):
            sheet.paste(Image.fromarray(face), (label_w + c * size, r * size))
    sheet.save(path, quality=90) if Path(path).suffix == ".jpg" else sheet.save(path)


def shown(source: str) -> str:
    """A model folder as a report names it: relative to the repository when it lies inside it
    (not this machine's absolute path), else as given (a Hub repo id, a folder elsewhere)."""
    path = Path(source).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(source)


def bar_charts(out: Path, results: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["degradation"] for r in results))
    kinds = [INPUT, "best classical", OURS, OURS_DEBLUR]
    for metric, label in (("psnr", "PSNR (dB), higher is better"), ("ssim", "SSIM, higher is better"), ("lpips", "LPIPS (AlexNet), lower is better"), ("identity", "median dlib identity distance, lower is better"), ("psnr_mask", "PSNR inside the occlusion mask (dB)")):
        fig, ax = plt.subplots(figsize=(13, 4))
        width = 0.8 / len(kinds)
        for k, kind in enumerate(kinds):
            values = []
            for name in names:
                rows = [r for r in results if r["degradation"] == name and (r["kind"] == kind)]
                values.append(rows[0][metric] if rows else math.nan)
            ax.bar(np.arange(len(names)) + k * width, values, width, label=kind)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=20)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"bars_{metric}.png", dpi=80)
        plt.close(fig)


# issue "Models that restore": PSNR gain over a reference (dB), and LPIPS at most this share of the input's
LIGHTING_GAIN, X4_GAIN, MOTION_GAIN, MIXED_GAIN, MASK_GAIN, CLEAN_PSNR = 4.0, 1.5, 3.0, 3.0, 4.0, 40.0
MOTION_LPIPS, MIXED_LPIPS, MIXED_IDENTITY = 0.6, 0.7, 0.45


def target_lines(results: list[dict]) -> list[str]:
    """One line per degradation: its target from issue "Models that restore", and whether the
    models meet it. Motion blur is scored over its whole range (degradations.MOTION_LENGTH)."""
    lines = []
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    for name in dict.fromkeys(r["degradation"] for r in results):
        rows = {r["kind"]: r for r in results if r["degradation"] == name}
        ours = max((rows[k] for k in (OURS, OURS_DEBLUR) if k in rows), key=lambda r: r["psnr"])
        if name == NONE:
            lines.append(f"- {name}: ours {ours['psnr']:.2f} dB (target >= {CLEAN_PSNR:.0f}): {verdict(ours['psnr'] >= CLEAN_PSNR)}")
            continue
        given, best = rows[INPUT], rows.get("best classical")
        over_input = ours["psnr"] - given["psnr"]
        if name in degradations.LIGHTING_CONDITIONS:
            lines.append(f"- {name}: ours {ours['psnr']:.2f} dB, {over_input:+.2f} over the input (target +{LIGHTING_GAIN:g}): {verdict(over_input >= LIGHTING_GAIN)}")
        elif name == "downscale x4":
            gain = ours["psnr"] - best["psnr"]
            lines.append(f"- {name}: ours {ours['psnr']:.2f} dB, {gain:+.2f} over {best['method']} (target +{X4_GAIN:g}): {verdict(gain >= X4_GAIN)}")
        elif name == "motion blur":
            (lo, hi), share = degradations.MOTION_LENGTH, ours["lpips"] / given["lpips"]
            lines.append(
                f"- {name} ({lo:g}-{hi:g} px): ours {ours['psnr']:.2f} dB, {over_input:+.2f} over the input (target +{MOTION_GAIN:g}): {verdict(over_input >= MOTION_GAIN)}; "
                f"LPIPS {ours['lpips']:.3f} = {share:.2f} x the input's (target <= {MOTION_LPIPS:g}): {verdict(share <= MOTION_LPIPS)}"
            )
        elif name == "mixed":
            gain, share = ours["psnr"] - best["psnr"], ours["lpips"] / given["lpips"]
            line = (
                f"- {name}: ours {ours['psnr']:.2f} dB, {gain:+.2f} over {best['method']} (target +{MIXED_GAIN:g}): {verdict(gain >= MIXED_GAIN)}; "
                f"LPIPS {ours['lpips']:.3f} = {share:.2f} x the input's (target <= {MIXED_LPIPS:g}): {verdict(share <= MIXED_LPIPS)}"
            )
            if not math.isnan(ours["identity"]):
                line += f"; median identity distance {ours['identity']:.3f} (target <= {MIXED_IDENTITY}): {verdict(ours['identity'] <= MIXED_IDENTITY)}"
            lines.append(line)
        elif name == "occlusion" and best is not None:
            gain = ours["psnr_mask"] - best["psnr_mask"]
            lines.append(
                f"- {name}: inside the mask ours {ours['psnr_mask']:.2f} dB, {gain:+.2f} over {best['method']} (target +{MASK_GAIN:g}): {verdict(gain >= MASK_GAIN)}; "
                f"LPIPS in the mask {ours['lpips_mask']:.3f} vs {best['lpips_mask']:.3f} (target below): {verdict(ours['lpips_mask'] < best['lpips_mask'])}"
            )
        else:  # no target of its own: how far the models get
            lines.append(f"- {name}: ours {ours['psnr']:.2f} dB, {over_input:+.2f} over the input; LPIPS {ours['lpips']:.3f} (input {given['lpips']:.3f})")
    return lines


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    """`rows` as a CSV file with these columns (other keys left out). Both harnesses write with it."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_outputs(args, out: Path, results: list[dict], n: int, rejected: int) -> None:
    write_csv(out / "results.csv", ["degradation", "method", "kind", "n", "psnr", "ssim", "lpips", "psnr_mask", "lpips_mask", "identity"], results)
    fmt = lambda v, p: "" if isinstance(v, float) and math.isnan(v) else f"{v:.{p}f}"  # noqa: E731
    table = ["| degradation | method | PSNR (dB) | SSIM | LPIPS | PSNR in mask (dB) | LPIPS in mask | identity distance (median) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        method = f"{r['method']} (best classical)" if r["kind"] == "best classical" else r["method"]
        table.append(
            f"| {r['degradation']} | {method} | {fmt(r['psnr'], 2)} | {fmt(r['ssim'], 3)} | {fmt(r['lpips'], 3)} | {fmt(r['psnr_mask'], 2)} | {fmt(r['lpips_mask'], 3)} | {fmt(r['identity'], 3)} |"
        )
    (out / "results.md").write_text("\n".join(table) + "\n")
    for card in args.card:
        text = Path(card).read_text().split("\n## Evaluation")[0].rstrip()  # replace an older table
        Path(card).write_text(
            f"{text}\n\n## Evaluation\n\n`{args.command}`: {n} aligned test faces (CelebA, 300 people not in the training data), "
            f"{args.size} px, fixed seeds.\n\n" + "\n".join(target_lines(results)) + "\n\n" + "\n".join(table) + "\n"
        )
    bar_charts(out, results)
    if args.report:
        report = Path(args.report)
        folder = os.path.relpath(out, report.parent)  # image links relative to the report
        images = "\n".join(f"![{n}]({folder}/{sheet_name(n)})" for n in DEGRADATIONS)
        report.write_text(
            f"""# Results

Regenerate with `{args.command}` ({time.strftime('%Y-%m-%d')}).

Test set: {n} aligned faces from `../shared/data/faces/test/` (CelebA, 300 people never used in training;
{rejected} images without a detected face were skipped), {args.size} px, degradations with fixed seeds.
Identity distances: median over the first {args.identity_limit} faces, for {args.identity_on.replace(',', ', ')}.
Generator: `{shown(args.generator)}`; deblurring: `{shown(args.deblur)}`; occluded faces: `{shown(args.inpaint or args.generator)}` (also damaged otherwise: {f'`{shown(args.inpaint_damaged)}`' if args.inpaint_damaged else 'the same'}); detail model (faces with damaged detail; the generator after it on dark or bright ones): `{shown(args.detail) if args.detail else "none"}`.

## Targets
{chr(10).join(target_lines(results))}

## Table
{chr(10).join(table)}

![PSNR]({folder}/bars_psnr.png)
![SSIM]({folder}/bars_ssim.png)
![LPIPS]({folder}/bars_lpips.png)
![identity]({folder}/bars_identity.png)

## Contact sheets (degraded / best classical / ours / clean)
{images}
"""
        )
