"""Removes what requests leave behind: Gradio's uploads and returned files, and our per-request
result folders, once they are older than the cache lifetime.

Gradio's own `delete_cache` does this on a schedule, but it iterates its live file sets while
requests add to them; the `RuntimeError: Set changed size during iteration` that a burst of
uploads can cause ends its task for good and every later file stays on disk (seen in CI). This
sweeper walks a snapshot of each set, so a concurrent upload is simply seen on the next pass.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

import gradio as gr

log = logging.getLogger(__name__)


def sweep_once(demo: gr.Blocks, results: Path, age: float) -> int:
    """One pass: delete the files `demo` has cached and the folders under `results` whose last
    change is more than `age` seconds ago; the example photos Gradio keeps are left alone.
    Returns how many were removed."""
    now, removed = time.time(), 0
    keep = set()
    for block in list(demo.blocks.values()):
        keep.update(getattr(block, "keep_in_cache", ()))
    for file_set in list(demo.temp_file_sets):
        for name in list(file_set):  # a snapshot: requests add to the set meanwhile
            if name in keep:
                continue
            try:
                if now - Path(name).lstat().st_ctime > age:
                    Path(name).unlink()
                    file_set.discard(name)
                    removed += 1
            except FileNotFoundError:
                file_set.discard(name)
    if results.is_dir():
        for folder in list(results.iterdir()):
            try:
                if now - folder.stat().st_mtime > age:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:  # removed by someone else first
                pass
    return removed


def start_sweeper(demo: gr.Blocks, results: Path, age: float, every: float) -> threading.Thread:
    """Run `sweep_once` every `every` seconds in a daemon thread for the life of the process."""

    def loop():
        while True:
            time.sleep(every)
            try:
                sweep_once(demo, results, age)
            except Exception:  # one bad pass must not end the cleaning for good
                log.exception("cache sweep failed; trying again in %.0f s", every)

    thread = threading.Thread(target=loop, name="gan-face-cache-sweeper", daemon=True)
    thread.start()
    return thread
