"""Generate images from a network: a snapshot, a source plus an adapter file, a URL or a short name.

Examples:
  python scripts/generate.py --network runs/00000-fsgan-10shot/network-snapshot-000020.pkl --seeds 0-63 --grid
  python scripts/generate.py --network ffhq256 --adapter adapter-000020.pt --seeds 0,1,2 --trunc 0.8
"""
import os
import re
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_seeds(text):
    """'0-3,7' -> [0, 1, 2, 3, 7]; raises click.BadParameter on a malformed range."""
    seeds = []
    for part in str(text).split(','):
        part = part.strip()
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
        if not m:
            raise click.BadParameter(f'{part!r} is not a seed or a range like 0-63', param_hint='--seeds')
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise click.BadParameter(f'range {part} is empty (end before start)', param_hint='--seeds')
        seeds.extend(range(lo, hi + 1))
    return seeds


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


def generate_images(G, seeds, trunc=0.8, noise_mode='const', class_idx=None, device='cpu'):
    """One image per seed: uint8 [N, H, W, C]. z for seed s is randn from numpy RandomState(s), as in stylegan2-ada.

    Conditional networks: class `class_idx` for every seed, or class s % c_dim for seed s when it is None
    (the classes of a conditional source adapted to unlabelled targets carry no meaning).
    """
    import numpy as np
    import torch
    from torch_utils.image_grid import seed_z, to_uint8
    from torch_utils.misc import one_hot
    class_idx = check_class(G, class_idx)
    classes = seed_classes(seeds, G.c_dim) if class_idx is None else [class_idx] * len(seeds)
    out = []
    with torch.no_grad():
        for seed, k in zip(seeds, classes):
            c = one_hot([k], G.c_dim, device)
            z = seed_z([seed], G.z_dim).to(device)
            out.append(to_uint8(G(z, c, truncation_psi=trunc, noise_mode=noise_mode))[0])
    return np.stack(out)


@click.command(context_settings=dict(help_option_names=['-h', '--help']))
@click.option('--network', required=True, metavar='PATH|URL|NAME', help='Network pickle, URL or short name.')
@click.option('--adapter', type=click.Path(dir_okay=False), help='Adapter file to apply to --network.')
@click.option('--seeds', default='0-15', show_default=True, help='Seeds, e.g. 0-63 or 1,5,9.')
@click.option('--trunc', 'trunc', type=float, default=0.8, show_default=True, help='Truncation psi.')
@click.option('--noise-mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--class', 'class_idx', type=int, help='Class label of a conditional network [default: seed % number of classes].')
@click.option('--outdir', required=True, type=click.Path(file_okay=False), help='Where to write the PNGs.')
@click.option('--grid', is_flag=True, help='Also write grid.png with all images.')
@click.option('--device', type=click.Choice(['cpu', 'cuda']), help='Device [default: cuda when available].')
def main(network, adapter, seeds, trunc, noise_mode, class_idx, outdir, grid, device):
    """Write seed{NNNN}.png per seed (and an optional grid) into --outdir."""
    import torch
    from fsgan.export import AdapterError
    from fsgan.loading import NetworkLoadError
    from torch_utils.image_grid import save_png, tile
    seed_list = parse_seeds(seeds)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise click.BadParameter('CUDA is not available here; use --device cpu', param_hint='--device')
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise click.ClickException(f'--outdir {outdir}: cannot create it ({e.strerror})') from None
    if not os.access(outdir, os.W_OK):
        raise click.ClickException(f'--outdir {outdir}: not writable; choose another folder')
    try:
        G, _sha = load_generator(network, adapter, device)
    except (NetworkLoadError, AdapterError) as e:
        raise click.ClickException(str(e)) from None
    images = generate_images(G, seed_list, trunc=trunc, noise_mode=noise_mode, class_idx=class_idx, device=device)
    for seed, img in zip(seed_list, images):
        save_png(img, os.path.join(outdir, f'seed{seed:04d}.png'))
    if grid:
        save_png(tile(images), os.path.join(outdir, 'grid.png'))
    print(f'Wrote {len(images)} image(s) to {outdir}')


if __name__ == '__main__':
    main()
