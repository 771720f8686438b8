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


def usable_cores():
    """CPU cores this process may run on (its affinity where the OS reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


def cpu_threads(num_procs, cores, env):
    """Threads for each of num_procs CPU processes sharing `cores`: OMP_NUM_THREADS where `env` sets it to a
    number, else the cores shared out (at least 1), so that the processes do not oversubscribe the machine."""
    value = env.get('OMP_NUM_THREADS', '').strip()
    if value.isdigit():
        return max(1, int(value))
    return max(1, cores // num_procs)


def init(rank_idx, num_procs, init_file, device_type):
    """Join the process group: nccl for CUDA devices, gloo otherwise; init through a shared file. A CPU process
    takes its share of the cores (cpu_threads)."""
    backend = 'nccl' if device_type == 'cuda' else 'gloo'
    if device_type != 'cuda':
        torch.set_num_threads(cpu_threads(num_procs, usable_cores(), os.environ))
    init_method = 'file://' + os.path.abspath(init_file)
    dist.init_process_group(backend=backend, init_method=init_method, rank=rank_idx, world_size=num_procs)
    if device_type == 'cuda':
        torch.cuda.set_device(rank_idx)


def barrier():
    """Wait until every rank gets here (no-op for one process)."""
    if world_size() > 1:
        dist.barrier()


def shutdown():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@torch.no_grad()
def average_gradients(params, scalars=None):
    """Average .grad of `params` (missing grads count as zeros) and the floats in `scalars` {name: value} over
    all ranks, in one all_reduce. Returns the averaged scalars: every rank sees the same losses, so a NaN on
    one rank reaches all of them and they stop or roll back together."""
    scalars = dict(scalars or {})
    if world_size() == 1 or not (params or scalars):
        return scalars
    keys = sorted(scalars)
    device = params[0].device if params else torch.device('cuda' if dist.get_backend() == 'nccl' else 'cpu')
    dtype = params[0].dtype if params else torch.float32
    values = torch.tensor([float(scalars[k]) for k in keys], dtype=dtype, device=device)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params] + [values])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].reshape(p.shape).clone()
        offset += n
    return dict(zip(keys, flat[offset:].tolist()))


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


def rank0_decides(flag):
    """Rank 0's `flag` (a bool), on every rank: one decision taken by all ranks together (e.g. a clock's)."""
    if world_size() == 1:
        return bool(flag)
    box = [bool(flag)]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj):
    """List of `obj` from every rank (on every rank)."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
