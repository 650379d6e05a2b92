"""One line describing the machine a benchmark ran on (CPU model, cores, Python, load)."""

from __future__ import annotations

import os
import platform
import sys


def machine() -> str:
    """E.g. ``AMD EPYC 7B13, 2 cores, Python 3.11.7, load average 1.02 1.10 2.00``."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    torch = sys.modules.get("torch")  # name the GPU only where the benchmark already uses torch
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch is not None and torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, Python {platform.python_version()}, load average {load}"
