"""Image helpers shared by the generators, the interpolation tool and the training snapshots."""
import numpy as np
import PIL.Image
import torch

from dnnlib.fileio import atomic_open


def to_uint8(img):
    """float tensor [N, C, H, W] in [-1, 1] -> uint8 numpy [N, H, W, C], as in stylegan2-ada: x * 127.5 + 128,
    clamped to [0, 255] and truncated."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def tile(images, rows=None, cols=None):
    """uint8 [N, H, W, C] -> uint8 [rows * H, cols * W, C], filled row-major; empty cells are black.

    Without rows or cols the grid is ceil(sqrt(N)) wide; a missing side is the smallest that holds N images.
    """
    images = np.asarray(images)
    n, h, w, c = images.shape
    if cols is None:
        cols = -(-n // rows) if rows else int(np.ceil(np.sqrt(n)))
    if rows is None:
        rows = -(-n // cols)
    if n > rows * cols:
        raise ValueError(f'{n} images do not fit a {rows}x{cols} grid')
    cells = np.zeros([rows * cols, h, w, c], dtype=np.uint8)
    cells[:n] = images
    return cells.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def seed_z(seeds, z_dim):
    """z of each seed: numpy RandomState(seed).randn(z_dim), as float32 tensor [S, z_dim]."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).to(torch.float32)


def save_png(array, path):
    """uint8 [H, W, C] (C = 1 grey or 3 RGB) -> PNG at `path`, written atomically."""
    img = PIL.Image.fromarray(array[:, :, 0], 'L') if array.shape[2] == 1 else PIL.Image.fromarray(array, 'RGB')
    with atomic_open(path) as f:
        img.save(f, format='PNG')
