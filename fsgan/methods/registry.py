"""Registry of adaptation methods."""
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import torch

from dnnlib.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    """An adaptation method and the paper's training defaults for it."""
    name: str
    apply: Callable             # apply(G, D, **options) -> list of trainable tensors
    description: str
    lr: float                   # Adam learning rate (paper setting)
    update_w_avg: bool          # Let the mapping network track w_avg during training?
    options: Dict[str, object] = field(default_factory=dict)  # option name -> default
    losses: Dict[str, object] = field(default_factory=dict)   # loss terms the method brings (fsgan.losses):
                                                              # name -> weight or {weight, **options}
    probe: Optional[Callable] = None   # probe(run, **options) -> {option: value}: options computed from the target
                                       # before adaptation (e.g. AdAM's importance mask), {} when all are known;
                                       # run: see fsgan.training_loop.probe_method


METHODS = Registry('adaptation method', label='Method')


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (one line per method module)."""
    return METHODS.register(spec)


def get_method(name: str) -> MethodSpec:
    """Look up a method by name; the error lists what is registered."""
    return METHODS.lookup(name)


def adapt(G, D=None, method='fsgan', **options):
    """Re-parameterise G (and D unless None) in place for `method`; return the trainable tensors.

    Every other tensor ends with requires_grad=False.
    """
    spec = get_method(method)
    resolved = METHODS.with_defaults(method, options)
    for net in (G, D):
        if net is not None:
            net.requires_grad_(False)
    trainable = spec.apply(G, D, **resolved)
    for t in trainable:
        t.requires_grad_(True)
    assert all(isinstance(t, torch.Tensor) for t in trainable)
    return trainable
