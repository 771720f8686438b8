"""LPIPS (Zhang et al. 2018) computed here over any feature network, plus a VGG16 feature network that loads
the standard LPIPS-VGG weights.

LPIPS(x, y) = sum_l mean_{h,w} sum_c w_{l,c} (xn_l - yn_l)^2_{c,h,w}, where f_l are the feature maps of
layer l for the input scaled as (x - shift) / scale (x in [-1, 1]), xn_l = f_l / (sqrt(sum_c f_l^2) + 1e-10)
is f_l normalised to unit length over channels at every pixel, and w_l >= 0 are the learnt per-channel
("lin") weights.

This equals a squared Euclidean distance between embeddings: e_l(x) = sqrt(w_l) * xn_l / sqrt(H_l W_l),
flattened, concatenated over l; LPIPS(x, y) = ||e(x) - e(y)||^2. `LPIPS.embed` returns e, so nearest
neighbours and pairwise distances are plain matrix products.

Weights (`lpips_vgg(weights)`): by default the two files the `lpips` package itself uses, downloaded once by
URL into the download cache (dnnlib.util.open_url: $FSGAN_CACHE_DIR/downloads, else ~/.cache/fsgan/downloads)
and checked by sha256 (LPIPS_VGG_DOWNLOADS):
  * the lin layers of LPIPS v0.1 for VGG, `lpips/weights/v0.1/vgg.pth` of richzhang/PerceptualSimilarity at the
    commit of its release 0.1.4 (7,289 bytes; the file is unchanged since it entered the repository); its full
    sha256 was computed here from the repository's blob, offline;
  * torchvision's ImageNet VGG16 (`vgg16-397923af.pth`, what `lpips` loads through torchvision). Its full sha256
    is not published: torchvision names the file after the first 8 hex digits of the sha256, which is what
    torch.hub checks and what is checked here (32 bits, enough against a truncated or substituted file).
Or (`--lpips-weights`) one state dict file, or its http(s)/file URL, holding both: made once on a machine with
the `lpips` package by `torch.save(lpips.LPIPS(net='vgg').state_dict(), 'lpips_vgg.pth')`. Keys read:
`net.slice{1..5}.{i}.weight|bias` (i = torchvision vgg16 `features` index; `features.{i}.` is accepted too) and
`lin{0..4}.model.1.weight` (or `.model.0.` without dropout), shapes [C_l] x 1 x 1; other keys are ignored.
"""

import os
import re
from dataclasses import dataclass

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


@dataclass(frozen=True)
class WeightFile:
    """A weight file to download: its URL and its sha256, the full hex digest or the leading hex digits a
    publisher gives (checked as a prefix)."""
    url: str
    sha256: str


LPIPS_VGG_DOWNLOADS = (
    WeightFile('https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/'
               '3767a70e437c4020decf5888a83f438d2726a10f/lpips/weights/v0.1/vgg.pth',
               'a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868'),
    WeightFile('https://download.pytorch.org/models/vgg16-397923af.pth', '397923af'),
)


def fetch_checked(weight_file, cache_dir=None):
    """Local path of WeightFile `weight_file`, downloaded once into the cache and checked against its sha256.

    A full digest is checked by open_url (a mismatching download never gets the final name; a mismatching cached
    file is fetched again); a prefix is checked here on every call, and a mismatching file is removed. Raises
    dnnlib.util.DownloadError (an OSError) naming the URL.
    """
    from dnnlib.util import DownloadError, file_sha256, open_url  # only downloads need them

    full = len(weight_file.sha256) == 64
    path = open_url(weight_file.url, cache_dir=cache_dir, return_filename=True,
                    sha256=weight_file.sha256 if full else None)
    digest = file_sha256(path)
    if not digest.startswith(weight_file.sha256.lower()):
        os.remove(path)
        raise DownloadError(f'{weight_file.url}: sha256 {digest} does not start with the published '
                            f'{weight_file.sha256}; the file was removed from the cache, run again to download it anew')
    return path


def lpips_vgg(weights=None, device='cpu', cache_dir=None):
    """LPIPS-VGG (eval mode, on `device`) from `weights`: None = LPIPS_VGG_DOWNLOADS (fetch_checked); a state dict
    file; or an http(s)/file URL of one, downloaded once into the cache. cache_dir None = the download cache."""
    if weights is None:
        return load_lpips_vgg([fetch_checked(w, cache_dir) for w in LPIPS_VGG_DOWNLOADS], device)
    from dnnlib.util import open_url
    return load_lpips_vgg([open_url(weights, cache_dir=cache_dir, return_filename=True)], device)


def _read_state(path):
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises several types for files that are not state dicts
        raise ValueError(f'{path}: cannot read a state dict ({str(e).splitlines()[0]})') from e
    if not isinstance(state, dict):
        raise ValueError(f'{path}: expected a state dict, got {type(state).__name__}')
    return state


def load_lpips_vgg(paths, device='cpu'):
    """LPIPS-VGG from one state dict file or a list of them (their keys together: format in the module docstring),
    in eval mode on `device`."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    state = {}
    for path in paths:
        part = _read_state(path)
        twice = sorted(set(part) & set(state))
        if twice:
            raise ValueError(f'{path}: key(s) {", ".join(twice[:3])} also in an earlier weight file')
        state.update(part)
    path = ', '.join(map(str, paths))
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
