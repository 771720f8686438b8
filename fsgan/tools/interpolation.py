"""The interpolate tool (scripts/interpolate.py): options -> validated setup -> looping video file(s).

The frames are made by fsgan.tools.interp; see scripts/interpolate.py for the layout of seeds over grid cells.
"""
import math
import os
import re

from dnnlib import EasyDict
from fsgan.sampling import check_class, load_generator, parse_seeds
from fsgan.tools.checks import check_output_file, resolve_device
from fsgan.tools.errors import OptionError, ToolError


def parse_grid(text):
    """'ROWSxCOLS' -> (rows, cols); raises OptionError."""
    m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', str(text))
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise OptionError(f'{text!r}: expected ROWSxCOLS with both >= 1, e.g. 2x3', '--grid')
    return int(m.group(1)), int(m.group(2))


def setup_interpolation(network, seeds, out, adapter=None, frames_per_transition=60, space='z', trunc=0.8,
                        grid=None, num_interps=None, gif=False, fps=30, upscale=1, noise_mode='const',
                        class_idx=None, device=None, batch=8, overwrite=False):
    """Pure setup: options -> validated EasyDict (seed_loops, rows, cols, out, gif_out, ...); touches no file.

    The output paths are checked here, before any work: an existing --out (or its .gif) needs `overwrite`.
    """
    seed_list = parse_seeds(seeds)
    if grid is not None and num_interps is not None:
        raise OptionError('give either --grid or --num-interps, not both', '--grid')
    if grid is not None:
        rows, cols = parse_grid(grid)
    elif num_interps is not None:
        if num_interps < 1:
            raise OptionError(f'must be >= 1, got {num_interps}', '--num-interps')
        cols = math.ceil(math.sqrt(num_interps))
        rows = -(-num_interps // cols)
    else:
        rows, cols = 1, 1
    cells = num_interps if num_interps is not None else rows * cols
    if len(seed_list) % cells:
        raise OptionError(f'{len(seed_list)} seed(s) cannot be split evenly into {cells} cells; '
                                 f'give a multiple of {cells}', '--seeds')
    per_cell = len(seed_list) // cells
    if per_cell < 2:
        raise OptionError(f'each loop needs at least 2 seeds; {cells} cell(s) need at least {2 * cells}',
                          '--seeds')
    if frames_per_transition < 1:
        raise OptionError(f'must be >= 1, got {frames_per_transition}', '--frames-per-transition')
    if space not in ('z', 'w'):
        raise OptionError(f'{space!r}: choose z or w', '--space')
    ext = os.path.splitext(out)[1].lower()
    if ext not in ('.mp4', '.gif'):
        raise OptionError(f'{out!r}: the file name must end in .mp4 or .gif', '--out')
    if fps <= 0:
        raise OptionError(f'must be > 0, got {fps}', '--fps')
    for flag, value in (('--upscale', upscale), ('--batch', batch)):
        if value < 1:
            raise OptionError(f'must be >= 1, got {value}', flag)
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
    """Load the generator and write the video(s). Returns dict(frames, size=(H, W), paths).

    Raises NetworkLoadError / AdapterError (fsgan.sampling.load_generator), OptionError for --class or
    --device, ToolError when the folder of --out cannot be created, OSError when the video cannot be written.
    """
    from fsgan.tools import interp
    device = resolve_device(cfg.device)
    G, _sha = load_generator(cfg.network, cfg.adapter, device)
    class_idx = check_class(G, cfg.class_idx)
    folder = os.path.dirname(os.path.abspath(cfg.out))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ToolError(f'--out {cfg.out}: cannot create its folder ({e.strerror})') from None
    frames, size = interp.interpolation_video(
        G, cfg.seed_loops, cfg.out, frames_per_transition=cfg.frames_per_transition, space=cfg.space,
        trunc=cfg.trunc, rows=cfg.rows, cols=cfg.cols, fps=cfg.fps, factor=cfg.upscale, gif_path=cfg.gif_out,
        class_idx=class_idx, noise_mode=cfg.noise_mode, batch=cfg.batch, progress=progress)
    return dict(frames=frames, size=size, paths=[p for p in (cfg.out, cfg.gif_out) if p])


def write_interpolation(network, seeds, out, progress=True, **options):
    """The interpolate tool: check the options (setup_interpolation, before any work), then write the video(s).

    Returns run_interpolation's dict(frames, size=(H, W), paths).
    """
    return run_interpolation(setup_interpolation(network, seeds, out, **options), progress=progress)
