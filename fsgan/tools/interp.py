"""Latent interpolation for a StyleGAN2 generator: key latents, looping paths, frames, mp4/gif files.

Key latents follow scripts/generate.py: z of seed s is numpy RandomState(s).randn(z_dim) as float32,
so the frame at a key equals generate.py's image of that seed (up to float rounding of batched
evaluation). In 'z' space the path is a slerp between the keys' z (each frame then goes through the
mapping with truncation); in 'w' space the keys are mapped first and the path is a lerp between
their ws [num_ws, w_dim]. A conditional network draws each key in its class as generate.py does
(seed % c_dim unless one class is given); in 'z' space the one-hot conditioning blends linearly
between the keys' classes.

A loop over seeds [s0, ..., s(S-1)] with F frames per transition has S * F frames; frame i * F + k
lies k / F of the way from seed i to seed (i + 1) mod S, so frame 0 is seed s0 and the frame after
the last one would be frame 0 again (the loop closes).
"""
import contextlib

import numpy as np
import torch

from torch_utils import misc
from torch_utils.image_grid import seed_z, tile, to_uint8


def slerp(a, b, t):
    """Spherical interpolation a [D], b [D], t [F] in [0, 1] -> [F, D] (dtype of a).

    Along the great circle through a and b (their norms blend linearly with the sine weights);
    falls back to lerp when they are (anti)parallel. t = 0 gives exactly a.
    """
    a64, b64, t64 = a.to(torch.float64), b.to(torch.float64), t.to(torch.float64)[:, None]
    cos = (a64 @ b64) / (a64.norm() * b64.norm()).clamp(min=1e-300)
    omega = torch.arccos(cos.clamp(-1, 1))
    if torch.sin(omega) < 1e-6:
        out = a64 + t64 * (b64 - a64)
    else:
        out = (torch.sin((1 - t64) * omega) * a64 + torch.sin(t64 * omega) * b64) / torch.sin(omega)
    out = torch.where(t64 == 0, a64, out)
    return out.to(a.dtype)


def key_labels(G, seeds, class_idx=None, device='cpu'):
    """Conditioning of the keys, c [S, c_dim]: class `class_idx` for every seed, or class seed % c_dim as
    scripts/generate.py draws it when None; [S, 0] for an unconditional network."""
    classes = [s % max(G.c_dim, 1) for s in seeds] if class_idx is None else [class_idx] * len(seeds)
    return misc.one_hot(classes, G.c_dim, device)


def _device(G):
    return next(G.parameters()).device


@torch.no_grad()
def key_latents(G, seeds, space='z', trunc=0.8, c=None):
    """Keys of the seeds: z [S, z_dim] for space 'z', ws [S, num_ws, w_dim] for space 'w' (mapped one by one,
    seed i with c[i]; c [S, c_dim] defaults to key_labels)."""
    device = _device(G)
    z = seed_z(seeds, G.z_dim).to(device)
    if space == 'z':
        return z
    c = key_labels(G, seeds, device=device) if c is None else c
    return torch.cat([G.mapping(z[i:i + 1], c[i:i + 1], truncation_psi=trunc) for i in range(len(seeds))])


def blend(a, b, t, space='z'):
    """Points between two keys: slerp of z [D] (space 'z') or lerp of ws [num_ws, w_dim] (space 'w') -> [F, ...]."""
    if space == 'z':
        return slerp(a, b, t)
    return a[None].lerp(b[None], t.to(a.dtype).reshape(-1, 1, 1))


def blend_labels(c, i, j, t):
    """Conditioning from key i to key j: lerp of c[i] and c[j] [c_dim] at t [F] -> [F, c_dim]."""
    return c[i:i + 1].lerp(c[j:j + 1], t.to(c.dtype)[:, None])


@torch.no_grad()
def to_ws(G, latents, space='z', trunc=0.8, c=None, batch=16):
    """Path points -> ws [F, num_ws, w_dim]: z points go through the mapping (with truncation) with c [F, c_dim]
    (one row per point; None = class 0), ws pass through."""
    if space == 'w':
        return latents
    if c is None:
        c = misc.one_hot([0] * len(latents), G.c_dim, latents.device)
    return torch.cat([G.mapping(zb, cb, truncation_psi=trunc) for zb, cb in zip(latents.split(batch), c.split(batch))])


def _path_ws(G, seeds, t, closed, space, trunc, class_idx, batch):
    """ws along consecutive seed pairs (and back to the first when `closed`), t [F] per pair."""
    c = key_labels(G, seeds, class_idx, _device(G))
    keys = key_latents(G, seeds, space, trunc, c)
    pairs = [(i, (i + 1) % len(seeds)) for i in range(len(seeds) if closed else len(seeds) - 1)]
    path = torch.cat([blend(keys[i], keys[j], t, space) for i, j in pairs])
    labels = torch.cat([blend_labels(c, i, j, t) for i, j in pairs])
    return to_ws(G, path, space, trunc, labels, batch)


def loop_ws(G, seeds, frames_per_transition, space='z', trunc=0.8, class_idx=None, batch=16):
    """Closed loop through the seeds: ws [S * F, num_ws, w_dim] (see the module docstring).

    Each seed keeps its class (class_idx, or seed % c_dim when None); in 'z' space the conditioning
    blends linearly from one key's class to the next.
    """
    t = torch.arange(frames_per_transition, dtype=torch.float64, device=_device(G)) / frames_per_transition
    return _path_ws(G, seeds, t, True, space, trunc, class_idx, batch)


def strip_ws(G, seed_a, seed_b, steps, space='z', trunc=0.8, class_idx=None):
    """Open path from seed_a to seed_b, both ends included: ws [steps, num_ws, w_dim]."""
    t = torch.linspace(0, 1, steps, dtype=torch.float64, device=_device(G))
    return _path_ws(G, [seed_a, seed_b], t, False, space, trunc, class_idx, 16)


@torch.no_grad()
def render(G, ws, noise_mode='const', batch=8):
    """ws [F, num_ws, w_dim] -> uint8 [F, H, W, C] (the conversion of generate.py)."""
    return np.concatenate([to_uint8(G.synthesis(wb, noise_mode=noise_mode)) for wb in ws.split(batch)])


def upscale(frame, factor):
    """Nearest-neighbour integer upscale of uint8 [H, W, C]."""
    return frame if factor == 1 else frame.repeat(factor, axis=0).repeat(factor, axis=1)


def grid_frames(G, cell_ws, rows, cols, factor=1, noise_mode='const', batch=8):
    """Yield the frames of a grid video: cell_ws is a list of ws [F, num_ws, w_dim] (one per cell, same F).

    Each frame is uint8 [rows * H * factor, cols * W * factor, C].
    """
    num_frames = len(cell_ws[0])
    for start in range(0, num_frames, batch):
        imgs = np.stack([render(G, ws[start:start + batch], noise_mode, batch) for ws in cell_ws], axis=1)
        for cells in imgs:                                            # [K, H, W, C] per frame
            yield upscale(tile(cells, rows, cols), factor)


def _rgb(frame):
    return np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame


def _gif_bytes(frames, fps):
    """uint8 frames [H, W, C] -> bytes of a looping GIF at fps (GIF delays are in 10 ms steps)."""
    import io
    import PIL.Image
    images = [PIL.Image.fromarray(f[:, :, 0], 'L') if f.shape[2] == 1 else PIL.Image.fromarray(f, 'RGB')
              for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format='GIF', save_all=True, append_images=images[1:], loop=0,
                   duration=max(int(round(1000 / fps / 10)) * 10, 20), optimize=False)
    return buf.getvalue()


def write_video(frames, path, fps=30, total=None, gif_path=None, progress=False):
    """Write frames (iterable of uint8 [H, W, C]) to `path` (.mp4 via imageio-ffmpeg, or .gif) atomically.

    gif_path: also write the same frames as a GIF there. mp4 frames are streamed into a temp file
    next to `path` that replaces it only when complete. Returns the number of frames.
    """
    import imageio
    from dnnlib.fileio import atomic_path, atomic_write_bytes
    as_gif = path.lower().endswith('.gif')
    keep = [] if (as_gif or gif_path) else None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit='frame')
    count = 0
    try:
        with contextlib.ExitStack() as stack:
            writer = None
            if not as_gif:
                tmp = stack.enter_context(atomic_path(path, suffix='.tmp.mp4'))
                writer = imageio.get_writer(tmp, format='FFMPEG', mode='I', fps=fps, codec='libx264', quality=8,
                                            macro_block_size=1, ffmpeg_log_level='error')
                stack.callback(writer.close)  # runs before the rename: closing finishes the file
            for frame in frames:
                if writer is not None:
                    writer.append_data(_rgb(frame))
                if keep is not None:
                    keep.append(frame)
                count += 1
                if bar is not None:
                    bar.update(1)
            if count == 0:
                raise ValueError(f'{path}: no frames to write')
        if as_gif:
            atomic_write_bytes(path, _gif_bytes(keep, fps))
        elif gif_path:
            atomic_write_bytes(gif_path, _gif_bytes(keep, fps))
    finally:
        if bar is not None:
            bar.close()
    return count


def interpolation_video(G, seed_loops, path, frames_per_transition=60, space='z', trunc=0.8, rows=1, cols=1,
                        fps=30, factor=1, gif_path=None, class_idx=None, noise_mode='const', batch=8, progress=False):
    """Looping interpolation video; one loop per grid cell (seed_loops: list of seed lists of equal length).

    Returns (number of frames = len(seed_loops[0]) * frames_per_transition, (height, width) of a frame).
    """
    cell_ws = [loop_ws(G, seeds, frames_per_transition, space, trunc, class_idx, batch) for seeds in seed_loops]
    total = len(cell_ws[0])
    frames = grid_frames(G, cell_ws, rows, cols, factor, noise_mode, batch)
    count = write_video(frames, path, fps=fps, total=total, gif_path=gif_path, progress=progress)
    return count, (rows * G.img_resolution * factor, cols * G.img_resolution * factor)
