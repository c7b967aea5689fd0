"""The real app: `python app.py` on 127.0.0.1, called through gradio_client and a headless Chromium."""

import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import ASTRONAUT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CACHE_SECONDS = 20  # the test server keeps uploads and results this long
GRADIO_TEMP = Path(tempfile.mkdtemp(prefix="gan-face-test-gradio-"))  # its upload and result cache


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from bench.load import start_server

    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    try:
        proc = start_server(
            port, log, GAN_FACE_CACHE_SECONDS=str(CACHE_SECONDS), GRADIO_TEMP_DIR=str(GRADIO_TEMP),
            GRADIO_EXAMPLES_CACHE=str(tmp_path_factory.mktemp("examples")),  # each test run caches its examples afresh
        )
    except RuntimeError as e:
        pytest.fail(str(e))
    yield f"http://127.0.0.1:{port}/", proc, log
    proc.terminate()
    proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()


def call_restore(url, image_path, **options):
    from gradio_client import Client, handle_file

    args = dict(lighting_sim="none", lighting_sim_strength=1.0, occluder=0, fidelity=0.0, lighting=1.0, upscale=2,
                realesrgan=False, deblur=True, largest=False, centre=False, min_face=0)
    args.update(options)
    client = Client(url, verbose=False)
    editor = {"background": handle_file(str(image_path)), "layers": [], "composite": None, "id": None}
    return client.predict(editor, *args.values(), api_name="/restore")


def test_gradio_client_restores_a_photo(server):
    url, _, _ = server
    restored, (before, after), faces, timings, download = call_restore(url, ASTRONAUT)
    image = np.asarray(Image.open(restored))
    assert image.shape[:2] == (1024, 1024)
    assert np.asarray(Image.open(download)).shape[:2] == (1024, 1024)
    assert len(faces) == 2  # the one face, before and after
    assert "1 face(s)" in timings and "face 1:" in timings  # what was found and done


def test_gradio_client_gets_a_clear_error_for_a_non_image(server, tmp_path):
    from gradio_client.exceptions import AppError

    url, proc, _ = server
    fake = tmp_path / "photo.png"
    fake.write_text("not an image at all")
    with pytest.raises(Exception) as err:  # noqa: PT011 - gradio_client wraps the server's gr.Error
        call_restore(url, fake)
    assert isinstance(err.value, AppError) or "error" in str(err.value).lower()
    assert proc.poll() is None  # still serving
    restored, *_ = call_restore(url, ASTRONAUT, upscale=1)
    assert np.asarray(Image.open(restored)).shape[:2] == (512, 512)


@pytest.mark.parametrize("width", [1280, 390])  # a desktop, and a phone's narrow screen
def test_headless_browser_uploads_and_sees_the_result(server, width):
    if CHROMIUM is None:
        if os.environ.get("GAN_FACE_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required in CI (Debian packages chromium, chromium-driver)")
        pytest.skip("no Chromium on this machine")
    from playwright.sync_api import sync_playwright

    url, _, _ = server
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(url, wait_until="networkidle")
        page.locator("#photo input[type=file]").set_input_files(str(ASTRONAUT))
        page.wait_for_timeout(1500)  # the editor loads the image into its canvas
        page.locator("#restore-button").click()
        page.wait_for_selector("#timings :text('face(s)')", timeout=60_000)
        result = page.locator("#restored img")
        result.wait_for(timeout=30_000)
        assert page.evaluate("img => img.complete && img.naturalWidth", result.element_handle()) == 1024
        assert "1 face(s)" in page.locator("#timings").inner_text()
        browser.close()


def test_an_example_click_shows_its_restoration_and_is_cached(server):
    if CHROMIUM is None:
        if os.environ.get("GAN_FACE_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required in CI (Debian packages chromium, chromium-driver)")
        pytest.skip("no Chromium on this machine")
    from playwright.sync_api import sync_playwright

    url, _, log = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url, wait_until="networkidle")
        page.locator("#examples button.gallery-item").first.click()  # no Restore click: the example runs itself
        page.wait_for_selector("#timings :text('face(s)')", timeout=60_000)
        assert "face 1:" in page.locator("#timings").inner_text()
        browser.close()
    assert "at first use" in log.read_text()  # Gradio caches them lazily, not all at start-up


def test_every_bad_input_gets_a_message_and_the_app_keeps_serving(server, tmp_path):
    from gradio_client.exceptions import AppError

    from .bad_inputs import ERROR, make_corpus

    url, proc, _ = server
    expect = make_corpus(tmp_path)
    for name, expectation in expect.items():
        if expectation == ERROR:
            with pytest.raises(AppError) as err:
                call_restore(url, tmp_path / name, upscale=1)
            message = str(err.value)
            assert "\n" not in message.strip() and "Traceback" not in message, (name, message)
        else:
            restored, *_ = call_restore(url, tmp_path / name, upscale=1)
            assert Image.open(restored).size[0] > 1, name
        assert proc.poll() is None, f"the server died on {name}"
    restored, *_ = call_restore(url, ASTRONAUT, upscale=1)  # still serving normal requests
    assert np.asarray(Image.open(restored)).shape[:2] == (512, 512)


def test_eight_concurrent_requests_each_get_their_own_image(server):
    from bench.load import TEST_FACES, check_own_images, rss_mb, run

    url, proc, _ = server
    photos = sorted(TEST_FACES.glob("*.jpg"))[100:108]
    results = run(url, photos)
    assert len(results) == 8
    assert check_own_images(photos, results) == 0  # no cross-talk
    assert proc.poll() is None and rss_mb(proc.pid) > 0


def test_request_files_are_removed_after_the_cache_lifetime(server):
    import time

    url, _, _ = server
    restored, _, _, _, download = call_restore(url, ASTRONAUT, upscale=1)
    from gradio_client import Client

    info = Client(url, verbose=False).view_api(return_format="dict", print_info=False)
    outputs = [r["label"] for r in info["named_endpoints"]["/restore"]["returns"]]
    assert "Faces found, what was done, timings" in outputs  # named, not value_28
    upscale = next(p for p in info["named_endpoints"]["/restore"]["parameters"] if p["parameter_name"] == "upscale")
    assert upscale["type"]["type"] == "number"
    # the server's copies (its cache and our per-request folder) are gone after the lifetime
    from demo.ui import RESULTS

    folders = set(RESULTS.iterdir())
    cached = {p for p in GRADIO_TEMP.rglob("*") if p.is_file()}
    assert folders and cached  # the upload and the results
    examples = {p.name for p in (Path(__file__).resolve().parents[1] / "demo" / "examples").iterdir()}

    def swept():
        left = cached & {p for p in GRADIO_TEMP.rglob("*") if p.is_file()}
        return {p.name for p in left} <= examples and not folders & set(RESULTS.iterdir())

    # one lifetime and a sweep interval at least; polled, so a loaded machine's slower sweep
    # still passes (a fixed sleep failed beside a training run)
    deadline = time.monotonic() + 4 * CACHE_SECONDS
    while not swept() and time.monotonic() < deadline:
        time.sleep(1)
    assert swept()  # the sweeper kept only the example photos, and removed the request folders


def test_the_sweeper_survives_uploads_arriving_while_it_deletes(tmp_path):
    """Gradio's own delete_cache dies on `Set changed size during iteration` when uploads arrive
    during a pass; ours deletes what is old, keeps examples, and sees new files next pass."""
    import threading

    import gradio as gr

    from demo.cache import sweep_once

    demo = gr.Blocks()
    old = [tmp_path / f"old{i}.png" for i in range(3000)]
    for f in old:
        f.write_bytes(b"x")
    example = tmp_path / "example.png"
    example.write_bytes(b"x")
    demo.upload_file_set.update(map(str, old + [example]))
    demo.blocks[0] = type("Examples", (), {"keep_in_cache": {str(example)}})()
    results = tmp_path / "results"
    (results / "request1").mkdir(parents=True)
    stop = threading.Event()

    def upload():  # what the upload route does from the event loop while the sweep runs
        i = 0
        while not stop.is_set():
            demo.upload_file_set.add(str(tmp_path / f"new{i}.png"))
            i += 1

    adder = threading.Thread(target=upload)
    adder.start()
    try:
        removed = sweep_once(demo, results, age=-1)  # everything counts as old
    finally:
        stop.set()
        adder.join()
    assert removed == len(old) + 1  # the files and the request folder
    assert not any(f.exists() for f in old) and not (results / "request1").exists()
    assert example.exists() and str(example) in demo.upload_file_set


def test_headless_browser_restores_a_batch_into_a_zip(server, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("GAN_FACE_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required in CI (Debian packages chromium, chromium-driver)")
        pytest.skip("no Chromium on this machine")
    import zipfile

    from playwright.sync_api import sync_playwright

    from .conftest import face_files

    photos = [tmp_path / f"p{i}.jpg" for i in range(3)]
    for src, dst in zip(face_files(3), photos):
        shutil.copy(src, dst)
    url, _, _ = server
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page()
        page.goto(url, wait_until="networkidle")
        page.get_by_role("tab", name="Batch: several photos or a zip").click()
        page.locator("#batch-files input[type=file]").set_input_files([str(p) for p in photos])
        page.wait_for_timeout(1500)
        page.locator("#batch-button").click()
        page.wait_for_selector("#batch-notes :text('3 of 3 photo(s) restored')", timeout=120_000)
        assert page.locator("#batch-gallery img").count() >= 3
        with page.expect_download() as download:
            page.locator("#batch-zip a").first.click()
        path = tmp_path / "all.zip"
        download.value.save_as(path)
        browser.close()
    with zipfile.ZipFile(path) as z:
        assert len(z.namelist()) == 3 and all(n.endswith(".png") for n in z.namelist())
