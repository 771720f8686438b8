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

import click

from fsgan.benchmarks.glyphs import paths
from fsgan.benchmarks.glyphs.eval import network_glyph_report
from fsgan.tools.cli import (FINITE, check_output_file, command, device_option, overwrite_option,
                            resolve_device)


@command()
@click.option('--network', required=True, help='Network pickle, URL or short name (32x32 glyphs).')
@click.option('--adapter', type=click.Path(dir_okay=False), help='Adapter file to apply to --network.')
@click.option('--test', 'test_zip', default=paths.SOURCE_TEST, show_default=True,
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
    if out:
        check_output_file(out, '--out', overwrite)
    try:
        report = network_glyph_report(network, adapter, resolve_device(device), test_zip=test_zip, num=num,
                                      trunc=trunc, expect=expect, num_test=num_test, shots_zip=shots_zip)
    except (NetworkLoadError, AdapterError) as e:
        raise click.ClickException(str(e)) from None
    print(json.dumps(report, indent=2))
    if out:
        atomic_write_json(out, report)
        print(f'Wrote {out}')


if __name__ == '__main__':
    main()
