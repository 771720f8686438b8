"""Looping latent interpolation video (mp4, optionally gif) of a network, one cell or a grid of cells.

Examples:
  python scripts/interpolate.py --network runs/00000-fsgan-10shot/network-snapshot-000020.000.pkl --seeds 1,5,9 --out video.mp4
  python scripts/interpolate.py --network ffhq256 --adapter adapter-000020.000.pt --seeds 0-11 --grid 2x2 --space w --out grid.mp4 --gif

Frames: len(seeds per cell) * --frames-per-transition; frame 0 is the first seed's image as
scripts/generate.py makes it, and the last frame leads back into the first (the video loops).
With --grid ROWSxCOLS or --num-interps K the seeds are split into consecutive equal groups, one
loop per cell in row-major order (e.g. --seeds 0-11 --grid 2x2: cell 1 loops 0,1,2, cell 2 3,4,5, ...).
"""
import os

import click

from fsgan.sampling import NOISE_MODE_HELP
from fsgan.tools.cli import FINITE, command, device_option, overwrite_option
from fsgan.tools.interpolation import write_interpolation


@command()
@click.option('--network', required=True, metavar='PATH|URL|NAME', help='Network pickle, URL or short name.')
@click.option('--adapter', type=click.Path(dir_okay=False), help='Adapter file to apply to --network.')
@click.option('--seeds', required=True, help='Key seeds, e.g. 1,5,9 or 0-11 (split evenly over grid cells).')
@click.option('--frames-per-transition', type=int, default=60, show_default=True,
              help='Frames from one seed to the next.')
@click.option('--out', required=True, type=click.Path(dir_okay=False), help='Output video: .mp4 (or .gif).')
@click.option('--space', type=click.Choice(['z', 'w']), default='z', show_default=True,
              help='z: slerp between the seeds\' z; w: lerp between their (truncated) ws.')
@click.option('--trunc', type=FINITE, default=0.8, show_default=True, help='Truncation psi.')
@click.option('--grid', metavar='ROWSxCOLS', help='A grid of loops, e.g. 2x3.')
@click.option('--num-interps', type=int, help='K loops in a near-square grid (instead of --grid).')
@click.option('--gif', is_flag=True, help='Also write a GIF next to the mp4 (same name, .gif).')
@click.option('--fps', type=FINITE, default=30, show_default=True, help='Frames per second.')
@click.option('--upscale', type=int, default=1, show_default=True, help='Nearest-neighbour upscale factor of frames.')
@click.option('--noise-mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True,
              help=NOISE_MODE_HELP)
@click.option('--class', 'class_idx', type=int,
              help='Class label of a conditional network [default: seed % number of classes for each key seed].')
@click.option('--batch', type=int, default=8, show_default=True, help='Frames rendered per batch.')
@device_option()
@overwrite_option('an existing --out file (and its .gif)')
@click.option('--no-progress', is_flag=True, help='No progress bar.')
def main(network, adapter, seeds, frames_per_transition, out, space, trunc, grid, num_interps, gif, fps, upscale,
         noise_mode, class_idx, batch, device, overwrite, no_progress):
    """Write a smoothly looping interpolation video through the given seeds."""
    from fsgan.export import AdapterError
    from fsgan.loading import NetworkLoadError
    import glob
    existing = {os.path.abspath(p) for p in glob.glob(glob.escape(os.path.splitext(out)[0]) + '.*')}
    try:
        result = write_interpolation(network, seeds, out, progress=not no_progress, adapter=adapter,
                                     frames_per_transition=frames_per_transition, space=space, trunc=trunc,
                                     grid=grid, num_interps=num_interps, gif=gif, fps=fps, upscale=upscale,
                                     noise_mode=noise_mode, class_idx=class_idx, device=device, batch=batch,
                                     overwrite=overwrite)
    except (NetworkLoadError, AdapterError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f'--out {out}: cannot write it ({e})') from None
    h, w = result['size']
    print(f'Wrote {result["frames"]} frames of {w}x{h} to {", ".join(result["paths"])}')
    replaced = [p for p in result['paths'] if os.path.abspath(p) in existing]
    if replaced:
        print(f'--overwrite: replaced {", ".join(replaced)}')


if __name__ == '__main__':
    main()
