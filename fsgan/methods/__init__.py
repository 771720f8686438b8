"""Adaptation methods: which tensors of a pretrained G/D train, and how layers are re-parameterised.

Each method is one module that registers a `MethodSpec`. `adapt(G, D, method, **options)`
freezes everything, applies the method's re-parameterisation in place and returns the list
of tensors to train. D may be None (e.g. to give G_ema the same structure as G).
"""
from .registry import METHODS, MethodSpec, adapt, get_method, register  # noqa: F401
from . import fsgan, tgan, freezed, ssgan, ewc, adam, cdc  # noqa: F401,E402  (registration)
