"""The svd_explore tool (scripts/svd_explore.py): what the top singular values of one generator layer do.

The layer's weight is flattened to W [out, in*k*k] (as fsgan's re-parameterisation does) and factored
W = sum_j sigma_j u_j v_j^T. Scale s of singular value i means sigma_i -> s * sigma_i with every other
sigma_j unchanged: W' = W + (s - 1) sigma_i u_i v_i^T. See scripts/svd_explore.py for the figure layout.
"""
import math
import os
import re

from dnnlib import EasyDict
from fsgan.sampling import load_generator, parse_seeds
from fsgan.tools.checks import check_output_file, resolve_device
from fsgan.tools.errors import OptionError


def parse_scales(text):
    """'-2,-1,0,1,2' -> [-2.0, -1.0, 0.0, 1.0, 2.0]; raises OptionError (also for nan and inf)."""
    out = []
    for part in str(text).split(','):
        try:
            value = float(part.strip())
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            raise OptionError(f'{part.strip()!r} is not a {"finite " if value is not None else ""}number; '
                                     f'give e.g. -2,-1,0,1,2', '--scales')
        out.append(value)
    return out


def generator_layers(G):
    """{name: (layer, role)} of G's weight layers, named as fsgan.methods.layers names them.

    role: 'fsgan' for the layers the fsgan method always re-parameterises (mapping FCs, synthesis
    convs), 'adapt_affine' / 'adapt_torgb' for those it adds with those options.
    """
    from fsgan.methods import layers
    out = {}
    for name, layer in layers.mapping_fcs(G) + layers.synthesis_convs(G):
        out[name] = (layer, 'fsgan')
    for name, layer in layers.affines(G):
        out[name] = (layer, 'adapt_affine')
    for name, layer in layers.torgbs(G):
        out[name] = (layer, 'adapt_torgb')
    return out


def layer_svd(weight):
    """Thin SVD of weight [out, ...] flattened to [out, rest], in float64: U [out, r], s [r], Vh [r, rest]."""
    import torch
    from fsgan.methods.reparam import thin_svd
    return thin_svd(weight.detach().reshape(weight.shape[0], -1).to('cpu', dtype=torch.float64))


def scaled_weight(weight, svd, index, scale):
    """weight with singular value `index` (0-based) times `scale`: W + (scale - 1) s_i u_i v_i^T (same shape/dtype)."""
    import torch
    U, s, Vh = svd
    flat = weight.detach().reshape(weight.shape[0], -1).to('cpu', dtype=torch.float64)
    flat = flat + ((scale - 1) * s[index]) * torch.outer(U[:, index], Vh[index])
    return flat.reshape(weight.shape).to(device=weight.device, dtype=weight.dtype)


def list_layers(G):
    """Lines for --list: name, weight shape, number of singular values, sigma_1, role."""
    rows = []
    for name, (layer, role) in generator_layers(G).items():
        _U, s, _Vh = layer_svd(layer.weight)
        rows.append((name, 'x'.join(str(d) for d in layer.weight.shape), str(len(s)), f'{float(s[0]):.4g}', role))
    head = ('layer', 'weight shape', 'singular values', 'sigma_1', 'fsgan')
    width = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    return ['  '.join(cell.ljust(width[i]) for i, cell in enumerate(r)).rstrip() for r in [head] + rows]


def svd_rows(G, layer_name, top, scales, seeds, trunc=0.8, noise_mode='const', class_idx=None, device='cpu'):
    """Images of the figure: (rows, row_labels); rows[i * len(seeds) + j][k] is uint8 [H, W, C] for
    singular value i, seed j and scale k. G's weight is restored afterwards."""
    import torch
    from fsgan.sampling import generate_images
    layer = generator_layers(G)[layer_name][0]
    original = layer.weight.detach().clone()
    svd = layer_svd(original)
    rows, labels = [], []
    try:
        per_scale = []
        for i in range(top):
            for scale in scales:
                with torch.no_grad():
                    layer.weight.copy_(scaled_weight(original, svd, i, scale))
                per_scale.append(generate_images(G, seeds, trunc=trunc, noise_mode=noise_mode,
                                                 class_idx=class_idx, device=device))
    finally:
        with torch.no_grad():
            layer.weight.copy_(original)
    for i in range(top):
        block = per_scale[i * len(scales):(i + 1) * len(scales)]       # [scales] of [seeds, H, W, C]
        for j, seed in enumerate(seeds):
            rows.append([imgs[j] for imgs in block])
            labels.append(f'sv{i + 1} ({float(svd[1][i]):.3g}) seed {seed}')
    return rows, labels


def setup_svd_explore(network, layer, out, adapter=None, top=3, scales='-2,-1,0,1,2', seeds='0-3', trunc=0.8,
                      noise_mode='const', class_idx=None, device=None, cell=None, overwrite=False):
    """Pure setup: options -> validated EasyDict; touches no file, but checks --out (an existing one needs
    `overwrite`) before any work."""
    if layer is None:
        raise OptionError('give a layer name (run with --list to see them)', '--layer')
    if out is None:
        raise OptionError('give the figure path, e.g. fig.png', '--out')
    if os.path.splitext(out)[1].lower() != '.png':
        raise OptionError(f'{out!r}: the file name must end in .png', '--out')
    if top < 1:
        raise OptionError(f'must be >= 1, got {top}', '--top')
    if cell is not None and cell < 4:
        raise OptionError(f'must be >= 4, got {cell}', '--cell')
    check_output_file(out, '--out', overwrite)
    return EasyDict(network=network, adapter=adapter, layer=layer, out=out, top=int(top),
                    scales=parse_scales(scales), seeds=parse_seeds(seeds), trunc=float(trunc),
                    noise_mode=noise_mode, class_idx=class_idx, device=device, cell=cell)


def run_svd_explore(cfg):
    """Render and write the figure. Returns dict(path, rows, cols).

    Raises NetworkLoadError / AdapterError (fsgan.sampling.load_generator), OptionError for an unknown
    --layer, a --top above the layer's rank or --device, OSError when the figure cannot be written.
    """
    from fsgan.tools.figure import labeled_grid
    from torch_utils.image_grid import save_png
    device = resolve_device(cfg.device)
    G, _sha = load_generator(cfg.network, cfg.adapter, device)
    names = generator_layers(G)
    if cfg.layer not in names:
        close = [n for n in names if re.sub(r'\W', '', cfg.layer) in re.sub(r'\W', '', n)][:3]
        hint = f' (did you mean {", ".join(close)}?)' if close else ''
        raise OptionError(f'unknown layer {cfg.layer!r}{hint}; run with --list to see the layer names', '--layer')
    rank = min(names[cfg.layer][0].weight.shape[0], names[cfg.layer][0].weight[0].numel())
    if cfg.top > rank:
        raise OptionError(f'{cfg.layer} has {rank} singular values; --top must be <= {rank}', '--top')
    rows, labels = svd_rows(G, cfg.layer, cfg.top, cfg.scales, cfg.seeds, cfg.trunc, cfg.noise_mode,
                            cfg.class_idx, device)
    figure = labeled_grid(rows, row_labels=labels, col_labels=[f'x{s:g}' for s in cfg.scales], cell=cfg.cell)
    folder = os.path.dirname(os.path.abspath(cfg.out))
    os.makedirs(folder, exist_ok=True)
    save_png(figure, cfg.out)
    return dict(path=cfg.out, rows=len(rows), cols=len(cfg.scales))


def layer_table(network, adapter=None, device=None):
    """The --list output of a network's generator: lines of name, weight shape, singular values, sigma_1, role."""
    G, _sha = load_generator(network, adapter, resolve_device(device))
    return list_layers(G)


def write_svd_figure(network, layer, out, **options):
    """The svd_explore tool: check the options (setup_svd_explore, before any work), render, write --out.

    Returns run_svd_explore's dict(path, rows, cols).
    """
    return run_svd_explore(setup_svd_explore(network, layer, out, **options))
