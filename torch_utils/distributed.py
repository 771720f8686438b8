"""Multi-process data-parallel training: one process per GPU (nccl), or per CPU worker (gloo).

Every process holds the whole network; each computes gradients on batch / world_size samples,
the gradients are averaged with all_reduce before each optimiser step, so the parameters stay
identical on every rank. Only rank 0 writes files.
"""
import os

import torch
import torch.distributed as dist


def world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank():
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def init(rank_idx, num_procs, init_file, device_type):
    """Join the process group: nccl for CUDA devices, gloo otherwise; init through a shared file."""
    backend = 'nccl' if device_type == 'cuda' else 'gloo'
    init_method = 'file://' + os.path.abspath(init_file)
    dist.init_process_group(backend=backend, init_method=init_method, rank=rank_idx, world_size=num_procs)
    if device_type == 'cuda':
        torch.cuda.set_device(rank_idx)


def shutdown():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@torch.no_grad()
def average_gradients(params):
    """Average .grad of `params` over all ranks (missing grads count as zeros)."""
    if world_size() == 1 or not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].reshape(p.shape).clone()
        offset += n


@torch.no_grad()
def average_scalars(values):
    """{name: float} averaged over all ranks, so every rank sees the same losses (a NaN on one rank
    reaches all of them, and they stop or roll back together)."""
    if world_size() == 1 or not values:
        return values
    keys = sorted(values)
    flat = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == 'nccl':
        flat = flat.cuda()
    dist.all_reduce(flat)
    return dict(zip(keys, (flat / world_size()).tolist()))


@torch.no_grad()
def broadcast_module(module):
    """Copy rank 0's parameters and buffers to every rank."""
    if world_size() == 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


@torch.no_grad()
def assert_in_sync(module, what):
    """Raise if `module`'s parameters differ between ranks (checksum spread over ranks)."""
    if world_size() == 1:
        return
    checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().reshape(1)
    lo, hi = checksum.clone(), checksum.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise RuntimeError(f'{what} parameters diverged between ranks ({float(lo)} vs {float(hi)})')


def gather_objects(obj):
    """List of `obj` from every rank (on every rank)."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
