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


def bar_charts(out: Path, results: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["degradation"] for r in results))
    kinds = [INPUT, "best classical", OURS, OURS_DEBLUR]
    for metric, label in (("psnr", "PSNR (dB), higher is better"), ("ssim", "SSIM, higher is better"), ("identity", "median dlib identity distance, lower is better"), ("psnr_mask", "PSNR inside the occlusion mask (dB)")):
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


def target_lines(results: list[dict]) -> list[str]:
    lines = []
    for name in dict.fromkeys(r["degradation"] for r in results):
        rows = {r["kind"]: r for r in results if r["degradation"] == name}
        ours = max((rows[k] for k in (OURS, OURS_DEBLUR) if k in rows), key=lambda r: r["psnr"])
        if name == NONE:
            lines.append(f"- {name}: ours {ours['psnr']:.2f} dB (no target: how much the models change a face that needs no restoration)")
            continue
        ref = max(rows[INPUT]["psnr"], rows["best classical"]["psnr"] if "best classical" in rows else -math.inf)
        gain = ours["psnr"] - ref
        line = f"- {name}: ours {ours['psnr']:.2f} dB, {gain:+.2f} dB over the best of input and classical (target +3): {'met' if gain >= 3 else 'NOT met'}"
        if name == "occlusion" and "best classical" in rows:
            gain_mask = ours["psnr_mask"] - rows["best classical"]["psnr_mask"]
            line += f"; inside the mask {gain_mask:+.2f} dB over cv2.inpaint (target +3): {'met' if gain_mask >= 3 else 'NOT met'}"
        if name == "mixed" and not math.isnan(ours["identity"]):
            line += f"; median identity distance {ours['identity']:.3f} (target < 0.4): {'met' if ours['identity'] < 0.4 else 'NOT met'}"
        lines.append(line)
    return lines


def write_outputs(args, out: Path, results: list[dict], n: int, rejected: int) -> None:
    fields = ["degradation", "method", "kind", "n", "psnr", "ssim", "psnr_mask", "identity"]
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    fmt = lambda v, p: "" if isinstance(v, float) and math.isnan(v) else f"{v:.{p}f}"  # noqa: E731
    table = ["| degradation | method | PSNR (dB) | SSIM | PSNR in mask (dB) | identity distance (median) |", "|---|---|---|---|---|---|"]
    for r in results:
        method = f"{r['method']} (best classical)" if r["kind"] == "best classical" else r["method"]
        table.append(f"| {r['degradation']} | {method} | {fmt(r['psnr'], 2)} | {fmt(r['ssim'], 3)} | {fmt(r['psnr_mask'], 2)} | {fmt(r['identity'], 3)} |")
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
Generator: `{args.generator}`; deblurring: `{args.deblur}`; occluded faces: `{args.inpaint or args.generator}`; detail model (well-lit faces with damaged detail): `{args.detail or "none"}`.

## Targets
{chr(10).join(target_lines(results))}

## Table
{chr(10).join(table)}

![PSNR]({folder}/bars_psnr.png)
![SSIM]({folder}/bars_ssim.png)
![identity]({folder}/bars_identity.png)

## Contact sheets (degraded / best classical / ours / clean)
{images}
"""
        )
