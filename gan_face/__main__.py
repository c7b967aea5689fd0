"""Command line: `python -m gan_face restore INPUT... -o OUTDIR`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from gan_face.atomic import atomic_write
from gan_face.imageio import MAX_BYTES, MAX_PIXELS, ImageError, finish, load_photo, open_image

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def collect(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(image file, its output path relative to the output folder) for every input.

    A folder's images keep their sub-folders, so `a/x.jpg` and `b/x.jpg` do not overwrite
    each other; when two inputs still map to one name (`x.jpg` and `x.png`, or files of the
    same name from different folders), the later ones get their extension and then a number
    appended."""
    pairs = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            pairs += [(f, f.relative_to(path)) for f in files]
        elif path.is_file():
            pairs.append((path, Path(path.name)))
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    taken, out = set(), []
    for src, rel in pairs:
        candidates = [rel.with_suffix(".png"), rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.')}.png")]
        candidates += (rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.')}_{n}.png") for n in range(2, len(pairs) + 2))
        name = next(c for c in candidates if c not in taken)
        taken.add(name)
        out.append((src, name))
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_face", description="Reconstruct the faces in photos.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("restore", help="restore photos (files or folders)", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    r.add_argument("-o", "--output", required=True, help="output folder (restored photos as PNG)")
    r.add_argument("--upscale", type=float, default=2, help="output size / input size")
    r.add_argument("--realesrgan-background", action="store_true", help="upscale the background with Real-ESRGAN (slow on a CPU)")
    r.add_argument("--fidelity", type=float, default=0.0, help="0 = reconstruction, 1 = keep the (deblurred) input")
    r.add_argument("--lighting", type=float, default=1.0, help="lighting-correction strength, 0-1")
    r.add_argument("--no-deblur", action="store_true", help="skip the DeblurGAN-v2 stage")
    r.add_argument("--only-largest", action="store_true")
    r.add_argument("--only-center", action="store_true")
    r.add_argument("--min-face", type=float, default=0, help="ignore faces smaller than this (px)")
    r.add_argument("--save-faces", action="store_true", help="also save each face's crop, before and after")
    r.add_argument("--masks", default=None, help="folder of hole masks: for photo a/x.jpg, a/x.png (any image format) there, white = occluded")
    r.add_argument("--aligned", action="store_true", help="the inputs are face crops already aligned to the FFHQ template (no detection)")
    r.add_argument("--quiet", action="store_true", help="no per-face lines, only the summary")
    r.add_argument("--generator", default=None, help="generator folder or Hub repo id (default: pretrained/gan-face-generator)")
    r.add_argument("--deblur-model", default=None, help="DeblurGAN-v2 folder or Hub repo id (default: pretrained/gan-face-deblur)")
    r.add_argument("--inpaint-model", default=None, help="generator for faces with --masks holes (default: pretrained/gan-face-inpaint)")
    r.add_argument("--inpaint-damaged-model", default=None, help="generator for holed faces that are also blurred, noisy, small or badly lit (default: pretrained/gan-face-inpaint-damaged)")
    r.add_argument("--detail-model", default=None, help="generator for blurred, noisy or small faces (default: pretrained/gan-face-detail)")
    r.add_argument("--hires-model", default=None, help="generator for large blurred or noisy faces, at 256 px (default: pretrained/gan-face-hires)")
    r.add_argument("--weights", default=None, help="folder with detector / Real-ESRGAN weights")
    r.add_argument("--download", action="store_true", help="allow checked downloads of missing weights")
    r.add_argument("--time-limit", type=float, default=None, help="seconds per photo before it is skipped")
    r.add_argument("--max-pixels", type=int, default=MAX_PIXELS)
    r.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    return p


def restore_command(args) -> int:
    from gan_face.pipeline import DEFAULT_DEBLUR, DEFAULT_DETAIL, DEFAULT_GENERATOR, DEFAULT_HIRES, DEFAULT_INPAINT, DEFAULT_INPAINT_DAMAGED, FaceRestorer

    files = collect(args.inputs)
    if not files:
        print("error: no images found in the inputs", file=sys.stderr)
        return 1
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    restorer = FaceRestorer.from_pretrained(
        generator=args.generator or DEFAULT_GENERATOR, deblur=args.deblur_model or DEFAULT_DEBLUR, inpaint=args.inpaint_model or DEFAULT_INPAINT,
        detail=args.detail_model or DEFAULT_DETAIL, hires=args.hires_model or DEFAULT_HIRES,
        inpaint_damaged=args.inpaint_damaged_model or DEFAULT_INPAINT_DAMAGED, weights=args.weights, realesrgan_background=args.realesrgan_background, download=args.download,
    )
    for note in restorer.notes:
        print(f"note: {note}", file=sys.stderr)
    faces = failed = 0
    start = time.perf_counter()
    for path, name in tqdm(files, desc="restoring", unit="photo"):
        try:
            photo = load_photo(path, args.max_pixels, args.max_bytes)
            mask = read_mask(Path(args.masks) / name.parent, path.stem, photo.rgb.shape, args) if args.masks else None
            result = restorer(
                photo.rgb, mask=mask, aligned=args.aligned, upscale=args.upscale, realesrgan_background=args.realesrgan_background, fidelity=args.fidelity,
                lighting=args.lighting, use_deblur=not args.no_deblur, only_largest=args.only_largest,
                only_center=args.only_center, min_face=args.min_face, time_limit=args.time_limit,
            )
        except (ImageError, ValueError, TimeoutError) as e:
            tqdm.write(f"skipped {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as tmp:  # never a half-written output
            Image.fromarray(finish(photo, result.image)).save(tmp, format="PNG")
        if args.save_faces:
            for i, face in enumerate(result.faces):
                Image.fromarray(face.before).save(target.with_name(f"{target.stem}_face{i + 1}_before.png"))
                Image.fromarray(face.after).save(target.with_name(f"{target.stem}_face{i + 1}_after.png"))
        faces += len(result.faces)
        if not result.faces:
            tqdm.write(f"{path}: no face found, upscaled only", file=sys.stderr)
        elif not args.quiet:
            for line in result.describe(known=restorer.notes):  # the model notes were printed once
                tqdm.write(f"{path}: {line}")
    done = len(files) - failed
    seconds = time.perf_counter() - start
    print(f"{done} photo(s) restored, {faces} face(s) found, {failed} skipped, {seconds / max(done, 1):.2f} s per photo -> {out}")
    return 0 if done else 1


def read_mask(folder: Path, stem: str, shape: tuple[int, ...], args):
    """The hole mask `folder/stem.*` (any image suffix; white = occluded) as an (H,W) bool
    array, or None when there is none. It must have the photo's size."""
    candidates = sorted(p for p in folder.glob(glob_escape(stem) + ".*") if p.suffix.lower() in SUFFIXES)
    if not candidates:
        return None
    image = open_image(candidates[0], args.max_pixels, args.max_bytes)
    if image.size != (shape[1], shape[0]):
        raise ValueError(f"mask {candidates[0]} is {image.size[0]}x{image.size[1]} but the photo is {shape[1]}x{shape[0]}")
    return np.asarray(image.convert("L")) > 127


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return restore_command(args)
    except (FileNotFoundError, ValueError, ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
