"""Re-parameterisations of layer tensors (torch.nn.utils.parametrize), and baking them away."""
import torch
from torch.nn.utils import parametrize


def thin_svd(flat):
    """Thin SVD of a float64 matrix [m, n] -> U [m, r], s [r] (descending), Vh [r, n], r = min(m, n).

    Computed from the eigen-decomposition of the smaller Gram matrix, which is much faster than
    LAPACK's SVD on the CPU here. U @ diag(s) @ Vh reproduces the matrix to float64 rounding
    (for the larger side, Vh = diag(1/s) U^T W); directions with s below 1e-12 * s_max are
    dropped (s = 0, zero vectors), which changes the product by less than that.
    """
    m, n = flat.shape
    transpose = m > n
    A = flat.t() if transpose else flat                     # [p, q] with p <= q
    evals, evecs = torch.linalg.eigh(A @ A.t())             # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    s = evals.clamp(min=0).sqrt()
    keep = s > 1e-12 * s.max().clamp(min=1e-300)
    inv = torch.where(keep, 1 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
    s = torch.where(keep, s, torch.zeros_like(s))
    other = (evecs.t() @ A) * inv[:, None]                  # [p, q], rows orthonormal where kept
    if transpose:
        return other.t(), s, evecs.t()                      # U [m, r] = other^T, Vh = evecs^T
    return evecs, s, other


class SingularValueScale(torch.nn.Module):
    """W = U diag(lam * s0) V^T (+ row mean when centred), from the SVD of the pretrained weight.

    The weight is flattened to [out, in * k * k]. U [out, r], s0 [r], Vh [r, in*k*k] (and the
    mean [1, in*k*k]) are frozen buffers. Trainable: `lam` [r], initialised to 1, or with
    train_sigma=True the singular values `sigma` [r] themselves, initialised to s0.
    centered=True is the PCA variant: the SVD is of W minus its mean row, added back after.
    """

    def __init__(self, weight, train_sigma=False, centered=False):
        super().__init__()
        self.shape = tuple(weight.shape)
        flat = weight.detach().reshape(weight.shape[0], -1).to(torch.float64)
        mean = flat.mean(dim=0, keepdim=True) if centered else torch.zeros_like(flat[:1])
        U, s0, Vh = thin_svd(flat - mean)
        dtype = weight.dtype
        self.register_buffer('U', U.to(dtype))
        self.register_buffer('s0', s0.to(dtype))
        self.register_buffer('Vh', Vh.to(dtype))
        self.register_buffer('mean', mean.to(dtype))
        self.train_sigma = train_sigma
        if train_sigma:
            self.sigma = torch.nn.Parameter(s0.to(dtype).clone())
        else:
            self.lam = torch.nn.Parameter(torch.ones_like(s0, dtype=dtype))

    def singular_values(self):
        """Current singular values [r]."""
        return self.sigma if self.train_sigma else self.lam * self.s0

    def trainable(self):
        return self.sigma if self.train_sigma else self.lam

    def forward(self, original):
        flat = (self.U * self.singular_values()) @ self.Vh + self.mean
        return flat.reshape(self.shape)


class ChannelScale(torch.nn.Module):
    """W * gamma per output channel (dim 0); gamma [out] initialised to 1."""

    def __init__(self, num_channels, device=None):
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.ones([num_channels], device=device))

    def forward(self, weight):
        return weight * self.gamma.reshape([-1] + [1] * (weight.ndim - 1))


class ChannelShift(torch.nn.Module):
    """b + beta; beta [out] initialised to 0."""

    def __init__(self, num_channels, device=None):
        super().__init__()
        self.beta = torch.nn.Parameter(torch.zeros([num_channels], device=device))

    def forward(self, bias):
        return bias + self.beta


class KernelModulation(torch.nn.Module):
    """AdAM's kernel modulation of a weight W [out, in, k, k] or [out, in], with some filters fine-tuned instead.

    Filters (rows along dim 0) marked important: W0 * (1 + v u^T) on the flattened [out, in*k*k] weight, W0 the
    frozen source rows; u [in*k*k] is shared by the layer, v [n_important] has one entry per important filter.
    Both start as N(0, 1) * 1e-7 draws from a generator seeded with `seed` (so G and G_ema start alike), which
    leaves every product below float32's rounding of 1: at init the weight equals W0 exactly. The other filters
    are trainable copies `rows` [n_other, in, k, k] of W0 (fine-tuned). Needs at least one important filter.
    """

    def __init__(self, weight, important, seed=0):
        super().__init__()
        important = torch.as_tensor(important, dtype=torch.bool).cpu()
        assert important.shape == weight.shape[:1] and important.any(), 'KernelModulation: one flag per filter, one set'
        gen = torch.Generator().manual_seed(int(seed))
        device, dtype = weight.device, weight.dtype
        self.register_buffer('important_idx', important.nonzero().flatten().to(device))
        self.register_buffer('other_idx', (~important).nonzero().flatten().to(device))
        self.u = torch.nn.Parameter((torch.randn([weight[0].numel()], generator=gen) * 1e-7).to(device, dtype))
        self.v = torch.nn.Parameter((torch.randn([len(self.important_idx)], generator=gen) * 1e-7).to(device, dtype))
        self.rows = torch.nn.Parameter(weight.detach()[self.other_idx].clone()) if len(self.other_idx) else None

    def trainable(self):
        return [self.u, self.v] + ([self.rows] if self.rows is not None else [])

    def forward(self, original):
        flat = original.reshape(original.shape[0], -1)                                  # [out, in*k*k]
        v = torch.zeros(flat.shape[:1], dtype=flat.dtype, device=flat.device).index_copy(0, self.important_idx, self.v)
        flat = flat * (1 + v[:, None] * self.u[None, :])
        if self.rows is not None:
            flat = flat.index_copy(0, self.other_idx, self.rows.reshape(len(self.other_idx), -1))
        return flat.reshape(original.shape)


def add(module, tensor_name, parametrization):
    """Register `parametrization` on module.<tensor_name> (a parameter or buffer); returns it."""
    parametrize.register_parametrization(module, tensor_name, parametrization, unsafe=True)
    return parametrization


def baked_state_dict(net):
    """state_dict of `net` with every re-parameterised tensor replaced by its current value.

    Names are those of the plain network (no `parametrizations.*` entries).
    """
    state = {}
    with torch.no_grad():
        for mod_name, module in net.named_modules():
            if 'parametrizations' in mod_name.split('.'):
                continue
            prefix = mod_name + '.' if mod_name else ''
            for name, p in module._parameters.items():
                if p is not None:
                    state[prefix + name] = p.detach().clone()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers_set:
                    state[prefix + name] = b.detach().clone()
            if parametrize.is_parametrized(module):
                for name in module.parametrizations.keys():
                    state[prefix + name] = getattr(module, name).detach().clone()
    return state


def baked(net):
    """A new plain network equal to `net` with its re-parameterisations baked into ordinary tensors.

    Built from the network's recorded constructor arguments (so it pickles in the persistent
    format); `net` itself is left untouched.
    """
    with torch.random.fork_rng(devices=[]):  # construction must not disturb the training RNG
        plain = type(net)(*net.init_args, **net.init_kwargs)
    plain.load_state_dict(baked_state_dict(net), strict=True)
    device = next(iter(net.parameters()), torch.empty(0)).device
    return plain.to(device).train(net.training)

