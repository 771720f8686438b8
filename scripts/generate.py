"""Generate images from a network: a snapshot, a source plus an adapter file, a URL or a short name.

Examples:
  python scripts/generate.py --network runs/00000-fsgan-10shot/network-snapshot-000020.000.pkl --seeds 0-63 --grid
  python scripts/generate.py --network ffhq256 --adapter adapter-000020.000.pt --seeds 0,1,2 --trunc 0.8
"""
import os
import re
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fsgan.tools.cli import (FINITE, check_output_dir, command, device_option, overwrite_option,  # noqa: E402
                            resolve_device)

NOISE_MODE_HELP = ('Per-pixel noise inputs: const = the fixed noise buffers stored in the network, random = fresh '
                   'noise per image, none = no noise.')


MAX_SEED = 2 ** 32 - 1  # numpy RandomState seeds


def parse_seed_ranges(text):
    """'0-3,7' -> [range(0, 4), range(7, 8)] (lazy: a range of 10^8 seeds costs no memory).

    Raises click.BadParameter naming --seeds on a malformed or empty range or a seed above MAX_SEED.
    """
    ranges = []
    for part in str(text).split(','):
        part = part.strip()
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
        if not m:
            raise click.BadParameter(f'{part!r} is not a seed or a range like 0-63', param_hint='--seeds')
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise click.BadParameter(f'range {part} is empty (end before start)', param_hint='--seeds')
        if hi > MAX_SEED:
            raise click.BadParameter(f'{hi} is too large; seeds are 0..{MAX_SEED}', param_hint='--seeds')
        ranges.append(range(lo, hi + 1))
    return ranges


def parse_seeds(text):
    """'0-3,7' -> [0, 1, 2, 3, 7]; raises click.BadParameter (see parse_seed_ranges)."""
    return [seed for r in parse_seed_ranges(text) for seed in r]


def load_generator(network, adapter=None, device='cpu'):
    """G_ema (else G) of a network, with an adapter applied when given; in eval mode on `device`."""
    from fsgan import load_network
    from fsgan.export import apply_adapter
    net = load_network(network)
    if adapter is not None:
        apply_adapter(net, adapter)
    G = net['G_ema'] if net['G_ema'] is not None else net['G']
    if G is None:
        raise click.ClickException(f'{network}: contains no generator')
    return G.eval().requires_grad_(False).to(device), net['sha256']


def check_class(G, class_idx):
    """Validate --class for G: a warning (and None) on an unconditional network, BadParameter when out of range."""
    if class_idx is not None and G.c_dim == 0:
        print(f'warning: --class {class_idx} ignored: the network is unconditional')
        return None
    if class_idx is not None and not 0 <= class_idx < G.c_dim:
        raise click.BadParameter(f'must be in 0..{G.c_dim - 1}', param_hint='--class')
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


MAX_GRID = 1024  # --grid keeps every image in memory


@command()
@click.option('--network', required=True, metavar='PATH|URL|NAME', help='Network pickle, URL or short name.')
@click.option('--adapter', type=click.Path(dir_okay=False), help='Adapter file to apply to --network.')
@click.option('--seeds', default='0-15', show_default=True, help='Seeds, e.g. 0-63 or 1,5,9 (0..2^32-1).')
@click.option('--trunc', 'trunc', type=FINITE, default=0.8, show_default=True, help='Truncation psi.')
@click.option('--noise-mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True,
              help=NOISE_MODE_HELP)
@click.option('--class', 'class_idx', type=int, help='Class label of a conditional network [default: seed % number of classes].')
@click.option('--outdir', required=True, type=click.Path(), help='Where to write the PNGs (a new or empty folder).')
@overwrite_option('files in a non-empty --outdir')
@click.option('--grid', is_flag=True, help=f'Also write grid.png with all images (at most {MAX_GRID} seeds).')
@click.option('--batch', type=click.IntRange(min=1), default=1, show_default=True,
              help='Images rendered and written at a time (1: as the other tools render; larger is faster on a '
                   'GPU, and pixels may differ by rounding).')
@device_option()
def main(network, adapter, seeds, trunc, noise_mode, class_idx, outdir, overwrite, grid, batch, device):
    """Write seed{NNNN}.png per seed (and an optional grid) into --outdir, each batch as it is made."""
    import itertools
    import numpy as np
    from fsgan.export import AdapterError
    from fsgan.loading import NetworkLoadError
    from torch_utils.image_grid import save_png, tile
    ranges = parse_seed_ranges(seeds)
    count = sum(len(r) for r in ranges)
    if grid and count > MAX_GRID:
        raise click.BadParameter(f'{count} seeds: a grid holds at most {MAX_GRID}; drop --grid or give fewer seeds',
                                 param_hint='--grid')
    device = resolve_device(device)
    existing = check_output_dir(outdir, '--outdir', overwrite)
    try:
        G, _sha = load_generator(network, adapter, device)
    except (NetworkLoadError, AdapterError) as e:
        raise click.ClickException(str(e)) from None
    class_idx = check_class(G, class_idx)  # before the folder is made
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise click.ClickException(f'--outdir {outdir}: cannot create it ({e.strerror})') from None
    kept, written = [], 0
    for group, images in iter_images(G, itertools.chain(*ranges), trunc, noise_mode, class_idx, device, batch):
        for seed, img in zip(group, images):
            save_png(img, os.path.join(outdir, f'seed{seed:04d}.png'))
        written += len(group)
        if grid:
            kept.append(images)
    if grid:
        save_png(tile(np.concatenate(kept)), os.path.join(outdir, 'grid.png'))
    note = f' (--overwrite: the folder held {existing} entries before)' if existing else ''
    print(f'Wrote {written} image{"s" if written != 1 else ""} to {outdir}{note}')


if __name__ == '__main__':
    main()
