"""What this machine's CPU computes natively (training and the upscaler decide bf16 from it)."""

from __future__ import annotations

from pathlib import Path


def cpu_has_bf16(cpuinfo: str | None = None, unknown: bool = True) -> bool:
    """Whether the CPU computes bf16 natively (the avx512_bf16 or amx_bf16 flag of
    /proc/cpuinfo). Without it oneDNN emulates bf16 convolutions: on a 2-core AVX-512 VM without
    the flag, `python bench/train_speed.py --steps 8 --micro 16` gave 16.9 images/s with bf16
    autocast against 21.1 in float32 (PSNR phase), 9.2 against 15.4 (GAN phase). `unknown`: the
    answer where there is no /proc/cpuinfo to read (not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return unknown
    flags = set(cpuinfo.split())
    return "avx512_bf16" in flags or "amx_bf16" in flags
