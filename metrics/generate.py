"""Write images of a generator to a folder of PNG files, for the metrics to read."""

import os

import numpy as np
import PIL.Image
import torch

from metrics.util import atomic_open
from torch_utils.misc import one_hot


@torch.no_grad()
def generate_images(G, out_dir, num, seed=0, truncation_psi=1.0, device='cpu', batch_size=16, progress=False):
    """Save `num` images of G as out_dir/000000.png, 000001.png, ...

    z = numpy RandomState(seed).randn(num, G.z_dim) (row i belongs to image i, so a smaller `num` gives a
    prefix of the same images); c: one-hot of class i % c_dim when G.c_dim > 0, else an empty [B, 0].
    G is called as G(z, c, truncation_psi=..., noise_mode='const'); its output [B, C, H, W] in about [-1, 1]
    is quantised as in stylegan2-ada-pytorch: uint8(clamp(x * 127.5 + 128, 0, 255)). C = 1 is saved as grey.
    progress: show a progress bar.
    """
    G = G.eval().requires_grad_(False).to(device)
    z_all = np.random.RandomState(seed).randn(num, G.z_dim)
    c_dim = int(getattr(G, 'c_dim', 0))
    os.makedirs(out_dir, exist_ok=True)
    starts = range(0, num, batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=f'Generating {num} images', unit='batch')
    for start in starts:
        idx = np.arange(start, min(start + batch_size, num))
        z = torch.from_numpy(z_all[idx]).to(torch.float32).to(device)
        c = one_hot(idx % max(c_dim, 1), c_dim, device)
        img = G(z, c, truncation_psi=truncation_psi, noise_mode='const')
        img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for i, arr in zip(idx, img):
            with atomic_open(os.path.join(out_dir, f'{i:06d}.png'), 'wb') as f:
                PIL.Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr[:, :, :3]).save(f, format='PNG')
