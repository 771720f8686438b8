"""Looping latent interpolation video (mp4, optionally gif) of a network, one cell or a grid of cells.

Examples:
  python scripts/interpolate.py --network runs/00000-fsgan-10shot/network-snapshot-000020.000.pkl --seeds 1,5,9 --out video.mp4
  python scripts/interpolate.py --network ffhq256 --adapter adapter-000020.000.pt --seeds 0-11 --grid 2x2 --space w --out grid.mp4 --gif

Frames: len(seeds per cell) * --frames-per-transition; frame 0 is the first seed's image as
scripts/generate.py makes it, and the last frame leads back into the first (the video loops).
With --grid ROWSxCOLS or --num-interps K the seeds are split into consecutive equal groups, one
loop per cell in row-major order (e.g. --seeds 0-11 --grid 2x2: cell 1 loops 0,1,2, cell 2 3,4,5, ...).
"""
import math
import os
import re

import click


from dnnlib import EasyDict
from fsgan.tools.cli import (FINITE, check_output_file, command, device_option, overwrite_option,
                            resolve_device)
from fsgan.sampling import NOISE_MODE_HELP, check_class, load_generator, parse_seeds


def parse_grid(text):
    """'ROWSxCOLS' -> (rows, cols); raises click.BadParameter."""
    m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', str(text))
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise click.BadParameter(f'{text!r}: expected ROWSxCOLS with both >= 1, e.g. 2x3', param_hint='--grid')
    return int(m.group(1)), int(m.group(2))


def setup_interpolation(network, seeds, out, adapter=None, frames_per_transition=60, space='z', trunc=0.8,
                        grid=None, num_interps=None, gif=False, fps=30, upscale=1, noise_mode='const',
                        class_idx=None, device=None, batch=8, overwrite=False):
    """Pure setup: options -> validated EasyDict (seed_loops, rows, cols, out, gif_out, ...); touches no file.

    The output paths are checked here, before any work: an existing --out (or its .gif) needs `overwrite`.
    """
    seed_list = parse_seeds(seeds)
    if grid is not None and num_interps is not None:
        raise click.BadParameter('give either --grid or --num-interps, not both', param_hint='--grid')
    if grid is not None:
        rows, cols = parse_grid(grid)
    elif num_interps is not None:
        if num_interps < 1:
            raise click.BadParameter(f'must be >= 1, got {num_interps}', param_hint='--num-interps')
        cols = math.ceil(math.sqrt(num_interps))
        rows = -(-num_interps // cols)
    else:
        rows, cols = 1, 1
    cells = num_interps if num_interps is not None else rows * cols
    if len(seed_list) % cells:
        raise click.BadParameter(f'{len(seed_list)} seed(s) cannot be split evenly into {cells} cells; '
                                 f'give a multiple of {cells}', param_hint='--seeds')
    per_cell = len(seed_list) // cells
    if per_cell < 2:
        raise click.BadParameter(f'each loop needs at least 2 seeds; {cells} cell(s) need at least {2 * cells}',
                                 param_hint='--seeds')
    if frames_per_transition < 1:
        raise click.BadParameter(f'must be >= 1, got {frames_per_transition}', param_hint='--frames-per-transition')
    if space not in ('z', 'w'):
        raise click.BadParameter(f'{space!r}: choose z or w', param_hint='--space')
    ext = os.path.splitext(out)[1].lower()
    if ext not in ('.mp4', '.gif'):
        raise click.BadParameter(f'{out!r}: the file name must end in .mp4 or .gif', param_hint='--out')
    if fps <= 0:
        raise click.BadParameter(f'must be > 0, got {fps}', param_hint='--fps')
    for flag, value in (('--upscale', upscale), ('--batch', batch)):
        if value < 1:
            raise click.BadParameter(f'must be >= 1, got {value}', param_hint=flag)
    gif_out = os.path.splitext(out)[0] + '.gif' if (gif and ext == '.mp4') else None
    for path in (out, gif_out):
        if path is not None:
            check_output_file(path, '--out', overwrite)
    return EasyDict(network=network, adapter=adapter, seed_loops=[seed_list[i * per_cell:(i + 1) * per_cell]
                                                                   for i in range(cells)],
                    rows=rows, cols=cols, frames_per_transition=int(frames_per_transition), space=space,
                    trunc=float(trunc), out=out, gif_out=gif_out, fps=float(fps), upscale=int(upscale),
                    noise_mode=noise_mode, class_idx=class_idx, device=device, batch=int(batch))


def run_interpolation(cfg, progress=True):
    """Load the generator and write the video(s). Returns dict(frames, size=(H, W), paths)."""
    from fsgan.tools import interp
    device = resolve_device(cfg.device)
    G, _sha = load_generator(cfg.network, cfg.adapter, device)
    class_idx = check_class(G, cfg.class_idx)
    folder = os.path.dirname(os.path.abspath(cfg.out))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise click.ClickException(f'--out {cfg.out}: cannot create its folder ({e.strerror})') from None
    frames, size = interp.interpolation_video(
        G, cfg.seed_loops, cfg.out, frames_per_transition=cfg.frames_per_transition, space=cfg.space,
        trunc=cfg.trunc, rows=cfg.rows, cols=cfg.cols, fps=cfg.fps, factor=cfg.upscale, gif_path=cfg.gif_out,
        class_idx=class_idx, noise_mode=cfg.noise_mode, batch=cfg.batch, progress=progress)
    return dict(frames=frames, size=size, paths=[p for p in (cfg.out, cfg.gif_out) if p])


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
    cfg = setup_interpolation(network, seeds, out, adapter=adapter, frames_per_transition=frames_per_transition,
                              space=space, trunc=trunc, grid=grid, num_interps=num_interps, gif=gif, fps=fps,
                              upscale=upscale, noise_mode=noise_mode, class_idx=class_idx, device=device,
                              batch=batch, overwrite=overwrite)
    try:
        result = run_interpolation(cfg, progress=not no_progress)
    except (NetworkLoadError, AdapterError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f'--out {out}: cannot write it ({e})') from None
    h, w = result['size']
    print(f'Wrote {result["frames"]} frames of {w}x{h} to {", ".join(result["paths"])}')


if __name__ == '__main__':
    main()
