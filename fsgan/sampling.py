"""Sampling a generator: seeds -> latents -> images, in the one seed convention of every tool here.

Seed s gives z = numpy RandomState(s).randn(z_dim) (stylegan2-ada-pytorch's generate.py), class s % c_dim for
a conditional network unless a class is given.
"""
import re

from fsgan.tools.errors import OptionError

NOISE_MODE_HELP = ('Per-pixel noise inputs: const = the fixed noise buffers stored in the network, random = fresh '
                   'noise per image, none = no noise.')


MAX_SEED = 2 ** 32 - 1  # numpy RandomState seeds


def parse_seed_ranges(text):
    """'0-3,7' -> [range(0, 4), range(7, 8)] (lazy: a range of 10^8 seeds costs no memory).

    Raises OptionError naming --seeds on a malformed or empty range or a seed above MAX_SEED.
    """
    ranges = []
    for part in str(text).split(','):
        part = part.strip()
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
        if not m:
            raise OptionError(f'{part!r} is not a seed or a range like 0-63', '--seeds')
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise OptionError(f'range {part} is empty (end before start)', '--seeds')
        if hi > MAX_SEED:
            raise OptionError(f'{hi} is too large; seeds are 0..{MAX_SEED}', '--seeds')
        ranges.append(range(lo, hi + 1))
    return ranges


def parse_seeds(text):
    """'0-3,7' -> [0, 1, 2, 3, 7]; raises OptionError (see parse_seed_ranges)."""
    return [seed for r in parse_seed_ranges(text) for seed in r]


def load_generator(network, adapter=None, device='cpu'):
    """(G_ema, else G, of a network with an adapter applied when given, in eval mode on `device`; its sha256).

    Raises fsgan.loading.NetworkLoadError for an unreadable network or one without a generator, and
    fsgan.export.AdapterError for an adapter that does not fit.
    """
    from fsgan import load_network
    from fsgan.export import apply_adapter
    from fsgan.loading import NetworkLoadError
    net = load_network(network)
    if adapter is not None:
        apply_adapter(net, adapter)
    G = net['G_ema'] if net['G_ema'] is not None else net['G']
    if G is None:
        raise NetworkLoadError(f'{network}: contains no generator')
    return G.eval().requires_grad_(False).to(device), net['sha256']


def check_class(G, class_idx):
    """Validate --class for G: a warning (and None) on an unconditional network, OptionError when out of range."""
    if class_idx is not None and G.c_dim == 0:
        print(f'warning: --class {class_idx} ignored: the network is unconditional')
        return None
    if class_idx is not None and not 0 <= class_idx < G.c_dim:
        raise OptionError(f'must be in 0..{G.c_dim - 1}', '--class')
    return class_idx


def seed_classes(seeds, c_dim):
    """Default classes of a conditional network: seed s -> s % c_dim (0 for unconditional ones)."""
    return [s % max(c_dim, 1) for s in seeds]


def iter_images(G, seeds, trunc=0.8, noise_mode='const', class_idx=None, device='cpu', batch=1):
    """Yield (seeds, images uint8 [B, H, W, C]) for consecutive groups of at most `batch` seeds (any iterable).

    z for seed s is randn from numpy RandomState(s), as in stylegan2-ada. Conditional networks: class
    `class_idx` for every seed, or class s % c_dim for seed s when it is None (the classes of a
    conditional source adapted to unlabelled targets carry no meaning). batch 1 renders seed by seed,
    as every tool here does; a larger batch is faster and may differ by float rounding.
    """
    import itertools
    import torch
    from torch_utils.image_grid import seed_z, to_uint8
    from torch_utils.misc import one_hot
    class_idx = check_class(G, class_idx)
    seeds = iter(seeds)
    with torch.no_grad():
        while True:
            group = list(itertools.islice(seeds, batch))
            if not group:
                return
            classes = seed_classes(group, G.c_dim) if class_idx is None else [class_idx] * len(group)
            c = one_hot(classes, G.c_dim, device)
            z = seed_z(group, G.z_dim).to(device)
            yield group, to_uint8(G(z, c, truncation_psi=trunc, noise_mode=noise_mode))


def generate_images(G, seeds, trunc=0.8, noise_mode='const', class_idx=None, device='cpu'):
    """One image per seed, rendered seed by seed (see iter_images): uint8 [N, H, W, C]."""
    import numpy as np
    return np.concatenate([images for _group, images in iter_images(G, seeds, trunc, noise_mode, class_idx,
                                                                    device)])


def write_seed_images(network, seed_ranges, outdir, adapter=None, trunc=0.8, noise_mode='const', class_idx=None,
                      device='cpu', batch=1, grid=False):
    """Write outdir/seed{NNNN}.png per seed (each batch as it is made) and, with `grid`, outdir/grid.png.

    seed_ranges: ranges of seeds (parse_seed_ranges). The folder is created only after the network loaded
    and --class was checked. Returns the number of images written. Raises NetworkLoadError / AdapterError
    (see load_generator), OptionError for --class, ToolError when outdir cannot be created.
    """
    import itertools
    import os
    import numpy as np
    from fsgan.tools.errors import ToolError
    from torch_utils.image_grid import save_png, tile
    G, _sha = load_generator(network, adapter, device)
    class_idx = check_class(G, class_idx)
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise ToolError(f'--outdir {outdir}: cannot create it ({e.strerror})') from None
    kept, written = [], 0
    for group, images in iter_images(G, itertools.chain(*seed_ranges), trunc, noise_mode, class_idx, device, batch):
        for seed, img in zip(group, images):
            save_png(img, os.path.join(outdir, f'seed{seed:04d}.png'))
        written += len(group)
        if grid:
            kept.append(images)
    if grid:
        save_png(tile(np.concatenate(kept)), os.path.join(outdir, 'grid.png'))
    return written
