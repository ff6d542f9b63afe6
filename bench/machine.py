"""What a benchmark ran on, for the line every bench prints beside its figures."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess


def machine() -> str:
    """CPU count and model, the GPU if nvidia-smi sees one, Python and OS."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = ""
    if shutil.which("nvidia-smi"):
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, check=False)
        gpu = f", GPU: {found.stdout.strip() or 'none'}"
    return f"{os.cpu_count()} CPUs ({model}){gpu}, Python {platform.python_version()}, {platform.system()}"
