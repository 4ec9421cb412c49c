"""OpenBLAS's kernel choice for this machine, made before numpy loads OpenBLAS."""

from __future__ import annotations

import os
import sys


def _zen4() -> bool:
    """An AMD Zen 4 CPU (family 25 with AVX-512), read from ``/proc/cpuinfo`` (Linux only)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            head = f.read(8192)
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in head.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return (fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
            and "avx512f" in fields.get("flags", "").split())


def choose_openblas_kernels() -> None:
    """OpenBLAS runs its SkylakeX kernels on Zen 4, whose AVX-512 units are 256 bits wide; for this
    project's small float32 products its Haswell (AVX2) kernels are faster there: 5-25% per
    product, 8% per training step (``dy @ W.T`` on 256 x 256: 111 -> 85 us). The choice is an
    environment variable read when numpy loads OpenBLAS, so the entry points call this before
    anything imports numpy (``python -m pipeline`` and the ``pipeline`` command, whose sweeps'
    worker processes inherit it; ``python -m benchmarks``). Never overrides an
    ``OPENBLAS_CORETYPE`` of the user's; ``PIPELINE_BLAS_TUNING=0`` turns it off."""
    if "numpy" in sys.modules or "OPENBLAS_CORETYPE" in os.environ:
        return
    if os.environ.get("PIPELINE_BLAS_TUNING", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if _zen4():
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
