"""Glyph-domain report for a generator: script shares, character coverage and FGD against a test set.

  python scripts/glyph_eval.py --network out/pretrain/00000-scratch-glyph32/network-snapshot-000100.000.pkl \
      --test data/glyphs/source_test.zip --num 1000

Prints (and with --out, writes as JSON): the share of samples the glyph classifier assigns to each
script, how many distinct characters of the expected script are predicted (mode-collapse check),
and FGD (Fréchet distance in the classifier's feature space) between samples and the test set; also
the ink share and mean pair distance of samples and test images (fsgan.benchmarks.glyphs.metrics.ink_stats); for a
class-conditional network (classes = the dataset's labels), the share of samples read as the character
they were generated for.
"""
import json
import os

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from fsgan.tools.cli import (FINITE, check_output_file, command, device_option, overwrite_option,
                            resolve_device)


def _check_size(what, option, shape, clf):
    """BadParameter naming `option` unless images of `shape` [.., C, H, W] fit the classifier's resolution."""
    if tuple(shape[-2:]) != (clf.resolution, clf.resolution):
        raise click.BadParameter(f'{what} are {shape[-2]}x{shape[-1]} pixels; the glyph classifier reads '
                                 f'{clf.resolution}x{clf.resolution} glyphs', param_hint=option)


def glyph_report(G, test_zip, num=1000, trunc=1.0, seed=0, classifier_path=None, expect='latin', num_test=0,
                 shots_zip=None, device='cpu'):
    """Samples of G (seeds seed..seed+num-1) vs the test zip (its first num_test images; 0 = all) -> dict of script
    shares, coverage and FGD; with shots_zip also FGD to the shots, memorisation and intra-cluster diversity.

    Raises click.BadParameter (naming the option) for a script the classifier does not know, or a network,
    test set or shots whose images are not the classifier's size; all checked before generating.
    """
    import torch
    from fsgan.benchmarks.glyphs.classifier import DEFAULT_PATH, load_dataset_zip, load_glyph_classifier
    from fsgan.benchmarks.glyphs.metrics import glyph_metrics, ink_stats
    from fsgan.sampling import generate_images, seed_classes
    clf = load_glyph_classifier(classifier_path or DEFAULT_PATH)
    if expect not in clf.script_names:
        raise click.BadParameter(f'unknown script {expect!r}; the classifier knows {", ".join(clf.script_names)}',
                                 param_hint='--expect')
    resolution = getattr(G, 'img_resolution', clf.resolution)
    _check_size('the network\'s images', '--network', (resolution, resolution), clf)
    real, _labels = load_dataset_zip(test_zip, limit=num_test or None)
    _check_size('the test images', '--test', real.shape, clf)
    shots = load_dataset_zip(shots_zip)[0] if shots_zip else None
    if shots is not None:
        _check_size('the shots', '--shots', shots.shape, clf)
    images = generate_images(G, list(range(seed, seed + num)), trunc=trunc, device=device)   # [N, H, W, C] uint8
    fake = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    requested = seed_classes(range(seed, seed + num), G.c_dim) if G.c_dim > 0 else None  # generate_images' classes
    m = glyph_metrics(clf, fake, shots=shots, test=real, expect=expect, requested=requested)
    out = dict(num=num, trunc=trunc, script_shares=m['script_shares'], expected_script=expect,
               classes_covered=m['classes_covered'], classes_total=m['classes_total'], fgd=m['fgd_test'],
               class_match=m['class_match'],
               test_set=os.path.relpath(test_zip, ROOT), test_size=len(real))
    for name, batch in (('samples', fake), ('test', real)):
        out.update({f'{key}_{name}': value for key, value in ink_stats(batch).items()})
    if shots_zip:
        out.update(shots=os.path.relpath(shots_zip, ROOT), fgd_shots=m['fgd_shots'],
                   memorised_glyph=m['memorised_glyph'], diversity_glyph=m['diversity_glyph'])
    return out


@command()
@click.option('--network', required=True, help='Network pickle, URL or short name (32x32 glyphs).')
@click.option('--adapter', type=click.Path(dir_okay=False), help='Adapter file to apply to --network.')
@click.option('--test', 'test_zip', default=os.path.join(ROOT, 'data', 'glyphs', 'source_test.zip'), show_default=True,
              type=click.Path(exists=True, dir_okay=False), help='Real glyphs (dataset zip).')
@click.option('--num-test', type=click.IntRange(min=0), default=0, show_default=True,
              help='Use the first N test images (0 = all).')
@click.option('--shots', 'shots_zip', type=click.Path(exists=True, dir_okay=False),
              help='Target shots (dataset zip): adds FGD to the shots, memorisation and diversity.')
@click.option('--num', type=click.IntRange(min=2), default=1000, show_default=True, help='Number of samples.')
@click.option('--trunc', type=FINITE, default=1.0, show_default=True, help='Truncation psi.')
@click.option('--expect', default='latin', show_default=True, help='Script the samples should be in.')
@click.option('--out', type=click.Path(dir_okay=False), help='Also write the report as JSON.')
@overwrite_option('an existing --out file')
@device_option()
def main(network, adapter, test_zip, num_test, shots_zip, num, trunc, expect, out, overwrite, device):
    """Print the glyph report of a network."""
    from dnnlib.fileio import atomic_write_json
    from fsgan.export import AdapterError
    from fsgan.loading import NetworkLoadError
    from fsgan.sampling import load_generator
    if out:
        check_output_file(out, '--out', overwrite)
    device = resolve_device(device)
    try:
        G, sha = load_generator(network, adapter, device)
    except (NetworkLoadError, AdapterError) as e:
        raise click.ClickException(str(e)) from None
    report = glyph_report(G, test_zip, num=num, trunc=trunc, expect=expect, num_test=num_test, shots_zip=shots_zip,
                          device=device)
    report.update(network=network, sha256=sha)
    print(json.dumps(report, indent=2))
    if out:
        atomic_write_json(out, report)
        print(f'Wrote {out}')


if __name__ == '__main__':
    main()
