"""The GPU check's first record: the machine, torch and CUDA, and whether wpl and its needs import from the source
tree with nothing installed (the GPU machine has no package registry)."""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys

import torch


def main() -> int:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
           "torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
           "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
           "bf16_supported": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())}
    missing = {}
    for mod in ("numpy", "tqdm", "matplotlib", "PIL", "tensorboard", "ninja", "pytest", "pytest_timeout", "wpl"):
        try:
            importlib.import_module(mod)
        except Exception as exc:  # noqa: BLE001 - every failure to import is a finding
            missing[mod] = f"{type(exc).__name__}: {exc}"
    import wpl

    out["wpl_from"] = os.path.dirname(wpl.__file__)
    out["missing"] = missing
    print(json.dumps(out))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
