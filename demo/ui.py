"""create_demo(restorer) -> gr.Blocks: the gan-face web page."""

from __future__ import annotations

import logging
import os
import tempfile
import time
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from demo.cache import start_sweeper
from gan_face import photo_damage
from gan_face.degradations import LIGHTING_CONDITIONS
from gan_face.imageio import MAX_BYTES, ImageError, Photo, finish, limits_text, load_photo, open_image
from gan_face.pipeline import FaceRestorer
from gan_face.upscale import lanczos

log = logging.getLogger(__name__)
EXAMPLES = Path(__file__).resolve().parent / "examples"
RESULTS = Path(tempfile.gettempdir()) / "gan-face-results"  # one sub-folder per request
CACHE_SECONDS = float(os.environ.get("GAN_FACE_CACHE_SECONDS", 3600))
MAX_BATCH = 20  # photos per batch request
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
NO_SIMULATION = "none"
# a page shows at most this many pixels per image (a 36 MP PNG would take seconds to encode and
# download, and the browser shows it scaled down anyway); larger downloads are JPEG, not PNG
PREVIEW_PIXELS = 4_000_000
PNG_PIXELS = 12_000_000

DESCRIPTION = """# gan-face
Drop in a damaged photo (motion blur, occlusions, bad lighting, low resolution): every face is
detected, aligned, assessed, deblurred if blurred, reconstructed by a U-Net GAN, and its correction
pasted back at the photo's own resolution (a sharp face keeps its detail).
Paint over occluded parts of a face (hands, scratches, sunglasses) with the brush to tell the
model which pixels to reconstruct."""


def file_source(item) -> str | bytes:
    """A raw editor file entry (blob bytes, or Gradio FileData as a dict) -> bytes or path."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, dict) and item.get("path"):
        return item["path"]
    raise ImageError("the upload did not arrive; try again")


def read_editor(payload, editor: gr.ImageEditor) -> tuple[Photo, np.ndarray | None]:
    """The raw ImageEditor payload -> (the photo, painted-occlusion mask or None).

    The event runs with preprocess=False so that the photo is decoded by our own loader:
    size limits before decoding, EXIF orientation, every mode, one-line errors."""
    if not payload:
        raise ImageError("upload a photo first")
    blobs = editor.blob_storage.pop(payload["id"], None) if payload.get("id") else None
    background = blobs.background if blobs else payload.get("background")
    if background is None:
        raise ImageError("upload a photo first")
    photo = load_photo(file_source(background))
    h, w = photo.rgb.shape[:2]
    mask = np.zeros((h, w), bool)
    for layer in (blobs.layers if blobs else payload.get("layers")) or []:
        if layer is None:
            continue
        painted = np.asarray(open_image(file_source(layer)).convert("RGBA"))[..., 3] > 0
        if painted.shape != (h, w):  # the canvas may differ in size: the brush scales with it
            painted = np.asarray(Image.fromarray(painted).resize((w, h), Image.NEAREST))
        mask |= painted
    return photo, mask if mask.any() else None


def preview(image: np.ndarray) -> np.ndarray:
    """`image` scaled down (Lanczos) to at most PREVIEW_PIXELS for the page."""
    h, w = image.shape[:2]
    return image if h * w <= PREVIEW_PIXELS else lanczos(image, (PREVIEW_PIXELS / (h * w)) ** 0.5)


def save_result(output: np.ndarray, stem: Path) -> tuple[Path, str | None]:
    """The full-size result as `stem`.png, or above PNG_PIXELS (without alpha) as `stem`.jpg at
    quality 95, with a note saying so."""
    h, w = output.shape[:2]
    if h * w <= PNG_PIXELS or (output.ndim == 3 and output.shape[2] == 4):  # JPEG has no alpha
        path = stem.with_suffix(".png")
        Image.fromarray(output).save(path)
        return path, None
    path = stem.with_suffix(".jpg")
    Image.fromarray(output).save(path, quality=95)
    return path, f"{w}x{h} px: saved as JPEG (quality 95), as a PNG this size is tens of MB; the page shows a smaller preview"


def request_folder() -> Path:
    """A new folder for one request's files under RESULTS (demo/cache.py removes it later)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=RESULTS))


def batch_sources(files, max_photos: int = MAX_BATCH) -> list[tuple[str, str | bytes]]:
    """Uploaded files (photos, or zips of photos) -> [(name, path or bytes)], at most
    `max_photos`; a zip's members are checked for count and size before any is read."""
    sources = []
    for item in files or []:
        path = item if isinstance(item, str) else item.get("path") if isinstance(item, dict) else getattr(item, "name", None)
        if path is None:
            raise ImageError("an upload did not arrive; try again")
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir() and Path(m.filename).suffix.lower() in PHOTO_SUFFIXES]
                if len(sources) + len(members) > max_photos:
                    raise ImageError(f"a batch holds at most {max_photos} photos; {Path(path).name} has {len(members)}")
                for m in members:
                    if m.file_size > MAX_BYTES:
                        raise ImageError(f"{m.filename} in {Path(path).name} is {m.file_size / 2**20:.0f} MB; the limit is {MAX_BYTES / 2**20:.0f} MB")
                    sources.append((m.filename, archive.read(m)))
        else:
            sources.append((Path(path).name, path))
        if len(sources) > max_photos:
            raise ImageError(f"a batch holds at most {max_photos} photos")
    if not sources:
        raise ImageError("upload photos (or a zip of photos) first")
    return sources


def create_demo(restorer: FaceRestorer, examples: Path = EXAMPLES, time_limit: int = 120, cache_seconds: float = CACHE_SECONDS) -> gr.Blocks:
    """The app. `time_limit`: seconds a request may run before it is stopped with a message;
    `cache_seconds`: how long uploads and results are kept (Gradio's cache and RESULTS)."""

    def restore(payload, lighting_sim, lighting_sim_strength, occluder, fidelity, lighting, upscale, realesrgan, deblur, largest, centre, min_face):
        start = time.perf_counter()  # the limit covers the whole request: decode, pipeline, encode
        try:
            photo, mask = read_editor(payload, editor)
            image = photo.rgb
            # simulated damage first (it is part of the input), then the pipeline
            if lighting_sim != NO_SIMULATION:
                image = photo_damage.lighting(image, lighting_sim, lighting_sim_strength)
            faces = None
            if occluder > 0:  # detect before painting: the occluder must not hide the face it damages
                faces = restorer.detector(image)
                image, painted = photo_damage.occluder(image, faces, occluder / 100)
                mask = painted if mask is None else mask | painted
            result = restorer(
                image, mask=mask, faces=faces, upscale=float(upscale), realesrgan_background=realesrgan, fidelity=fidelity, lighting=lighting,
                use_deblur=deblur, only_largest=largest, only_center=centre, min_face=min_face,
                time_limit=max(0.0, time_limit - (time.perf_counter() - start)),
            )
        except (ImageError, ValueError, TimeoutError) as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:  # a bug: say so on the page, keep the traceback in the server log
            log.exception("restore failed")
            raise gr.Error(f"internal error ({type(e).__name__}); the server log has the details", print_exception=False) from None
        output = finish(photo, result.image)  # the input's alpha and grayness, like GFPGAN
        path, note = save_result(output, request_folder() / "restored")
        after = preview(result.image)
        before = lanczos(image, after.shape[1] / image.shape[1])
        gallery = []  # each face as an input / restored pair
        for i, f in enumerate(result.faces):
            gallery += [(f.before, f"face {i + 1}: input"), (f.after, f"face {i + 1}: restored")]
        lines = [f"**{len(result.faces)} face(s)** in {result.timings['total']:.2f} s"]
        lines += [f"- {line}" for line in [*result.describe(), *([note] if note else [])]]
        lines += [f"- {stage}: {seconds * 1000:.0f} ms" for stage, seconds in result.timings.items() if stage != "total"]
        return preview(output), (before, after), gallery, "\n".join(lines), str(path)

    def restore_batch(files, fidelity, lighting, upscale):
        """Several photos (or zips): a gallery of results, one zip, a line per photo and face."""
        try:
            sources = batch_sources(files)
        except ImageError as e:
            raise gr.Error(str(e), print_exception=False) from None
        folder = request_folder()
        gallery, lines, written = [], [], []
        deadline = time.perf_counter() + time_limit  # the limit covers the whole batch
        for name, source in sources:
            try:
                photo = load_photo(source)
                result = restorer(photo.rgb, upscale=float(upscale), fidelity=fidelity, lighting=lighting, time_limit=max(0.0, deadline - time.perf_counter()))
            except (ImageError, ValueError, TimeoutError) as e:
                lines.append(f"- **{name}**: skipped: {e}")
                continue
            except Exception as e:  # a bug: say so, keep the traceback in the server log
                log.exception("batch restore failed on %s", name)
                lines.append(f"- **{name}**: skipped: internal error ({type(e).__name__})")
                continue
            output = finish(photo, result.image)
            target, note = save_result(output, folder / f"{len(written) + 1:02d}_{Path(name).stem}")
            written.append(target)
            gallery.append((str(target), name))
            lines.append(f"- **{name}**: " + ("; ".join([*result.describe(known=restorer.notes), *([note] if note else [])]) or "restored"))
        archive = None
        if written:
            archive = folder / "restored.zip"
            with zipfile.ZipFile(archive, "w") as z:
                for path in written:
                    z.write(path, path.name)
        lines.insert(0, f"**{len(written)} of {len(sources)} photo(s) restored**")
        return gallery, "\n".join(lines), None if archive is None else str(archive)

    with gr.Blocks(title="gan-face: face reconstruction") as demo:
        gr.Markdown(DESCRIPTION)
        if restorer.untrained:
            gr.Markdown("**Warning: untrained weights.** " + "; ".join(restorer.notes), elem_id="untrained-warning")
        elif restorer.notes:
            gr.Markdown("Note: " + "; ".join(restorer.notes))
        gr.Markdown(f"{limits_text()} Each request may run {time_limit} s; bursts wait in a queue.")
        with gr.Tab("One photo"):
            with gr.Row():
                with gr.Column():
                    editor = gr.ImageEditor(
                        label="Photo (brush: paint over occlusions)", type="numpy", image_mode="RGBA",
                        sources=("upload", "webcam", "clipboard"), brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"),
                        transforms=(), layers=False, elem_id="photo",
                    )
                    with gr.Group():
                        gr.Markdown("Simulate damage (the same code that made the training data)")
                        lighting_sim = gr.Dropdown([NO_SIMULATION, *LIGHTING_CONDITIONS], value=NO_SIMULATION, label="Simulate lighting")
                        lighting_sim_strength = gr.Slider(0, 1, 1, step=0.05, label="Simulated lighting strength")
                        occluder = gr.Slider(0, 40, 0, step=1, label="Add a synthetic occluder (% of each face)")
                    fidelity = gr.Slider(0, 1, 0, step=0.05, label="Fidelity (0 = reconstruction, 1 = keep the input)")
                    lighting = gr.Slider(0, 1, 1, step=0.05, label="Lighting correction strength")
                    with gr.Accordion("Options", open=False):
                        upscale = gr.Slider(1, 4, 2, step=1, label="Output scale")
                        realesrgan = gr.Checkbox(
                            False, label="Real-ESRGAN background (slow on a CPU: 10-25 s per 256x256 px of input on 2 cores; else Lanczos)",
                            interactive=restorer.background.is_model,
                        )
                        # with a detail model, blurred faces go to it and DeblurGAN-v2 never runs (`pipeline.plan`)
                        deblur = gr.Checkbox(
                            True, label="Deblur with DeblurGAN-v2 (only without a detail model, which restores blurred faces)",
                            interactive=restorer.detail is None,
                        )
                        largest = gr.Checkbox(False, label="Only the largest face")
                        centre = gr.Checkbox(False, label="Only the centre face")
                        min_face = gr.Slider(0, 200, 0, step=4, label="Minimum face size (px)")
                    button = gr.Button("Restore", variant="primary", elem_id="restore-button")
                with gr.Column():
                    output = gr.Image(label="Restored photo", type="numpy", format="png", elem_id="restored", image_mode=None)
                    slider = gr.ImageSlider(label="Before / after", type="numpy")
                    gallery = gr.Gallery(label="Faces (input, restored)", columns=2, height="auto")
                    timings = gr.Markdown(label="Faces found, what was done, timings", elem_id="timings")
                    download = gr.File(label="Download (full size)")
            inputs = [editor, lighting_sim, lighting_sim_strength, occluder, fidelity, lighting, upscale, realesrgan, deblur, largest, centre, min_face]
            button.click(
                restore, inputs, [output, slider, gallery, timings, download], api_name="restore", concurrency_limit=2,
                preprocess=False,  # the photo is decoded by gan_face.imageio (limits, EXIF, modes)
            )
            files = sorted(p for p in examples.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            if files:
                # each example with the controls' defaults; restored on its first click and kept for
                # everyone after ("lazy": a Space does not run them all at start-up)
                defaults = [c.value for c in inputs[1:]]
                gr.Examples(
                    [[str(p), *defaults] for p in files], inputs=inputs, outputs=[output, slider, gallery, timings, download], fn=restore,
                    cache_examples=True, cache_mode="lazy", preprocess=False, visible_columns=[0], label="Examples (see demo/examples/SOURCES.md)", elem_id="examples",
                )
        with gr.Tab("Batch: several photos or a zip"):
            with gr.Row():
                with gr.Column():
                    batch_files = gr.File(label="Photos or zips", file_count="multiple", type="filepath", elem_id="batch-files")
                    batch_fidelity = gr.Slider(0, 1, 0, step=0.05, label="Fidelity (0 = reconstruction, 1 = keep the input)")
                    batch_lighting = gr.Slider(0, 1, 1, step=0.05, label="Lighting correction strength")
                    batch_upscale = gr.Slider(1, 4, 1, step=1, label="Output scale")
                    batch_button = gr.Button("Restore all", variant="primary", elem_id="batch-button")
                with gr.Column():
                    batch_gallery = gr.Gallery(label="Restored photos", columns=3, height="auto", elem_id="batch-gallery")
                    batch_notes = gr.Markdown(label="What was found and done per photo", elem_id="batch-notes")
                    batch_zip = gr.File(label="Download all (zip)", elem_id="batch-zip")
            batch_button.click(
                restore_batch, [batch_files, batch_fidelity, batch_lighting, batch_upscale], [batch_gallery, batch_notes, batch_zip],
                api_name="restore_batch", concurrency_limit=1,
            )
    # uploads, returned files and RESULTS folders older than cache_seconds go, checked this often
    start_sweeper(demo, RESULTS, age=cache_seconds, every=max(1.0, cache_seconds / 4))
    return demo
