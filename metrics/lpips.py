"""LPIPS (Zhang et al. 2018) computed here over any feature network, plus a VGG16 feature network that loads
the standard LPIPS-VGG weights.

LPIPS(x, y) = sum_l mean_{h,w} sum_c w_{l,c} (xn_l - yn_l)^2_{c,h,w}, where f_l are the feature maps of
layer l for the input scaled as (x - shift) / scale (x in [-1, 1]), xn_l = f_l / (sqrt(sum_c f_l^2) + 1e-10)
is f_l normalised to unit length over channels at every pixel, and w_l >= 0 are the learnt per-channel
("lin") weights.

This equals a squared Euclidean distance between embeddings: e_l(x) = sqrt(w_l) * xn_l / sqrt(H_l W_l),
flattened, concatenated over l; LPIPS(x, y) = ||e(x) - e(y)||^2. `LPIPS.embed` returns e, so nearest
neighbours and pairwise distances are plain matrix products.

Weights for `load_lpips_vgg(path)`: one PyTorch state dict holding both the VGG16 convolutions and the lin
layers. Obtain it once on a machine with the `lpips` package (and torchvision, which it uses to fetch the
ImageNet VGG16): `import lpips, torch; torch.save(lpips.LPIPS(net='vgg').state_dict(), 'lpips_vgg.pth')`.
Keys read: `net.slice{1..5}.{i}.weight|bias` (i = torchvision vgg16 `features` index; `features.{i}.` is
accepted too) and `lin{0..4}.model.1.weight` (or `.model.0.` without dropout), shapes [C_l] x 1 x 1.
"""

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)

# torchvision vgg16().features: conv indices with their output channels; max-pooling follows 4, 9, 16, 23.
VGG16_CONVS = ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256), (12, 256), (14, 256),
               (17, 512), (19, 512), (21, 512), (24, 512), (26, 512), (28, 512))
VGG16_TAPS = (2, 7, 14, 21, 28)  # LPIPS layers relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (after that conv)
VGG16_POOLS = (4, 9, 16, 23)


class VGG16Features(nn.Module):
    """VGG16 conv trunk; forward(x [N, 3, H, W]) -> list of the 5 LPIPS feature maps (after ReLU)."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleDict()
        in_ch = 3
        for idx, out_ch in VGG16_CONVS:
            self.convs[str(idx)] = nn.Conv2d(in_ch, out_ch, 3, padding=1)
            in_ch = out_ch

    def forward(self, x):
        feats = []
        for idx, _ in VGG16_CONVS:
            if idx - 1 in VGG16_POOLS:
                x = F.max_pool2d(x, 2, 2)
            x = F.relu(self.convs[str(idx)](x))
            if idx in VGG16_TAPS:
                feats.append(x)
        return feats


class LPIPS(nn.Module):
    """LPIPS over `net` (callable: [N, 3, H, W] -> list of L maps [N, C_l, H_l, W_l]) with lin weights
    `lin_weights` (list of L non-negative [C_l] tensors). Inputs are images in [-1, 1]."""

    def __init__(self, net, lin_weights, shift=LPIPS_SHIFT, scale=LPIPS_SCALE):
        super().__init__()
        if any(float(torch.as_tensor(w).min()) < 0 for w in lin_weights):
            raise ValueError('LPIPS lin weights must be non-negative')
        self.net = net
        self.lin = nn.ParameterList([nn.Parameter(torch.as_tensor(w, dtype=torch.float32).reshape(-1),
                                                  requires_grad=False) for w in lin_weights])
        self.register_buffer('shift', torch.tensor(shift, dtype=torch.float32).reshape(1, 3, 1, 1))
        self.register_buffer('scale', torch.tensor(scale, dtype=torch.float32).reshape(1, 3, 1, 1))

    @torch.no_grad()
    def embed(self, x):
        """Images [N, 3, H, W] in [-1, 1] -> embeddings [N, E] with LPIPS(x, y) = ||e(x) - e(y)||^2."""
        feats = self.net((x - self.shift) / self.scale)
        if len(feats) != len(self.lin):
            raise ValueError(f'network gave {len(feats)} feature maps for {len(self.lin)} lin layers')
        parts = []
        for f, w in zip(feats, self.lin):
            fn = f / (torch.sqrt((f * f).sum(dim=1, keepdim=True)) + 1e-10)
            e = fn * torch.sqrt(w).reshape(1, -1, 1, 1) / (f.shape[2] * f.shape[3]) ** 0.5
            parts.append(e.flatten(1))
        return torch.cat(parts, dim=1)

    def forward(self, x, y):
        """LPIPS distances [N] between image batches x and y ([N, 3, H, W] in [-1, 1])."""
        return (self.embed(x) - self.embed(y)).square().sum(dim=1)


def squared_distances(a, b):
    """Squared Euclidean distances [N, K] between rows of a [N, E] and b [K, E], accumulated in float64."""
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return sq.clamp(min=0)


def load_lpips_vgg(path, device='cpu'):
    """LPIPS-VGG from a state dict file (format in the module docstring), in eval mode on `device`."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises several types for files that are not state dicts
        raise ValueError(f'{path}: cannot read a state dict ({str(e).splitlines()[0]})') from e
    if not isinstance(state, dict):
        raise ValueError(f'{path}: expected a state dict, got {type(state).__name__}')
    net = VGG16Features()
    conv_state = {}
    lin = {}
    for key, value in state.items():
        m = re.fullmatch(r'(?:net\.slice\d+|features)\.(\d+)\.(weight|bias)', key)
        if m:
            conv_state[f'convs.{m.group(1)}.{m.group(2)}'] = value
            continue
        m = re.fullmatch(r'lin(\d+)\.model\.[01]\.weight', key)
        if m:
            lin[int(m.group(1))] = value
    if sorted(lin) != list(range(len(VGG16_TAPS))):
        raise ValueError(f'{path}: expected lin0..lin4 weights, found lin{sorted(lin)}')
    missing, unexpected = net.load_state_dict(conv_state, strict=False)
    if missing or unexpected:
        raise ValueError(f'{path}: VGG16 weights do not match (missing {missing}, unexpected {unexpected})')
    return LPIPS(net, [lin[i] for i in range(len(VGG16_TAPS))]).eval().to(device)
