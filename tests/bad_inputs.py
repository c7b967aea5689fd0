"""A corpus of awkward and broken image files, generated (not downloaded).

    python -m tests.bad_inputs OUTDIR

`make_corpus(folder)` writes the files and returns {file name: expectation}: "error" (a
clear one-line message, nothing written) or "ok" (a restored photo comes back)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .conftest import ASTRONAUT, face_files

ERROR, OK = "error", "ok"


def _jpeg_bytes(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def make_corpus(folder: Path) -> dict[str, str]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    astronaut = Image.open(ASTRONAUT).convert("RGB")
    expect: dict[str, str] = {}

    def save(name: str, image: Image.Image, expectation: str = OK, **kw) -> None:
        image.save(folder / name, **kw)
        expect[name] = expectation

    def write(name: str, data: bytes, expectation: str) -> None:
        (folder / name).write_bytes(data)
        expect[name] = expectation

    # broken files
    good_jpeg = _jpeg_bytes(astronaut)
    write("truncated.jpg", good_jpeg[: len(good_jpeg) // 2], ERROR)
    png = io.BytesIO()
    astronaut.save(png, "PNG")
    write("truncated.png", png.getvalue()[: len(png.getvalue()) // 2], ERROR)
    write("corrupt.jpg", good_jpeg[:20] + bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), ERROR)
    write("empty.jpg", b"", ERROR)
    write("text.jpg", b"this is a text file, not a photo\n" * 10, ERROR)
    save("one_pixel.png", Image.new("RGB", (1, 1), (200, 100, 50)), ERROR)
    # a decompression bomb: 20000 x 20000 declared, a few hundred kB on disk
    save("bomb.png", Image.new("1", (20000, 20000)), ERROR)

    # every mode Pillow writes
    save("cmyk.jpg", astronaut.convert("CMYK"), quality=90)
    sixteen = (np.asarray(astronaut.convert("L"), np.uint16) * 257).astype(np.uint16)
    save("gray16.png", Image.fromarray(sixteen))
    rgba = astronaut.convert("RGBA")
    alpha = Image.new("L", astronaut.size, 255)
    alpha.paste(0, (0, 0, 100, 100))  # a transparent corner
    rgba.putalpha(alpha)
    save("rgba.png", rgba)
    save("gray.png", astronaut.convert("L"))
    save("palette.png", astronaut.convert("P", palette=Image.Palette.ADAPTIVE))
    save("float32.tiff", Image.fromarray(np.asarray(astronaut.convert("L"), np.float32) / 255))
    save("photo.webp", astronaut, quality=90)
    frames = [astronaut, astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=200, loop=0)

    # EXIF orientations: the pixels are stored so that honouring the tag shows an upright face
    inverse = {
        1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270,
    }
    for orientation, op in inverse.items():
        stored = astronaut if op is None else astronaut.transpose(op)
        exif = Image.Exif()
        exif[0x0112] = orientation
        write(f"exif_orientation_{orientation}.jpg", _jpeg_bytes(stored, exif=exif.tobytes()), OK)

    # content
    sky = np.linspace([40, 90, 200], [180, 210, 250], 300).astype(np.uint8)[:, None].repeat(400, 1)
    save("no_face.png", Image.fromarray(sky))
    save("black.png", Image.new("RGB", (300, 300), 0))
    save("white.png", Image.new("RGB", (300, 300), (255, 255, 255)))
    crowd = Image.new("RGB", (1200, 700), (120, 120, 120))
    for i, path in enumerate(face_files(30)):
        crowd.paste(Image.open(path).convert("RGB").resize((100, 120)), (20 + (i % 10) * 118, 20 + (i // 10) * 225))
    save("thirty_faces.png", crowd)
    save("face_at_border.png", astronaut.crop((150, 0, 512, 300)))  # forehead cut by the top edge
    save("rotated_90.png", astronaut.transpose(Image.Transpose.ROTATE_90))
    return expect


if __name__ == "__main__":
    for name, expectation in make_corpus(Path(sys.argv[1])).items():
        print(f"{expectation:5} {name}")
