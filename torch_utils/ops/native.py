"""Dispatch to the fused native kernels (C++ on the CPU, CUDA on GPUs) when they are built.

The kernels are JIT-built on first use; until a build has succeeded for a device type,
`available()` is False and the ops use their PyTorch reference.
"""
import torch


def available(device: torch.device) -> bool:
    """True when a fused native kernel is built for `device`'s type."""
    return False
