"""Generate images from a network: a snapshot, a source plus an adapter file, a URL or a short name.

Examples:
  python scripts/generate.py --network runs/00000-fsgan-10shot/network-snapshot-000020.000.pkl --seeds 0-63 --grid
  python scripts/generate.py --network ffhq256 --adapter adapter-000020.000.pt --seeds 0,1,2 --trunc 0.8
"""
import os

import click

from fsgan.sampling import NOISE_MODE_HELP, parse_seed_ranges, write_seed_images
from fsgan.tools.cli import (FINITE, check_output_dir, command, device_option, interrupted, overwrite_option,
                            resolve_device)

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
    from fsgan.export import AdapterError
    from fsgan.loading import NetworkLoadError
    ranges = parse_seed_ranges(seeds)
    count = sum(len(r) for r in ranges)
    if grid and count > MAX_GRID:
        raise click.BadParameter(f'{count} seeds: a grid holds at most {MAX_GRID}; drop --grid or give fewer seeds',
                                 param_hint='--grid')
    device = resolve_device(device)
    existing = check_output_dir(outdir, '--outdir', overwrite)
    try:
        written = write_seed_images(network, ranges, outdir, adapter=adapter, trunc=trunc, noise_mode=noise_mode,
                                    class_idx=class_idx, device=device, batch=batch, grid=grid)
    except (NetworkLoadError, AdapterError) as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        made = len([n for n in os.listdir(outdir) if n.startswith('seed')]) if os.path.isdir(outdir) else 0
        raise interrupted(f'{outdir} holds the {made} seed image(s) written so far') from None
    note = f' (--overwrite: the folder held {existing} entries before)' if existing else ''
    print(f'Wrote {written} image{"s" if written != 1 else ""} to {outdir}{note}')


if __name__ == '__main__':
    main()
