"""Write images of a generator to a folder of PNG files, for the metrics to read."""

import os

import numpy as np
import PIL.Image
import torch

from metrics.util import atomic_open
from torch_utils.image_grid import seed_z
from torch_utils.misc import one_hot


@torch.no_grad()
def generate_images(G, out_dir, num, seed=0, truncation_psi=1.0, device='cpu', batch_size=16, progress=False):
    """Save `num` images of G as out_dir/000000.png, 000001.png, ...

    Image i is seed seed + i in the project's one convention (torch_utils.image_grid.seed_z: numpy
    RandomState(s).randn(z_dim) per seed s, as stylegan2-ada-pytorch's generate.py), so these are the images
    scripts/generate.py shows for those seeds (up to the rounding of batched evaluation), and a smaller `num`
    gives a prefix of the same images; c: one-hot of class s % c_dim when G.c_dim > 0, else an empty [B, 0].
    G is called as G(z, c, truncation_psi=..., noise_mode='const'); its output [B, C, H, W] in about [-1, 1]
    is quantised as in stylegan2-ada-pytorch: uint8(clamp(x * 127.5 + 128, 0, 255)). C = 1 is saved as grey.
    progress: show a progress bar.
    """
    G = G.eval().requires_grad_(False).to(device)
    c_dim = int(getattr(G, 'c_dim', 0))
    os.makedirs(out_dir, exist_ok=True)
    starts = range(0, num, batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=f'Generating {num} images', unit='batch')
    for start in starts:
        idx = np.arange(start, min(start + batch_size, num))
        seeds = [seed + int(i) for i in idx]
        z = seed_z(seeds, G.z_dim).to(device)
        c = one_hot([s % max(c_dim, 1) for s in seeds], c_dim, device)
        img = G(z, c, truncation_psi=truncation_psi, noise_mode='const')
        img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for i, arr in zip(idx, img):
            with atomic_open(os.path.join(out_dir, f'{i:06d}.png'), 'wb') as f:
                PIL.Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr[:, :, :3]).save(f, format='PNG')
