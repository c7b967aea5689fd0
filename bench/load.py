"""Load test: N concurrent gradio_client requests with real photos against `python app.py`.

    python bench/load.py [--requests 50] [--port 7899] [--cache-seconds 60] [--no-largest]

Starts the app on 127.0.0.1, sends every request at once (each a different test face photo),
checks every answer is its own request's image (no cross-talk: the output matches its input
far better than any other input), that the server's memory after the burst is back within
10 % of before, and that the server log has no error. Prints p50/p95 latency and peak RSS.
Then the largest photo the limits allow at each output scale (1, 2, 4; a real portrait enlarged
to that size), one request at a time: time and the server's peak RSS during the request.
Last, after the cache lifetime, how many of the requests' files are still on disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gan_face.imageio import MAX_OUTPUT_PIXELS, MAX_PIXELS  # noqa: E402
from gan_face.weights import SHARED  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEST_FACES = SHARED / "data" / "faces" / "test"
PORTRAITS = SHARED / "data" / "photos" / "portraits"


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port: int, log_path: Path, **extra_env: str) -> subprocess.Popen:
    env = dict(os.environ, **extra_env, GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GAN_FACE_DOWNLOAD="0")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("app.py exited:\n" + log_path.read_text()) from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("app.py did not start")


def restore(url: str, path: Path, upscale: int = 1) -> tuple[np.ndarray, float]:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    editor = {"background": handle_file(str(path)), "layers": [], "composite": None, "id": None}
    start = time.perf_counter()
    restored, *_ = client.predict(editor, "none", 1.0, 0, 0.0, 1.0, upscale, False, True, False, False, 0, api_name="/restore")
    return np.asarray(Image.open(restored).convert("RGB")), time.perf_counter() - start


def largest_photo(scale: int, folder: Path) -> Path:
    """A real portrait enlarged to the most pixels the limits allow at output `scale`."""
    pixels = min(MAX_PIXELS, MAX_OUTPUT_PIXELS // scale**2)
    portrait = Image.open(sorted(PORTRAITS.glob("*.jpg"))[0]).convert("RGB")
    factor = (pixels / (portrait.width * portrait.height)) ** 0.5
    size = (int(portrait.width * factor), int(portrait.height * factor))
    path = folder / f"largest_x{scale}.jpg"
    portrait.resize(size, Image.LANCZOS).save(path, quality=90)
    return path


def largest_case(url: str, pid: int, scale: int, folder: Path) -> dict:
    """One request with the largest allowed photo at `scale`; the server's peak RSS during it
    (its high-water mark, reset first through /proc/PID/clear_refs)."""
    photo = largest_photo(scale, folder)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = rss_mb(pid)
    try:
        output, seconds = restore(url, photo, upscale=scale)
        outcome = f"{output.shape[1]}x{output.shape[0]} preview"
    except Exception as e:  # noqa: BLE001 - a refusal is an answer too: report it
        seconds, outcome = float("nan"), f"refused: {str(e).splitlines()[0][:120]}"
    peak = rss_mb(pid, "VmHWM")
    with Image.open(photo) as im:
        size = f"{im.width}x{im.height}"
    return {
        "scale": scale, "input": size, "seconds": seconds, "outcome": outcome,
        "rss_before_mb": before, "peak_rss_mb": peak, "request_mb": peak - before,
    }


def run(url: str, photos: list[Path]) -> list[tuple[np.ndarray, float]]:
    with ThreadPoolExecutor(max_workers=len(photos)) as pool:
        return list(pool.map(lambda p: restore(url, p), photos))


def check_own_images(photos: list[Path], results) -> int:
    """Number of answers that are not their own request's image."""
    inputs = [np.asarray(Image.open(p).convert("RGB")).astype(np.float32) for p in photos]
    wrong = 0
    for i, (output, _) in enumerate(results):
        errors = [np.mean((output.astype(np.float32) - x) ** 2) if x.shape == output.shape else np.inf for x in inputs]
        if int(np.argmin(errors)) != i:
            wrong += 1
    return wrong


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--port", type=int, default=7899)
    p.add_argument("--log", default="/tmp/gan-face-load.log")
    p.add_argument("--cache-seconds", type=int, default=60, help="the server's cache lifetime (GAN_FACE_CACHE_SECONDS)")
    p.add_argument("--no-largest", action="store_true", help="skip the largest-photo requests")
    args = p.parse_args(argv)
    photos = sorted(TEST_FACES.glob("*.jpg"))[: args.requests]
    log = Path(args.log)
    scratch = Path(tempfile.mkdtemp(prefix="gan-face-load-"))  # the server's TMPDIR: its uploads and results
    (scratch / "server").mkdir()
    proc = start_server(args.port, log, TMPDIR=str(scratch / "server"), GAN_FACE_CACHE_SECONDS=str(args.cache_seconds))
    url = f"http://127.0.0.1:{args.port}/"
    try:
        run(url, photos[:2])  # warm-up: first-call allocations are not a leak
        time.sleep(2)
        before = rss_mb(proc.pid)
        start = time.perf_counter()
        results = run(url, photos)
        wall = time.perf_counter() - start
        time.sleep(5)
        after, peak = rss_mb(proc.pid), rss_mb(proc.pid, "VmHWM")
        largest = [] if args.no_largest else [largest_case(url, proc.pid, scale, scratch) for scale in (1, 2, 4)]
        time.sleep(args.cache_seconds * 1.25 + 5)  # the sweeper runs every quarter lifetime
        examples = {p.name for p in (REPO / "demo" / "examples").iterdir()}
        left = [f for f in (scratch / "server").rglob("*") if f.is_file() and f.name not in examples]
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    latencies = sorted(t for _, t in results)
    text = log.read_text()
    report = {
        "requests": len(results),
        "wrong_images": check_own_images(photos, results),
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[max(0, int(round(0.95 * len(latencies))) - 1)],
        "wall_s": wall,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "peak_rss_mb": peak,
        "server_alive": alive,
        "log_errors": sum(w in text for w in ("Traceback", "ERROR", "Exception")),
        "largest": largest,
        "files_left": len(left),
    }
    print(
        f"{report['requests']} concurrent requests in {wall:.1f} s: p50 {report['p50_s']:.2f} s, p95 {report['p95_s']:.2f} s; "
        f"wrong images {report['wrong_images']}; RSS before {before:.0f} MB, after {after:.0f} MB "
        f"({100 * (after - before) / before:+.1f} %), peak {peak:.0f} MB; server alive {alive}; errors in log {report['log_errors']}"
    )
    for case in largest:
        print(
            f"largest photo at x{case['scale']}: {case['input']} in {case['seconds']:.1f} s ({case['outcome']}); server RSS "
            f"{case['rss_before_mb']:.0f} MB before, peak {case['peak_rss_mb']:.0f} MB: {case['request_mb']:.0f} MB for the request"
        )
    print(f"files left {args.cache_seconds * 1.25 + 5:.0f} s after the last request (cache lifetime {args.cache_seconds} s): {len(left)}")
    return report


if __name__ == "__main__":
    main()
