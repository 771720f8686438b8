"""Small tensor and module helpers used across the project."""
import contextlib
import warnings

import torch


@contextlib.contextmanager
def suppress_tracer_warnings():
    """Silence TorchScript tracer warnings inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        yield


def assert_shape(tensor, ref_shape):
    """Raise AssertionError unless `tensor.shape` matches `ref_shape` (None = any size)."""
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions: got {tensor.ndim}, expected {len(ref_shape)} '
                             f'(shape {list(tensor.shape)} vs {list(ref_shape)})')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(torch.equal(torch.as_tensor(size), ref_size), f'Wrong size for dimension {idx}')
        elif isinstance(size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(torch.equal(size, torch.as_tensor(ref_size)),
                              f'Wrong size for dimension {idx}: expected {ref_size}')
        elif size != ref_size:
            raise AssertionError(f'Wrong size for dimension {idx}: got {size}, expected {ref_size} '
                                 f'(shape {list(tensor.shape)} vs {list(ref_shape)})')


def profiled_function(fn):
    """Decorator: label the function's time in the PyTorch profiler."""
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    decorator.__name__ = fn.__name__
    decorator.__doc__ = fn.__doc__
    return decorator


def one_hot(classes, c_dim, device='cpu'):
    """Conditioning c for class ids: int64 [N] -> float [N, c_dim] (an empty [N, 0] when c_dim is 0)."""
    classes = torch.as_tensor(classes, dtype=torch.int64)
    if c_dim == 0:
        return torch.zeros([len(classes), 0], device=device)
    return torch.nn.functional.one_hot(classes, c_dim).to(device=device, dtype=torch.float32)
