"""Collect scalar statistics during training and average them per reporting interval.

`report(name, value)` anywhere in the training code; the loop calls `collect()` at each tick
to get {name: mean} over everything reported since the last call.
"""
import torch

_sums = {}    # name -> [count, sum, sum of squares] (float64)


def report(name, value):
    """Record the elements of `value` (tensor or number) under `name`; returns value unchanged."""
    t = torch.as_tensor(value).detach().to(torch.float64).flatten()
    t = t[torch.isfinite(t)] if t.numel() else t
    if t.numel() == 0:
        return value
    acc = _sums.setdefault(name, [0, 0.0, 0.0])
    acc[0] += t.numel()
    acc[1] += float(t.sum())
    acc[2] += float(t.square().sum())
    return value


def collect():
    """{name: {'num', 'mean', 'std'}} over everything reported since the previous call; resets."""
    out = {}
    for name, (n, s, sq) in sorted(_sums.items()):
        mean = s / n
        out[name] = dict(num=n, mean=mean, std=max(sq / n - mean * mean, 0.0) ** 0.5)
    _sums.clear()
    return out
