"""One way to write a file so that nobody ever sees half of it."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(target: str | Path):
    """Yield a temporary path beside `target`; when the block finishes it is renamed onto
    `target` (atomic on POSIX: readers see the old file or the new one, never half), and when
    the block raises it is removed and `target` is left as it was."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
