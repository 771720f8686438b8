"""Collect scalar statistics during training and average them per reporting interval.

`report(name, value)` anywhere in the training code; the loop calls `collect()` at each tick
to get {name: mean} over everything reported since the last call.
"""
import torch

_sums = {}    # name -> float64 tensor [count, sum, sum of squares], on the device of the reported values


def report(name, value):
    """Record the finite elements of `value` (tensor or number) under `name`; returns value unchanged.

    Accumulates on the value's device without reading it back (no host sync).
    """
    t = torch.as_tensor(value).detach().flatten()
    if t.numel() == 0:
        return value
    t = t.to(torch.float64)
    finite = torch.isfinite(t)
    t = torch.where(finite, t, torch.zeros_like(t))
    moments = torch.stack([finite.sum(dtype=torch.float64), t.sum(), t.square().sum()])
    acc = _sums.get(name)
    _sums[name] = moments if acc is None else acc + moments.to(acc.device)
    return value


def collect():
    """{name: {'num', 'mean', 'std'}} over the finite values reported since the previous call; resets."""
    out = {}
    for name, acc in sorted(_sums.items()):
        n, s, sq = acc.tolist()
        if n == 0:
            continue
        n = int(n)
        mean = s / n
        out[name] = dict(num=n, mean=mean, std=max(sq / n - mean * mean, 0.0) ** 0.5)
    _sums.clear()
    return out
