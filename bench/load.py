"""Load test: N concurrent gradio_client requests with real photos against `python app.py`.

    python bench/load.py [--requests 50] [--port 7899]

Starts the app on 127.0.0.1, sends every request at once (each a different test face photo),
checks every answer is its own request's image (no cross-talk: the output matches its input
far better than any other input), that the server's memory after the burst is back within
10 % of before, and that the server log has no error. Prints p50/p95 latency and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gan_face.weights import SHARED  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEST_FACES = SHARED / "data" / "faces" / "test"


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


def restore(url: str, path: Path) -> tuple[np.ndarray, float]:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    editor = {"background": handle_file(str(path)), "layers": [], "composite": None, "id": None}
    start = time.perf_counter()
    restored, *_ = client.predict(editor, "none", 1.0, 0, 0.0, 1.0, 1, False, True, False, False, 0, api_name="/restore")
    return np.asarray(Image.open(restored).convert("RGB")), time.perf_counter() - start


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
    args = p.parse_args(argv)
    photos = sorted(TEST_FACES.glob("*.jpg"))[: args.requests]
    log = Path(args.log)
    proc = start_server(args.port, log)
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
    }
    print(
        f"{report['requests']} concurrent requests in {wall:.1f} s: p50 {report['p50_s']:.2f} s, p95 {report['p95_s']:.2f} s; "
        f"wrong images {report['wrong_images']}; RSS before {before:.0f} MB, after {after:.0f} MB "
        f"({100 * (after - before) / before:+.1f} %), peak {peak:.0f} MB; server alive {alive}; errors in log {report['log_errors']}"
    )
    return report


if __name__ == "__main__":
    main()
