"""Fused multiply-add a * b + c with broadcasting."""
import torch


def fma(a, b, c):
    """Return a * b + c (broadcast), as one op."""
    return torch.addcmul(c, a, b)
