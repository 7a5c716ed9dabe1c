"""What a GPU check ran on: the accelerator, its driver, torch's CUDA, the packages, the CPU.

    python bench/gpu_env.py            # one JSON document on stdout

Run by bench/gpu_check.py as its first step (in its own process, under a timeout, since the
first CUDA call can hang on a broken driver).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

# The packages whose versions decide the figures (the device's image pins its own).
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "pydantic",
    "scikit-learn",
    "diskcache",
    "mlxtend",
    "avalanche-lib",
    "torch-cka",
    "pytest",
)
SMI_QUERY = "name,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def nvidia_smi() -> dict:
    """nvidia-smi's answer to a few fields, or why there is none."""
    if shutil.which("nvidia-smi") is None:
        return {"error": "nvidia-smi not found"}
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={SMI_QUERY}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        return {"error": "nvidia-smi timed out after 20 s"}
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip()[:200]}
    values = [v.strip() for v in out.stdout.splitlines()[0].split(",")]
    return dict(zip(SMI_QUERY.split(","), values, strict=False))


def torch_info() -> dict:
    import torch

    info = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            device_name=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            device_count=torch.cuda.device_count(),
        )
    return info


def main() -> int:
    doc = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "packages": {name: version(name) for name in PACKAGES},
        "nvidia_smi": nvidia_smi(),
        **torch_info(),
    }
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
