"""Fused bias + activation + gain + clamp.

`bias_act(x, b, dim, act, alpha, gain, clamp, impl)` keeps stylegan2-ada-pytorch's signature.
impl='ref' is plain PyTorch; impl='cuda' (the default name, kept for compatibility) uses the
fused native kernel for x's device when it is built, and otherwise the reference.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: its reference function, defaults, and index in the native kernels."""
    func: Callable
    def_alpha: float
    def_gain: float
    cuda_idx: int
    ref: str
    has_2nd_grad: bool


def _lrelu(x, alpha):
    return torch.nn.functional.leaky_relu(x, alpha)


activation_funcs = {
    'linear':   ActivationSpec(lambda x, alpha: x, 0, 1, 1, '', False),
    'relu':     ActivationSpec(lambda x, alpha: torch.nn.functional.relu(x), 0, np.sqrt(2), 2, 'y', False),
    'lrelu':    ActivationSpec(_lrelu, 0.2, np.sqrt(2), 3, 'y', False),
    'tanh':     ActivationSpec(lambda x, alpha: torch.tanh(x), 0, 1, 4, 'y', True),
    'sigmoid':  ActivationSpec(lambda x, alpha: torch.sigmoid(x), 0, 1, 5, 'y', True),
    'elu':      ActivationSpec(lambda x, alpha: torch.nn.functional.elu(x), 0, 1, 6, 'y', True),
    'selu':     ActivationSpec(lambda x, alpha: torch.nn.functional.selu(x), 0, 1, 7, 'y', True),
    'softplus': ActivationSpec(lambda x, alpha: torch.nn.functional.softplus(x), 0, 1, 8, 'y', True),
    'swish':    ActivationSpec(lambda x, alpha: torch.sigmoid(x) * x, 0, np.sqrt(2), 9, 'x', True),
}


def _resolve(act, alpha, gain, clamp):
    """Fill in per-activation defaults; returns (spec, alpha, gain, clamp) as Python floats."""
    if act not in activation_funcs:
        raise ValueError(f'Unknown activation {act!r}; choose one of {sorted(activation_funcs)}')
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)
    return spec, alpha, gain, clamp


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
    """Return clamp(act(x + b) * gain).

    x: any shape; b: [x.shape[dim]] or None; clamp: None or < 0 disables clamping.
    """
    assert isinstance(x, torch.Tensor)
    assert impl in ('ref', 'cuda')
    if impl == 'cuda':
        from . import native
        if native.available(x.device):
            return native.bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
        native.count_fallback(x.device)
    return bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def bias_act_ref(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
    """Reference implementation in plain PyTorch ops (any device, all derivatives)."""
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    if b is not None:
        assert isinstance(b, torch.Tensor) and b.ndim == 1
        assert 0 <= dim < x.ndim
        assert b.shape[0] == x.shape[dim], f'bias has {b.shape[0]} entries, x has {x.shape[dim]} along dim {dim}'
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
