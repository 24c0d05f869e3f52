"""Deterministic training: environment, seeds, algorithm flags, RNG snapshots, and a report of what was applied."""

from __future__ import annotations

import os
import platform
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import numpy as np
import torch

# Must be in the environment before CUDA initialises: cuBLAS picks its workspace (and with it the
# reduction order of its GEMMs) at start-up. ":4096:8" is the setting NVIDIA documents for determinism.
CUDA_DETERMINISM_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
REPORTED_PACKAGES = ("torch", "torch-geometric", "accelerate", "numpy", "safetensors", "pyyaml", "tqdm")


def apply_determinism_environment() -> dict[str, str]:
    """Set the environment a deterministic CUDA run needs (call before anything touches CUDA).

    A value the user already exported wins; the returned dict says what is in effect.
    """
    if torch.cuda.is_initialized():
        raise RuntimeError("apply_determinism_environment() must run before CUDA is initialised")
    for key, value in CUDA_DETERMINISM_ENV.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in CUDA_DETERMINISM_ENV}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device), as the reference did before building the model."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def configure_torch(deterministic: bool, num_threads: int) -> dict[str, Any]:
    """Algorithm flags and intra-op threads; returns the settings in effect.

    Exact CPU parity with the reference needs ONE intra-op thread: with more, index-op backwards and large
    matrix products sum in another order (differences ~1e-6 after a few steps).
    """
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = False
    # Full float32 matrix products on GPUs too (TF32 would round every product to 10 mantissa bits).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32": False,
        "intra_op_threads": torch.get_num_threads(),
        "exact_cpu_parity_needs_one_thread": True,
    }


def environment_report() -> dict[str, Any]:
    """Versions and hardware that the bit-for-bit result depends on."""
    versions = {}
    for package in REPORTED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "packages": versions,
        "cuda_available": torch.cuda.is_available(),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"),
    }
    if torch.cuda.is_available():
        report["cuda"] = torch.version.cuda
        report["cudnn"] = torch.backends.cudnn.version()
        report["gpus"] = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    return report


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states, in a form `torch.load(weights_only=True)` accepts."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def isolated_rng() -> Iterator[None]:
    """Whatever runs inside leaves every generator as it found it (the reference's sanity pass does this)."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)
